"""The Session-Sender's packet work, without sockets or clocks (RFC 5357 §4.1).

Packets are built and stamped by ``SenderPackets``; ``mark_sent`` records a
packet once sent; ``on_datagram`` turns a reflected packet into a ``Reply``.
``kernel_sent`` records the kernel's transmit time of a packet, which then
is the T1 of its replies (the in-packet T1 stays in its ``Sent`` record);
``settle`` gives it to replies that arrived before it.
"""

import functools

from otwamp.results.records import Reply, Sent, Stamp, TwampSessionRecord
from otwamp.results.twamp_features import FeatureTally
from otwamp.session.packets import SenderPackets
from otwamp.session.protection import SessionProtection, open_packet
from otwamp.wire.timestamp import ErrorEstimate, ntp_to_ns
from otwamp.wire.twamp_features import PacketFormat


def stamp_of(ntp: int, error: int) -> Stamp:
    """A record timestamp from a packet's Timestamp and Error Estimate."""
    sync, seconds = _estimate(error)
    return Stamp(ntp_to_ns(ntp), sync, seconds)


@functools.lru_cache(maxsize=256)
def _estimate(error: int) -> tuple[bool, float]:
    """S bit and seconds of an Error Estimate; a session repeats a handful, decoded once."""
    estimate = ErrorEstimate.from_int(error)
    return estimate.sync, estimate.seconds


def _kernel_t1(in_packet: Stamp, kernel_ns: int) -> Stamp:
    """The kernel's transmit time with the packet's Error Estimate (same clock, same state)."""
    return Stamp(kernel_ns, in_packet.sync, in_packet.error)


class SessionSender(SenderPackets):
    """Builds test packets and records replies for one TWAMP session."""

    def __init__(
        self,
        record: TwampSessionRecord,
        padding: bytes,
        protection: SessionProtection | None = None,
        test_format: PacketFormat | None = None,
        tally: FeatureTally | None = None,
    ) -> None:
        super().__init__(padding, protection)
        self.record = record
        self._reply_protection = None if protection is None else protection.reflector
        form = test_format or PacketFormat(protection is not None)  # RFC 6038, RFC 7750
        self._reply = form.reflector_layout
        self.tally = tally  # what the RFC 6038 / RFC 7750 modes show, if any is in use
        self._reflected = form.reflected(padding)
        self._reflected_at = self._reply.size
        self._answered = bytearray()  # one bit per sent packet reflected back (not a set)
        self._answered_count = 0
        self._late = False  # a kernel transmit time came after a reply to its packet

    @property
    def packet_size(self) -> int:
        """Octets of each sender packet."""
        return self.size

    @property
    def answered(self) -> int:
        """How many distinct sent packets have been reflected back."""
        return self._answered_count

    def mark_sent(self, seq: int, ntp: int, error: ErrorEstimate) -> None:
        """Record that packet ``seq`` left with timestamp ``ntp``."""
        self.record.sent.append(Sent(seq, Stamp(ntp_to_ns(ntp), error.sync, error.seconds)))

    def kernel_sent(self, seq: int, ns: int) -> None:
        """Record the kernel's transmit time of packet ``seq`` (SO_TIMESTAMPING)."""
        sent = self.record.sent_log
        if 0 <= seq < len(sent) and sent.kernel_sent(seq, ns):  # the pacer sends 0, 1, 2...
            self._late = self._late or self._was_answered(seq)

    def settle(self) -> None:
        """Give the replies that arrived before their packet's kernel transmit time that T1."""
        if not self._late:
            return
        kernel_ns, t1 = self.record.sent_log.kernel_ns, self.record.reply_log.t[0]
        for index, seq in enumerate(self.record.reply_log.sender_seq):
            kernel = kernel_ns(seq)
            if kernel is not None:
                t1[index] = kernel  # the Error Estimate stays the packet's
        self._late = False

    def _was_answered(self, seq: int) -> bool:
        byte = seq >> 3
        return byte < len(self._answered) and bool(self._answered[byte] & (1 << (seq & 7)))

    def _answer(self, seq: int) -> None:
        byte, bit = seq >> 3, 1 << (seq & 7)
        answered = self._answered
        if byte >= len(answered):
            answered.extend(bytes(byte + 1 - len(answered) + len(answered) // 8))
        if not answered[byte] & bit:
            answered[byte] |= bit
            self._answered_count += 1

    def on_datagram(
        self, data: bytes, t4: Stamp, ttl: int | None, tos: int | None = None
    ) -> Reply | None:
        """Record a reflected packet; a malformed, forged or unknown one is counted and dropped."""
        dropped = self.record.dropped
        fields = open_packet(data, self._reply_protection, self._reply, dropped)
        if fields is None:
            return None
        seq, t3, error, t2, s_seq, t1, s_error, s_ttl = fields[:8]  # RFC 5357 §4.2.1
        sent = self.record.sent_log
        if s_seq >= len(sent):
            dropped.unknown_seq += 1
            return None
        t1_stamp, kernel = stamp_of(t1, s_error), sent.kernel_ns(s_seq)
        reply = Reply(
            sender_seq=s_seq,
            reflector_seq=seq,
            t1=t1_stamp if kernel is None else _kernel_t1(t1_stamp, kernel),
            t2=stamp_of(t2, error),
            t3=stamp_of(t3, error),
            t4=t4,
            sender_ttl=s_ttl,
            ttl=ttl,
        )
        self.record.replies.append(reply)
        self._answer(s_seq)
        if self.tally is not None:  # S-DSCP-ECN follows the Sender TTL (RFC 7750 §2.2.1)
            self.tally.saw(fields[8] if len(fields) > 8 else None, tos)
            if self._reflected:  # RFC 6038 §5.2.1
                at = self._reflected_at
                self.tally.saw_reflected(data[at : at + len(self._reflected)] == self._reflected)
        return reply
