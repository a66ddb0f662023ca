"""Metrics of a TWAMP session, computed from its per-packet records (pure, no I/O).

Round-trip time is (T4 - T1) - (T3 - T2), valid without synchronized clocks
(RFC 5357 §4.2.1, design D9); one-way delays carry their sync flags. Each
sender sequence number counts once (its first reply, RFC 4737 §3.6) for the
round trip and the forward direction; each reflector sequence number counts
once for the backward direction, since the reflector numbers every packet it
receives, duplicates included (RFC 5357 §4.2.1).
"""

from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from otwamp.results.delay import (
    MISSING,
    DelaySample,
    DelaySummary,
    OneWaySummary,
    summarize_delay_column,
    summarize_delays,
    summarize_one_way,
)
from otwamp.results.ordering import count_reordered, first_copies
from otwamp.results.records import NO_TTL, Dropped, Reply, ReplyLog, TwampSessionRecord
from otwamp.results.stats import Stats, summarize_column


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
    t1_kernel: int = 0  # sent packets whose T1 is the kernel's transmit time


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


def ttl_range(ttls: Iterable[int | None]) -> Range | None:
    """Range of the observed TTLs, ignoring unknown ones."""
    known = [ttl for ttl in ttls if ttl is not None]
    return Range(min(known), max(known)) if known else None


def hops_range(ttl: Range | None, initial_ttl: int) -> Range | None:
    """Hop counts initial TTL - TTL for a TTL range."""
    return None if ttl is None else Range(initial_ttl - ttl.max, initial_ttl - ttl.min)


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
    return _direction(
        summarize_one_way(samples),
        lost=lost,
        duplicates=duplicates,
        reordered=reordered,
        ttl=ttl_range(ttls),
        initial_ttl=initial_ttl,
    )


def dense(seqs: Sequence[int], count: int) -> bool:
    """Whether sequence numbers fit columns indexed by them (a hostile peer's may not)."""
    return not seqs or max(seqs) < 2 * count + 1024


def first_indices(seqs: "array[int]") -> Sequence[int]:
    """Indices of the first occurrence of each sequence number, in order (RFC 4737 §3.6).

    A ``range`` when every one is a first (no duplicates): no column at all.
    """
    firsts = array("I")
    if dense(seqs, len(seqs)):
        seen = bytearray(max(seqs, default=-1) + 1)
        for index, seq in enumerate(seqs):
            if not seen[seq]:
                seen[seq] = 1
                firsts.append(index)
    else:
        kept: set[int] = set()
        for index, seq in enumerate(seqs):
            if seq not in kept:
                kept.add(seq)
                firsts.append(index)
    return range(len(seqs)) if len(firsts) == len(seqs) else firsts


def delays_by_seq(
    seqs: "array[int]", indices: Sequence[int], delays: Callable[[], Iterable[int]]
) -> DelaySummary:
    """``summarize_delays`` of the delays of replies ``indices`` (first copies: distinct
    sequence numbers, every one in ``seqs``), by sequence number in a column if dense.

    ``delays`` gives them, in the order of ``indices``, each time it is called.
    """
    numbered = zip((seqs[index] for index in indices), delays(), strict=True)
    if not dense(seqs, len(indices)):
        return summarize_delays(numbered)
    column = array("q", [MISSING]) * (max(seqs, default=-1) + 1)
    for seq, delay in numbered:
        column[seq] = delay
    return summarize_delay_column(column, delays)


def in_seq_order(
    seqs: "array[int]", indices: Sequence[int], values: Iterable[int]
) -> Iterator[int]:
    """``values`` of replies ``indices`` (first copies) in the order of their ``seqs``."""
    numbered = zip((seqs[index] for index in indices), values, strict=True)
    if not dense(seqs, len(indices)):
        return (value for _seq, value in sorted(numbered))
    column = array("q", [MISSING]) * (max(seqs, default=-1) + 1)
    for seq, value in numbered:
        column[seq] = value
    return (value for value in column if value != MISSING)


def column_range(column: "array[int]", missing: int | None = None) -> Range | None:
    """Range of a column of TTLs, leaving out ``missing`` (unknown)."""
    if missing is not None and missing in column:
        column = array(column.typecode, (value for value in column if value != missing))
    return Range(min(column), max(column)) if column else None


