"""Session-Sender packets of one session, shared by OWAMP and TWAMP senders (RFC 4656 §4.1.2).

``prepare`` builds a packet ahead of its send time (in authenticated mode its
first block is encrypted then, RFC 7717 §1); ``stamp`` writes the timestamp
as the last step before the send call (decision D10), encrypting afterwards
only in encrypted mode, where the timestamp is covered.
"""

import struct

from otwamp.session.protection import SessionProtection
from otwamp.wire.twamp_test import SENDER_AUTH, SENDER_OPEN, sender_size

_STAMP = struct.Struct("!QH")  # Timestamp and Error Estimate (RFC 4656 §4.1.2)


class SenderPackets:
    """Builds and stamps Session-Sender packets of one session (RFC 4656 §4.1.2).

    The layout is the TWAMP sender's (RFC 5357 §4.1.2), so OWAMP and TWAMP
    senders alike can build on this.
    """

    def __init__(self, padding: bytes, protection: SessionProtection | None = None) -> None:
        self._padding = padding
        self._protection = protection
        secured = protection is not None
        self._head = SENDER_AUTH if secured else SENDER_OPEN
        self._stamp_at = 16 if secured else 4  # after Seq, and in secured modes 12 MBZ octets
        self.size = sender_size(secured, len(padding))

    def prepare(self, seq: int) -> bytearray:
        """A packet for ``seq`` whose Timestamp and Error Estimate are still to be stamped."""
        packet = bytearray(self.size)
        self._head.pack_into(packet, 0, seq, 0, 1)
        packet[self.size - len(self._padding) :] = self._padding
        protection = self._protection
        if protection is not None and not protection.encrypts_timestamp:
            packet = bytearray(protection.sender.protect(bytes(packet)))
        return packet

    def stamp(self, packet: bytearray, ntp: int, error: int) -> bytes | bytearray:
        """Write the send Timestamp and Error Estimate; the result goes on the wire."""
        _STAMP.pack_into(packet, self._stamp_at, ntp, error)
        protection = self._protection
        if protection is not None and protection.encrypts_timestamp:
            return protection.sender.protect(bytes(packet))
        return packet
