"""A receive buffer for stream framing."""


class ReceiveBuffer:
    """Octets received on a stream and not yet consumed."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, data: bytes) -> None:
        """Append received octets."""
        self._data += data

    def take(self, size: int) -> bytes | None:
        """Consume and return ``size`` octets, or None if fewer are buffered."""
        if len(self._data) < size:
            return None
        chunk = bytes(self._data[:size])
        del self._data[:size]
        return chunk

    def __len__(self) -> int:
        return len(self._data)