def first_copies_of(seqs: Iterable[int], column: "array[int]") -> Iterator[int]:
    """``first_copies`` of ``seqs``, all in ``column``: a bit per number where it is dense."""
    if not dense(column, len(column)):
        return first_copies(seqs)
    return _first_copies_dense(seqs, bytearray(max(column, default=-1) + 1))


def _first_copies_dense(seqs: Iterable[int], seen: bytearray) -> Iterator[int]:
    for seq in seqs:
        if not seen[seq]:
            seen[seq] = 1
            yield seq


def one_way(
    log: ReplyLog, indices: Sequence[int], seqs: "array[int]", sent: int, received: int
) -> OneWaySummary:
    """The one-way delays T``received + 1`` - T``sent + 1`` of the replies ``indices``."""
    start, end = log.t[sent], log.t[received]
    pairs = log.estimate_pairs(indices, sent, received)
    return OneWaySummary(
        delays=delays_by_seq(seqs, indices, lambda: (end[i] - start[i] for i in indices)),
        sync=bool(indices) and all(a[0] and b[0] for a, b in pairs),  # RFC 4656 §4.1.2
        error=max((a[1] + b[1] for a, b in pairs), default=None),
    )


def summarize_twamp(record: TwampSessionRecord) -> TwampSummary:
    """Compute every metric of a TWAMP session record, from its columns."""
    log = record.reply_log
    t1, t2, t3, t4 = log.t
    firsts = first_indices(log.sender_seq)  # one per sender packet
    reflected = first_indices(log.reflector_seq)  # one per reflector packet
    sent, replies = len(record.sent), len(log)
    forward_dups = len(reflected) - len(firsts)
    # Packets the reflector sent: it numbers them from 0 (RFC 5357 §4.2.1), so this is
    # exact unless the last replies were lost; then their loss is charged forward.
    reflector_count = max(log.reflector_seq, default=-1) + 1
    # The reflector also numbered the forward duplicates it reflected; they are not losses.
    forward_lost = max(0, sent - (reflector_count - forward_dups))
    packets = PacketCounts.counted(
        record.dropped,
        sent=sent,
        received=len(firsts),
        duplicates=replies - len(firsts),
        reordered=count_reordered(log.sender_seq[i] for i in firsts),
    )
    # Forward reordering: sender seqs in the order the reflector numbered them (RFC 4737 §3.3).
    in_reflector_order = in_seq_order(
        log.reflector_seq, reflected, (log.sender_seq[i] for i in reflected)
    )
    forward = _direction(
        one_way(log, firsts, log.sender_seq, 0, 1),
        lost=forward_lost,
        duplicates=forward_dups,
        reordered=count_reordered(first_copies_of(in_reflector_order, log.sender_seq)),
        ttl=column_range(log.sender_ttl),
        initial_ttl=record.initial_ttl,
    )
    backward = _direction(
        one_way(log, reflected, log.reflector_seq, 2, 3),
        lost=reflector_count - len(reflected),
        duplicates=replies - len(reflected),
        reordered=count_reordered(log.reflector_seq[i] for i in reflected),
        ttl=column_range(log.ttl, NO_TTL),
        initial_ttl=record.initial_ttl,
    )

    def rtt() -> Iterator[int]:
        return ((t4[i] - t1[i]) - (t3[i] - t2[i]) for i in firsts)  # RFC 5357 §4.2.1

    return TwampSummary(
        sid=record.sid,
        mode=record.mode,
        key_source=record.key_source,
        completed=record.completed,
        packets=packets,
        rtt=delays_by_seq(log.sender_seq, firsts, rtt),
        forward=forward,
        backward=backward,
        processing=summarize_column(array("q", (t3[i] - t2[i] for i in reflected))),
        t1_kernel=record.sent_log.kernel_count,
    )


def _direction(
    one_way: OneWaySummary,
    *,
    lost: int,
    duplicates: int,
    reordered: int,
    ttl: Range | None,
    initial_ttl: int,
) -> DirectionSummary:
    return DirectionSummary(
        one_way=one_way,
        lost=lost,
        duplicates=duplicates,
        reordered=reordered,
        ttl=ttl,
        hops=hops_range(ttl, initial_ttl),
    )
