"""Metrics and reports of OWAMP sessions, one per direction (RFC 4656, pure, no I/O).

A session's packets are those below Next Seqno outside the skip ranges
(RFC 4656 §3.8); the rest were never sent and are not lost. Sent packets
whose records the receiver discarded under §3.8 (due within Timeout of the
stop) are counted as discarded, neither received nor lost. Each sequence
number counts once, at its first arrival (RFC 4737 §3.6); delays carry their
sync flags (decision D9). The metrics read the records' columns in one pass
with no object per packet, as the TWAMP ones do (``results.metrics``); the
JSON and text reuse the TWAMP report's helpers.
"""

import json
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from otwamp.results.delay import DelaySample, OneWaySummary
from otwamp.results.metrics import (
    DirectionSummary,
    PacketCounts,
    column_range,
    delays_by_seq,
    first_indices,
    hops_range,
)
from otwamp.results.ordering import arrival_chains, copies, count_reordered
from otwamp.results.records import NO_TTL, Arrival, Arrivals, OwampSessionRecord
from otwamp.results.report import (
    JsonObject,
    clock_note,
    counts_line,
    direction_json,
    dropped_lines,
    hops_text,
    packets_json,
    stamp_json,
    stamp_text,
    stats_lines,
    variation_line,
)
from otwamp.results.stats import seconds
from otwamp.wire.timestamp import ntp_to_ns

# The keys of the TWAMP direction object an OWAMP direction shows; its loss
# and reordering are under "packets" instead.
PATH_KEYS = ("delay", "sync", "error", "ipdv", "pdv", "ttl", "hops")
LABELS = {"to": "to the server", "from": "from the server"}
MISSING = ("lost", "skipped", "discarded")  # why a packet of the session has no arrival


@dataclass(frozen=True, slots=True)
class OwampSummary:
    """Everything the reports show about one direction's OWAMP-Test session."""

    sid: bytes
    direction: str  # "to" or "from" the server
    mode: str
    key_source: str
    completed: bool
    packets: PacketCounts
    path: DirectionSummary
    incomplete: str | None = None  # why the results may be incomplete (RFC 4656 §3.8)
    protocol: str = "owamp"


def session_end(record: OwampSessionRecord) -> int:
    """One past the last sequence number the sender got to: Next Seqno, else the count."""
    return record.count if record.next_seqno is None else min(record.next_seqno, record.count)


def kept_end(record: OwampSessionRecord) -> int:
    """One past the last sequence number whose record the receiver kept (RFC 4656 §3.8)."""
    end = session_end(record)
    return end if record.discarded_from is None else min(record.discarded_from, end)


def fetched_discard_start(seqs: Iterable[int], next_seqno: int) -> int | None:
    """Where a remote receiver's §3.8 discard began, from its fetched records' seqs.

    Fetch-Session gives a record, lost ones included, for every packet the
    finished receiver kept (RFC 4656 §3.9), so the discard starts after the
    last of them; None when nothing below ``next_seqno`` was discarded.
    """
    kept = max(seqs, default=-1) + 1
    return kept if kept < next_seqno else None


def skipped_count(ranges: Iterable[tuple[int, int]], end: int) -> int:
    """How many sequence numbers below ``end`` the skip ranges hold (RFC 4656 §3.8)."""
    return sum(max(0, min(last, end - 1) - first + 1) for first, last in ranges)


def delay_sample(arrival: Arrival) -> DelaySample:
    """One-way delay receive - send, synchronized only if both stamps are (RFC 4656 §4.1.2)."""
    return DelaySample.between(arrival.seq, arrival.sent, arrival.received)


def one_way(log: Arrivals, firsts: Sequence[int]) -> OneWaySummary:
    """The one-way delays of the arrivals ``firsts``, receive - send (RFC 4656 §4.1.2)."""
    seqs, sent, received = log.seq, log.sent, log.received
    pairs = log.estimate_pairs(firsts)
    return OneWaySummary(
        delays=delays_by_seq(
            seqs, firsts, lambda: (received[i] - ntp_to_ns(sent[i]) for i in firsts)
        ),
        sync=bool(firsts) and all(a[0] and b[0] for a, b in pairs),  # both stamps synchronized
        error=max((a[1] + b[1] for a, b in pairs), default=None),
    )


def summarize_owamp(record: OwampSessionRecord) -> OwampSummary:
    """Compute every metric of one direction's session record, from its columns."""
    end, kept = session_end(record), kept_end(record)
    sent = end - skipped_count(record.skipped, end)
    log = record.arrivals
    seqs, ttls = log.seq, log.ttl
    firsts = first_indices(seqs)  # the first arrival of each sequence number (RFC 4737 §3.6)
    if max(seqs, default=-1) >= kept:  # leave out the records discarded under §3.8
        firsts = array("I", (index for index in firsts if seqs[index] < kept))
        ttls = array("h", (ttl for seq, ttl in zip(seqs, ttls, strict=True) if seq < kept))
    duplicates = len(ttls) - len(firsts)
    reordered = count_reordered(seqs[index] for index in firsts)
    packets = PacketCounts.counted(
        record.dropped,
        sent=sent,
        received=len(firsts),
        duplicates=duplicates,
        reordered=reordered,
        discarded=sent - (kept - skipped_count(record.skipped, kept)),
    )
    ttl = column_range(ttls, NO_TTL)
    path = DirectionSummary(
        one_way=one_way(log, firsts),
        lost=packets.lost,
        duplicates=duplicates,
        reordered=reordered,
        ttl=ttl,
        hops=hops_range(ttl, record.initial_ttl),
    )
    return OwampSummary(
        sid=record.sid,
        direction=record.direction,
        mode=record.mode,
        key_source=record.key_source,
        completed=record.completed,
        packets=packets,
        path=path,
        incomplete=record.incomplete,
    )


