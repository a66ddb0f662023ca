"""The Session-Sender's packet work, without sockets or clocks (RFC 5357 §4.1).

Packets are built and stamped by ``SenderPackets``; ``mark_sent`` records a
packet once sent; ``on_datagram`` turns a reflected packet into a ``Reply``.
"""

import functools

from otwamp.results.records import Reply, Sent, Stamp, TwampSessionRecord
from otwamp.session.packets import SenderPackets
from otwamp.session.protection import SessionProtection, open_packet
from otwamp.wire.timestamp import ErrorEstimate, ntp_to_ns
from otwamp.wire.twamp_test import reflector_layout


def stamp_of(ntp: int, error: int) -> Stamp:
    """A record timestamp from a packet's Timestamp and Error Estimate."""
    sync, seconds = _estimate(error)
    return Stamp(ntp_to_ns(ntp), sync, seconds)


@functools.lru_cache(maxsize=256)
def _estimate(error: int) -> tuple[bool, float]:
    """S bit and seconds of an Error Estimate; a session repeats a handful, decoded once."""
    estimate = ErrorEstimate.from_int(error)
    return estimate.sync, estimate.seconds


class SessionSender(SenderPackets):
    """Builds test packets and records replies for one TWAMP session."""

    def __init__(
        self,
        record: TwampSessionRecord,
        padding: bytes,
        protection: SessionProtection | None = None,
    ) -> None:
        super().__init__(padding, protection)
        self.record = record
        self._reply_protection = None if protection is None else protection.reflector
        self._reply = reflector_layout(protection is not None)
        self._answered: set[int] = set()

    @property
    def packet_size(self) -> int:
        """Octets of each sender packet."""
        return self.size

    @property
    def answered(self) -> int:
        """How many distinct sent packets have been reflected back."""
        return len(self._answered)

    def mark_sent(self, seq: int, ntp: int, error: ErrorEstimate) -> None:
        """Record that packet ``seq`` left with timestamp ``ntp``."""
        self.record.sent.append(Sent(seq, Stamp(ntp_to_ns(ntp), error.sync, error.seconds)))

    def on_datagram(self, data: bytes, t4: Stamp, ttl: int | None) -> Reply | None:
        """Record a reflected packet; a malformed, forged or unknown one is counted and dropped."""
        dropped = self.record.dropped
        fields = open_packet(data, self._reply_protection, self._reply, dropped)
        if fields is None:
            return None
        seq, t3, error, t2, s_seq, t1, s_error, s_ttl = fields  # RFC 5357 §4.2.1
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
