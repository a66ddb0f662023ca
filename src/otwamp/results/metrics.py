"""Metrics of a TWAMP session, computed from its per-packet records (pure, no I/O).

Round-trip time is (T4 - T1) - (T3 - T2), valid without synchronized clocks
(RFC 5357 §4.2.1, design D9); one-way delays carry their sync flags. Each
sender sequence number counts once (its first reply, RFC 4737 §3.6) for the
round trip and the forward direction; each reflector sequence number counts
once for the backward direction, since the reflector numbers every packet it
receives, duplicates included (RFC 5357 §4.2.1).
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from otwamp.results.delay import (
    DelaySample,
    DelaySummary,
    OneWaySummary,
    summarize_delays,
    summarize_one_way,
)
from otwamp.results.ordering import count_reordered, first_copies
from otwamp.results.records import Dropped, Reply, TwampSessionRecord
from otwamp.results.stats import Stats, summarize


@dataclass(frozen=True, slots=True)
class Range:
    """Smallest and largest of a set of integers (TTLs, hop counts)."""

    min: int
    max: int


@dataclass(frozen=True, slots=True)
class PacketCounts:
    """Packet accounting of a session; duplicates are extra copies of a sender seq.

    ``discarded`` (OWAMP only) counts packets sent but whose records the
    receiver discarded under RFC 4656 §3.8: neither received nor lost.
    """

    sent: int
    received: int  # distinct sender sequence numbers replied to
    lost: int
    duplicates: int
    reordered: int  # RFC 4737 §3.3 over the round trip
    truncated: int
    corrupt: int  # Error Estimate Multiplier 0 (RFC 4656 §4.1.2)
    wrong_source: int
    unknown_seq: int
    auth_failures: int
    discarded: int = 0
    kernel_drops: int = 0  # dropped on the test socket by the kernel (SO_RXQ_OVFL)

    @classmethod
    def counted(
        cls,
        dropped: Dropped,
        *,
        sent: int,
        received: int,
        duplicates: int,
        reordered: int,
        discarded: int = 0,
    ) -> "PacketCounts":
        """The counts of a session whose refused datagrams are ``dropped``."""
        return cls(
            sent=sent,
            received=received,
            lost=max(0, sent - discarded - received),
            duplicates=duplicates,
            reordered=reordered,
            truncated=dropped.truncated,
            corrupt=dropped.corrupt,
            wrong_source=dropped.wrong_source,
            unknown_seq=dropped.unknown_seq,
            auth_failures=dropped.auth_failures,
            discarded=discarded,
            kernel_drops=dropped.kernel_drops,
        )

    @property
    def measured(self) -> int:
        """Sent packets whose fate is known: received or lost (not discarded)."""
        return self.sent - self.discarded

    @property
    def dropped(self) -> int:
        """Datagrams not accepted as replies, authentication failures included."""
        return (
            self.truncated
            + self.corrupt
            + self.wrong_source
            + self.unknown_seq
            + self.auth_failures
        )


@dataclass(frozen=True, slots=True)
class DirectionSummary:
    """One direction of the path: delay, loss, duplicates, reordering, TTL, hops."""

    one_way: OneWaySummary
    lost: int
    duplicates: int
    reordered: int
    ttl: Range | None  # None when no TTL was observed
    hops: Range | None  # initial TTL minus observed TTL


@dataclass(frozen=True, slots=True)
class TwampSummary:
    """Everything the reports show about one TWAMP-Test session."""

    sid: bytes
    mode: str
    key_source: str
    completed: bool
    packets: PacketCounts
    rtt: DelaySummary
    forward: DirectionSummary
    backward: DirectionSummary
    processing: Stats | None  # reflector's T3 - T2
    protocol: str = "twamp"


def rtt_ns(reply: Reply) -> int:
    """Round-trip time (T4 - T1) - (T3 - T2) (RFC 5357 §4.2.1)."""
    return (reply.t4.ns - reply.t1.ns) - (reply.t3.ns - reply.t2.ns)


def processing_ns(reply: Reply) -> int:
    """Reflector processing time T3 - T2."""
    return reply.t3.ns - reply.t2.ns


def forward_sample(reply: Reply) -> DelaySample:
    """Forward one-way delay T2 - T1, numbered by the sender's sequence (RFC 5357 §4.2.1)."""
    return DelaySample.between(reply.sender_seq, reply.t1, reply.t2)