# --- JSON summary -----------------------------------------------------------


def session_json(summary: OwampSummary | None) -> JsonObject | None:
    """One direction's object (times in seconds), or null when it was not measured."""
    if summary is None:
        return None
    path = direction_json(summary.path)
    return (
        {"sid": summary.sid.hex(), "packets": packets_json(summary.packets)}
        | {key: path[key] for key in PATH_KEYS}
        | {"completed": summary.completed, "incomplete": summary.incomplete}
    )


def to_json(
    to_summary: OwampSummary | None, from_summary: OwampSummary | None, mode: str, key_source: str
) -> JsonObject:
    """The --json object of an owping run, in the shape of the TWAMP one."""
    return {
        "protocol": "owamp",
        "mode": mode,
        "key_source": key_source,
        "to": session_json(to_summary),
        "from": session_json(from_summary),
    }


# --- human text -------------------------------------------------------------


def ttl_line(path: DirectionSummary) -> str:
    """The TTL range and hop count of one direction."""
    ttl = "unknown" if path.ttl is None else f"{path.ttl.min}-{path.ttl.max}"
    return f"TTL {ttl}, hops = {hops_text(path.hops)}"


def session_text(summary: OwampSummary, percentiles: bool) -> list[str]:
    """The block of one direction, in the spirit of owping's."""
    label = LABELS.get(summary.direction, summary.direction)
    lines = [
        f"--- owping statistics {label}, SID {summary.sid.hex()} ---",
        f"mode {summary.mode}, key source {summary.key_source}",
    ]
    if not summary.completed:
        lines.append("session ended early: results are partial")
    if summary.incomplete is not None:
        lines.append(f"warning: results may be incomplete: {summary.incomplete}")
    path = summary.path
    lines.append(counts_line(summary.packets))
    lines += dropped_lines(summary.packets)
    lines += stats_lines("one-way delay", path.one_way.delays.delay, percentiles, clock_note(path))
    lines.append(variation_line("one-way", path.one_way.delays))
    lines.append(ttl_line(path))
    return lines


def render_text(
    to_summary: OwampSummary | None, from_summary: OwampSummary | None, percentiles: bool
) -> str:
    """The human report, one block per measured direction; percentiles adds p25..p99."""
    blocks = [session_text(s, percentiles) for s in (to_summary, from_summary) if s is not None]
    return "\n".join("\n".join(block) for block in blocks) + "\n"


# --- raw per-packet lines ---------------------------------------------------


def arrival_text(arrival: Arrival, duplicate: bool) -> str:
    """seq send-time receive-time ttl, like owping -R, DUP marked."""
    ttl = "-" if arrival.ttl is None else str(arrival.ttl)
    line = f"{arrival.seq} {stamp_text(arrival.sent)} {stamp_text(arrival.received)} {ttl}"
    return line + (" DUP" if duplicate else "")


def arrival_json(arrival: Arrival, duplicate: bool) -> JsonObject:
    """One arrival as a JSON record, with its one-way delay in seconds."""
    return {
        "seq": arrival.seq,
        "lost": False,
        "duplicate": duplicate,
        "sent": stamp_json(arrival.sent),
        "received": stamp_json(arrival.received),
        "ttl": arrival.ttl,
        "delay": seconds(delay_sample(arrival).delay_ns),
    }


def missing_packet(seq: int, status: str, json_lines: bool) -> str:
    """The line of a packet that never arrived: "lost", "skipped" or "discarded" (§3.8)."""
    if json_lines:
        return json.dumps({"seq": seq} | {kind: kind == status for kind in MISSING})
    return f"{seq} {status.upper()}"


def packet_lines(arrivals: Sequence[Arrival], json_lines: bool) -> Iterator[str]:
    """The lines of one received packet, copies after the first marked duplicates."""
    for index, arrival in enumerate(arrivals):
        if json_lines:
            yield json.dumps(arrival_json(arrival, index > 0))
        else:
            yield arrival_text(arrival, index > 0)


def skipped_seqs(ranges: Iterable[tuple[int, int]], end: int) -> set[int]:
    """The sequence numbers below ``end`` that the skip ranges hold."""
    return {seq for first, last in ranges for seq in range(first, min(last + 1, end))}


def missing_status(seq: int, skipped: set[int], kept: int) -> str:
    """Why packet ``seq`` has no arrival: skipped by the sender, discarded (§3.8) or lost."""
    if seq in skipped:
        return "skipped"
    return "discarded" if seq >= kept else "lost"


def raw_lines(record: OwampSessionRecord, json_lines: bool) -> Iterator[str]:
    """One line per arrival (duplicates marked) or missing packet, in sequence order."""
    log, kept, end = record.arrivals, kept_end(record), session_end(record)
    heads, links = arrival_chains(log.seq, kept)
    skipped = skipped_seqs(record.skipped, end)
    for seq in range(end):
        indices = copies(heads, links, seq)
        if not indices:
            yield missing_packet(seq, missing_status(seq, skipped, kept), json_lines)
            continue
        yield from packet_lines([log[index] for index in indices], json_lines)
