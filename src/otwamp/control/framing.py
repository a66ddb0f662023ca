"""Reading one direction of a control connection: whole blocks decrypted on demand.

Each message is read as a growing plaintext: ``prefix(n)`` decrypts until n
octets of the current part are known, ``finish()`` reads the part's HMAC
block, verifies it (RFC 4656 §3.2, decision D13) and starts the next part.
Messages whose length shows only in their first octets (OWAMP Request-Session,
Stop-Sessions, fetched data) are read the same way, part by part.
"""

from collections.abc import Callable

from otwamp.control.buffer import ReceiveBuffer
from otwamp.security.control import ControlReceiver, OpenControlReceiver
from otwamp.wire.twamp_control import HMAC_SIZE


class Framer:
    """The receiving side of a control connection."""

    def __init__(self) -> None:
        self.rx: ControlReceiver = OpenControlReceiver()
        self._buffer = ReceiveBuffer()
        self._plain = bytearray()

    def feed(self, data: bytes) -> None:
        """Append octets received from the peer."""
        self._buffer.feed(data)

    def pending(self) -> int:
        """Octets received and not yet read."""
        return len(self._buffer)

    def mid_part(self) -> bool:
        """Whether a part has begun and not yet ended with its HMAC."""
        return bool(self._plain)

    def clear(self, size: int) -> bytes | None:
        """``size`` octets sent in clear (connection set-up), or None if not all arrived."""
        return self._buffer.take(size)

    def prefix(self, size: int) -> bytes | None:
        """The first ``size`` plaintext octets of the current part (whole blocks), or None."""
        missing = size - len(self._plain)
        if missing > 0:
            wire = self._buffer.take(missing)
            if wire is None:
                return None
            self._plain += self.rx.decrypt(wire)
        return bytes(self._plain[:size])

    def finish(self) -> bytes | None:
        """The current part once its HMAC block arrived and verified, or None."""
        wire_hmac = self._buffer.take(HMAC_SIZE)
        if wire_hmac is None:
            return None
        self.rx.verify(wire_hmac)
        part = bytes(self._plain)
        self._plain.clear()
        return part

    def part(self, size: int) -> bytes | None:
        """A whole part of ``size`` octets with its HMAC, or None."""
        return None if self.prefix(size) is None else self.finish()

    def grow(self, size_of: Callable[[bytes], int]) -> bytes | None:
        """A part whose size ``size_of(prefix)`` learns from its own first octets, or None."""
        while True:
            size = size_of(bytes(self._plain))
            if size <= len(self._plain):
                return self.finish()
            if self.prefix(size) is None:
                return None