def backward_sample(reply: Reply) -> DelaySample:
    """Backward one-way delay T4 - T3, numbered by the reflector's sequence."""
    return DelaySample.between(reply.reflector_seq, reply.t3, reply.t4)


def unique_by(replies: Iterable[Reply], key: Callable[[Reply], int]) -> list[Reply]:
    """The first reply for each key, in arrival order."""
    firsts: dict[int, Reply] = {}
    for reply in replies:
        firsts.setdefault(key(reply), reply)
    return list(firsts.values())


def by_sender_seq(reply: Reply) -> int:
    """The Session-Sender's sequence number of a reply."""
    return reply.sender_seq


def by_reflector_seq(reply: Reply) -> int:
    """The Session-Reflector's sequence number of a reply."""
    return reply.reflector_seq


def reflector_sent(replies: Sequence[Reply]) -> int:
    """Packets the reflector sent, estimated as its largest sequence number + 1.

    The reflector numbers its packets from 0 (RFC 5357 §4.2.1), so this is
    exact unless the last replies were lost; then it undercounts, and their
    loss is charged to the forward direction.
    """
    return max((reply.reflector_seq for reply in replies), default=-1) + 1


def ttl_range(ttls: Iterable[int | None]) -> Range | None:
    """Range of the observed TTLs, ignoring unknown ones."""
    known = [ttl for ttl in ttls if ttl is not None]
    return Range(min(known), max(known)) if known else None


def hops_range(ttl: Range | None, initial_ttl: int) -> Range | None:
    """Hop counts initial TTL - TTL for a TTL range."""
    return None if ttl is None else Range(initial_ttl - ttl.max, initial_ttl - ttl.min)


def forward_reordered(reflected: Sequence[Reply]) -> int:
    """Forward reordering: sender seqs in the order the reflector numbered them (RFC 4737 §3.3)."""
    in_reflector_order = sorted(reflected, key=by_reflector_seq)
    return count_reordered(first_copies(reply.sender_seq for reply in in_reflector_order))


def summarize_direction(
    samples: Iterable[DelaySample],
    *,
    lost: int,
    duplicates: int,
    reordered: int,
    ttls: Iterable[int | None],
    initial_ttl: int,
) -> DirectionSummary:
    """Gather one direction's figures."""
    ttl = ttl_range(ttls)
    return DirectionSummary(
        one_way=summarize_one_way(samples),
        lost=lost,
        duplicates=duplicates,
        reordered=reordered,
        ttl=ttl,
        hops=hops_range(ttl, initial_ttl),
    )


def summarize_twamp(record: TwampSessionRecord) -> TwampSummary:
    """Compute every metric of a TWAMP session record."""
    replies = record.replies
    firsts = unique_by(replies, by_sender_seq)  # one per sender packet
    reflected = unique_by(replies, by_reflector_seq)  # one per reflector packet
    sent = len(record.sent)
    forward_dups = len(reflected) - len(firsts)
    backward_dups = len(replies) - len(reflected)
    reflector_count = reflector_sent(replies)
    # The reflector also numbered the forward duplicates it reflected; they are not losses.
    forward_lost = max(0, sent - (reflector_count - forward_dups))
    packets = PacketCounts.counted(
        record.dropped,
        sent=sent,
        received=len(firsts),
        duplicates=len(replies) - len(firsts),
        reordered=count_reordered(reply.sender_seq for reply in firsts),
    )
    forward = summarize_direction(
        (forward_sample(reply) for reply in firsts),
        lost=forward_lost,
        duplicates=forward_dups,
        reordered=forward_reordered(reflected),
        ttls=(reply.sender_ttl for reply in replies),
        initial_ttl=record.initial_ttl,
    )
    backward = summarize_direction(
        (backward_sample(reply) for reply in reflected),
        lost=reflector_count - len(reflected),
        duplicates=backward_dups,
        reordered=count_reordered(reply.reflector_seq for reply in reflected),
        ttls=(reply.ttl for reply in replies),
        initial_ttl=record.initial_ttl,
    )
    return TwampSummary(
        sid=record.sid,
        mode=record.mode,
        key_source=record.key_source,
        completed=record.completed,
        packets=packets,
        rtt=summarize_delays((reply.sender_seq, rtt_ns(reply)) for reply in firsts),
        forward=forward,
        backward=backward,
        processing=summarize(processing_ns(reply) for reply in reflected),
    )
