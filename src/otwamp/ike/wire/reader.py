"""Bounds-checked reading of IKEv2 octet strings (RFC 7296 §3)."""

from otwamp.errors import ProtocolError


class Reader:
    """Reads big-endian fields from ``data``; short input raises ProtocolError."""

    def __init__(self, data: bytes, section: str) -> None:
        self._data = data
        self._pos = 0
        self._section = section

    @property
    def remaining(self) -> int:
        """Octets not yet read."""
        return len(self._data) - self._pos

    def take(self, length: int, field: str) -> bytes:
        """Read exactly ``length`` octets of ``field``."""
        if length > self.remaining:
            raise ProtocolError(
                f"needs {length} octets, {self.remaining} left", field=field, section=self._section
            )
        start = self._pos
        self._pos += length
        return self._data[start : self._pos]

    def uint(self, size: int, field: str) -> int:
        """Read an unsigned big-endian integer of ``size`` octets."""
        return int.from_bytes(self.take(size, field), "big")

    def rest(self) -> bytes:
        """Read everything left."""
        return self.take(self.remaining, "rest")


def check_range(value: int, low: int, high: int, field: str, section: str) -> None:
    """Raise ProtocolError unless ``low <= value <= high``."""
    if not low <= value <= high:
        raise ProtocolError(f"{value} outside {low}..{high}", field=field, section=section)
