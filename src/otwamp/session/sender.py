"""The Session-Sender's packet work, without sockets or clocks (RFC 5357 §4.1).

``prepare`` builds a packet ahead of its send time; ``stamp`` writes the
timestamp into it as the very last step before the send call (decision D10)
and ``mark_sent`` records it once the send succeeded; ``on_datagram`` turns
a reflected packet into a ``Reply`` record.
"""

from otwamp.results.records import Reply, Sent, Stamp, TwampSessionRecord
from otwamp.wire.timestamp import ErrorEstimate, ntp_to_ns
from otwamp.wire.twamp_test import (
    REFLECTOR_OPEN,
    REFLECTOR_OPEN_SIZE,
    SENDER_OPEN,
    sender_size,
)

_TIMESTAMP_AT = 4  # Timestamp follows the 4-octet Sequence Number (RFC 4656 §4.1.2)


def _stamp_of(ntp: int, error: int) -> Stamp:
    estimate = ErrorEstimate.from_int(error)
    return Stamp(ntp_to_ns(ntp), estimate.sync, estimate.seconds)


class SessionSender:
    """Builds test packets and records replies for one unauthenticated session."""

    def __init__(self, record: TwampSessionRecord, padding: bytes) -> None:
        self.record = record
        self._padding = padding
        self._size = sender_size(False, len(padding))
        self._answered: set[int] = set()

    @property
    def answered(self) -> int:
        """How many distinct sent packets have been reflected back."""
        return len(self._answered)

    @property
    def packet_size(self) -> int:
        """Octets of each sender packet."""
        return self._size

    def prepare(self, seq: int) -> bytearray:
        """A packet for ``seq`` whose Timestamp and Error Estimate are still to be stamped."""
        packet = bytearray(self._size)
        SENDER_OPEN.pack_into(packet, 0, seq, 0, 1)
        packet[SENDER_OPEN.size :] = self._padding
        return packet

    @staticmethod
    def stamp(packet: bytearray, seq: int, ntp: int, error: int) -> None:
        """Write the send Timestamp and Error Estimate (RFC 4656 §4.1.2)."""
        SENDER_OPEN.pack_into(packet, 0, seq, ntp, error)

    def mark_sent(self, seq: int, ntp: int, error: ErrorEstimate) -> None:
        """Record that packet ``seq`` left with timestamp ``ntp``."""
        self.record.sent.append(Sent(seq, Stamp(ntp_to_ns(ntp), error.sync, error.seconds)))

    def on_datagram(self, data: bytes, t4: Stamp, ttl: int | None) -> Reply | None:
        """Record a reflected packet; a malformed or unknown one is counted and dropped."""
        dropped = self.record.dropped
        if len(data) < REFLECTOR_OPEN_SIZE:
            dropped.truncated += 1
            return None
        # Fields of RFC 5357 §4.2.1, unpacked in place: this runs per packet.
        seq, t3, error, t2, s_seq, t1, s_error, s_ttl = REFLECTOR_OPEN.unpack_from(data)
        if not error & 0xFF or not s_error & 0xFF:  # Multiplier 0: corrupt (RFC 4656 §4.1.2)
            dropped.truncated += 1
            return None
        if s_seq >= len(self.record.sent):
            dropped.unknown_seq += 1
            return None
        reply = Reply(
            sender_seq=s_seq,
            reflector_seq=seq,
            t1=_stamp_of(t1, s_error),
            t2=_stamp_of(t2, error),
            t3=_stamp_of(t3, error),
            t4=t4,
            sender_ttl=s_ttl,
            ttl=ttl,
        )
        self.record.replies.append(reply)
        self._answered.add(s_seq)
        return reply
