"""The Session-Sender's packet work, without sockets or clocks (RFC 5357 §4.1).

``prepare`` builds a packet ahead of its send time (in authenticated mode its
first block is already encrypted, RFC 7717 §1); ``stamp`` writes the
timestamp as the last step before the send call (decision D10), encrypting
afterwards only in encrypted mode where the timestamp is covered;
``mark_sent`` records it once sent; ``on_datagram`` turns a reflected packet
into a ``Reply`` record.
"""

import struct

from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.results.records import Reply, Sent, Stamp, TwampSessionRecord
from otwamp.session.protection import SessionProtection
from otwamp.wire.timestamp import ErrorEstimate, ntp_to_ns
from otwamp.wire.twamp_test import (
    REFLECTOR_AUTH,
    REFLECTOR_OPEN,
    SENDER_AUTH,
    SENDER_OPEN,
    sender_size,
)

_STAMP = struct.Struct("!QH")  # Timestamp and Error Estimate (RFC 4656 §4.1.2)


def stamp_of(ntp: int, error: int) -> Stamp:
    """A record timestamp from a packet's Timestamp and Error Estimate."""
    estimate = ErrorEstimate.from_int(error)
    return Stamp(ntp_to_ns(ntp), estimate.sync, estimate.seconds)


class SessionSender:
    """Builds test packets and records replies for one session."""

    def __init__(
        self,
        record: TwampSessionRecord,
        padding: bytes,
        protection: SessionProtection | None = None,
    ) -> None:
        self.record = record
        self._padding = padding
        self._protection = protection
        secured = protection is not None
        self._head = SENDER_AUTH if secured else SENDER_OPEN
        self._reply = REFLECTOR_AUTH if secured else REFLECTOR_OPEN
        self._stamp_at = 16 if secured else 4  # after Seq, and in secured modes 12 MBZ octets
        self._size = sender_size(secured, len(padding))
        self._answered: set[int] = set()

    @property
    def packet_size(self) -> int:
        """Octets of each sender packet."""
        return self._size

    @property
    def answered(self) -> int:
        """How many distinct sent packets have been reflected back."""
        return len(self._answered)

    def prepare(self, seq: int) -> bytearray:
        """A packet for ``seq`` whose Timestamp and Error Estimate are still to be stamped."""
        packet = bytearray(self._size)
        self._head.pack_into(packet, 0, seq, 0, 1)
        packet[self._size - len(self._padding) :] = self._padding
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

    def mark_sent(self, seq: int, ntp: int, error: ErrorEstimate) -> None:
        """Record that packet ``seq`` left with timestamp ``ntp``."""
        self.record.sent.append(Sent(seq, Stamp(ntp_to_ns(ntp), error.sync, error.seconds)))

    def on_datagram(self, data: bytes, t4: Stamp, ttl: int | None) -> Reply | None:
        """Record a reflected packet; a malformed, forged or unknown one is counted and dropped."""
        dropped = self.record.dropped
        if self._protection is not None:
            try:
                data = self._protection.reflector.unprotect(data)
            except AuthenticationError:
                dropped.auth_failures += 1
                return None
            except ProtocolError:
                dropped.truncated += 1
                return None
        if len(data) < self._reply.size:
            dropped.truncated += 1
            return None
        # Fields of RFC 5357 §4.2.1, unpacked in place: this runs per packet.
        seq, t3, error, t2, s_seq, t1, s_error, s_ttl = self._reply.unpack_from(data)
        if not error & 0xFF or not s_error & 0xFF:  # Multiplier 0: corrupt (RFC 4656 §4.1.2)
            dropped.truncated += 1
            return None
        if s_seq >= len(self.record.sent):
            dropped.unknown_seq += 1
            return None
        reply = Reply(
            sender_seq=s_seq,
            reflector_seq=seq,
            t1=stamp_of(t1, s_error),
            t2=stamp_of(t2, error),
            t3=stamp_of(t3, error),
            t4=t4,
            sender_ttl=s_ttl,
            ttl=ttl,
        )
        self.record.replies.append(reply)
        self._answered.add(s_seq)
        return reply
