"""Session-Sender packets of one session, shared by OWAMP and TWAMP senders (RFC 4656 §4.1.2).

``prepare`` builds a packet ahead of its send time: fields and padding in
place, and in authenticated mode its first block encrypted and HMACed, which
the Timestamp is not part of (RFC 5357 §4.1.2, RFC 7717 §1). In encrypted
mode, whose CBC chain and HMAC cover the Timestamp, the first block's
encryption and HMAC update are done then too (``PacketProtection.begin``).
``stamp`` writes the timestamp as the last step before the send call
(decision D10) and, in encrypted mode only, runs the rest of the chain and
the HMAC.
"""

from collections.abc import Callable

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
        self._encrypts = protection is not None and protection.encrypts_timestamp
        # Encrypted mode: the packet last prepared and the function that finishes it.
        self._begun: tuple[bytearray, Callable[[bytearray], bytearray]] | None = None

    def prepare(self, seq: int) -> bytearray:
        """A packet for ``seq`` whose Timestamp and Error Estimate are still to be stamped."""
        packet = bytearray(self.size)
        self._pack(packet, 0, seq, 0, 1)
        packet[self.size - len(self._padding) :] = self._padding
        protection = self._protection
        if protection is None:
            return packet
        if not protection.encrypts_timestamp:
            return bytearray(protection.sender.protect(bytes(packet)))
        self._begun = packet, protection.sender.begin(packet)
        return packet

    @property
    def plain_stamp_offset(self) -> int | None:
        """Where ``stamp`` writes, if writing is all it does (open and authenticated modes)."""
        return None if self._encrypts else self._stamp_at

    def warm(self) -> None:
        """Encrypted mode: run what ``stamp`` runs after the Timestamp once, on a scratch copy.

        After an idle spell the cipher and HMAC code is out of the caches;
        this run, before the stamp, brings it back so that the real one after
        the stamp is short. The packet prepared is left as it is.
        """
        begun, protection = self._begun, self._protection
        if begun is not None and protection is not None:
            scratch = bytearray(begun[0])
            protection.sender.begin(scratch)(scratch)

    def stamp(self, packet: bytearray, ntp: int, error: int) -> bytes | bytearray:
        """Write the send Timestamp and Error Estimate; the result goes on the wire."""
        STAMP.pack_into(packet, self._stamp_at, ntp, error)
        if not self._encrypts:
            return packet
        begun, self._begun = self._begun, None
        if begun is not None and begun[0] is packet:
            return begun[1](packet)
        assert self._protection is not None
        return self._protection.sender.protect(bytes(packet))  # not the packet last prepared
