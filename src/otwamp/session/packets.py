"""Session-Sender packets of one session, shared by OWAMP and TWAMP senders (RFC 4656 §4.1.2).

``prepare`` builds a packet ahead of its send time (in authenticated mode its
first block is encrypted then, RFC 7717 §1); ``stamp`` writes the timestamp
as the last step before the send call (decision D10), encrypting afterwards
only in encrypted mode, where the timestamp is covered.
"""

from otwamp.session.protection import SessionProtection
from otwamp.wire.twamp_test import STAMP, sender_layout


class SenderPackets:
    """Builds and stamps Session-Sender packets of one session (RFC 4656 §4.1.2).

    The layout is the TWAMP sender's (RFC 5357 §4.1.2), so OWAMP and TWAMP
    senders alike can build on this.
    """

    def __init__(self, padding: bytes, protection: SessionProtection | None = None) -> None:
        self._padding = padding
        self._protection = protection
        layout = sender_layout(protection is not None)
        self._pack = layout.fields.pack_into
        self._stamp_at = layout.stamp_offset
        self.size = layout.size + len(padding)

    def prepare(self, seq: int) -> bytearray:
        """A packet for ``seq`` whose Timestamp and Error Estimate are still to be stamped."""
        packet = bytearray(self.size)
        self._pack(packet, 0, seq, 0, 1)
        packet[self.size - len(self._padding) :] = self._padding
        protection = self._protection
        if protection is not None and not protection.encrypts_timestamp:
            packet = bytearray(protection.sender.protect(bytes(packet)))
        return packet

    def stamp(self, packet: bytearray, ntp: int, error: int) -> bytes | bytearray:
        """Write the send Timestamp and Error Estimate; the result goes on the wire."""
        STAMP.pack_into(packet, self._stamp_at, ntp, error)
        protection = self._protection
        if protection is not None and protection.encrypts_timestamp:
            return protection.sender.protect(bytes(packet))
        return packet
