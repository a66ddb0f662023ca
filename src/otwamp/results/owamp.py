"""Metrics and reports of OWAMP sessions, one per direction (RFC 4656, pure, no I/O).

A session's packets are those below Next Seqno outside the skip ranges
(RFC 4656 §3.8); the rest were never sent and are not lost. Each sequence
number counts once, at its first arrival (RFC 4737 §3.6); delays carry their
sync flags (decision D9). The JSON and text reuse the TWAMP report's helpers.
"""

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from otwamp.results.delay import DelaySample
from otwamp.results.metrics import DirectionSummary, PacketCounts, summarize_direction
from otwamp.results.ordering import count_reordered, reordered_ratio
from otwamp.results.records import Arrival, OwampSessionRecord
from otwamp.results.report import (
    JsonObject,
    clock_note,
    direction_json,
    hops_text,
    percent,
    stamp_json,
    stamp_text,
    stats_lines,
    variation_line,
)
from otwamp.results.stats import seconds

# The keys of the TWAMP direction object an OWAMP direction shows; its loss
# and reordering are under "packets" instead.
PATH_KEYS = ("delay", "sync", "error", "ipdv", "pdv", "ttl", "hops")
LABELS = {"to": "to the server", "from": "from the server"}


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
    protocol: str = "owamp"


def session_end(record: OwampSessionRecord) -> int:
    """One past the last sequence number the sender got to: Next Seqno, else the count."""
    return record.count if record.next_seqno is None else min(record.next_seqno, record.count)


def skipped_count(ranges: Iterable[tuple[int, int]], end: int) -> int:
    """How many sequence numbers below ``end`` the skip ranges hold (RFC 4656 §3.8)."""
    return sum(max(0, min(last, end - 1) - first + 1) for first, last in ranges)


def first_arrivals(arrivals: Iterable[Arrival]) -> list[Arrival]:
    """The first arrival of each sequence number, in arrival order (RFC 4737 §3.6)."""
    firsts: dict[int, Arrival] = {}
    for arrival in arrivals:
        firsts.setdefault(arrival.seq, arrival)
    return list(firsts.values())


def delay_sample(arrival: Arrival) -> DelaySample:
    """One-way delay receive - send, synchronized only if both stamps are (RFC 4656 §4.1.2)."""
    return DelaySample.between(arrival.seq, arrival.sent, arrival.received)


def summarize_owamp(record: OwampSessionRecord) -> OwampSummary:
    """Compute every metric of one direction's session record."""
    end = session_end(record)
    sent = end - skipped_count(record.skipped, end)
    arrivals = [arrival for arrival in record.arrivals if arrival.seq < end]
    firsts = first_arrivals(arrivals)
    lost = max(0, sent - len(firsts))
    duplicates = len(arrivals) - len(firsts)
    reordered = count_reordered(arrival.seq for arrival in firsts)
    dropped = record.dropped
    packets = PacketCounts(
        sent=sent,
        received=len(firsts),
        lost=lost,
        duplicates=duplicates,
        reordered=reordered,
        truncated=dropped.truncated,
        wrong_source=dropped.wrong_source,
        unknown_seq=dropped.unknown_seq,
        auth_failures=dropped.auth_failures,
    )
    path = summarize_direction(
        (delay_sample(arrival) for arrival in firsts),
        lost=lost,
        duplicates=duplicates,
        reordered=reordered,
        ttls=(arrival.ttl for arrival in arrivals),
        initial_ttl=record.initial_ttl,
    )
    return OwampSummary(
        sid=record.sid,
        direction=record.direction,
        mode=record.mode,
        key_source=record.key_source,
        completed=record.completed,
        packets=packets,
        path=path,
    )


# --- JSON summary -----------------------------------------------------------


def packets_json(packets: PacketCounts) -> JsonObject:
    """The packet accounting object of the JSON summary."""
    return {
        "sent": packets.sent,
        "received": packets.received,
        "lost": packets.lost,
        "duplicates": packets.duplicates,
        "reordered": packets.reordered,
        "auth_failures": packets.auth_failures,
        "dropped": packets.dropped,
    }


def session_json(summary: OwampSummary | None) -> JsonObject | None:
    """One direction's object (times in seconds), or null when it was not measured."""
    if summary is None:
        return None
    path = direction_json(summary.path)
    return (
        {"sid": summary.sid.hex(), "packets": packets_json(summary.packets)}
        | {key: path[key] for key in PATH_KEYS}
        | {"completed": summary.completed}
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


def counts_line(packets: PacketCounts) -> str:
    """Sent, received, loss, duplicates and reordering of one direction."""
    ratio = reordered_ratio(packets.reordered, packets.received)
    return (
        f"{packets.sent} sent, {packets.received} received, {packets.lost} lost "
        f"({percent(packets.lost, packets.sent)}), {packets.duplicates} duplicates, "
        f"{packets.reordered} reordered" + ("" if ratio is None else f" ({100 * ratio:.3f}%)")
    )


def dropped_lines(packets: PacketCounts) -> list[str]:
    """The datagrams the receiver refused, when there were any."""
    if not packets.dropped:
        return []
    return [
        f"dropped: {packets.dropped} (truncated {packets.truncated}, unknown seq "
        f"{packets.unknown_seq}, authentication failures {packets.auth_failures})"
    ]


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


def missing_packet(seq: int, skipped: bool, json_lines: bool) -> str:
    """The line of a packet that never arrived: skipped by the sender, or lost."""
    if json_lines:
        return json.dumps({"seq": seq, "lost": not skipped, "skipped": skipped})
    return f"{seq} {'SKIPPED' if skipped else 'LOST'}"


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


def raw_lines(record: OwampSessionRecord, json_lines: bool) -> Iterator[str]:
    """One line per arrival (duplicates marked) or missing packet, in sequence order."""
    by_seq: dict[int, list[Arrival]] = {}
    for arrival in record.arrivals:
        by_seq.setdefault(arrival.seq, []).append(arrival)
    end = session_end(record)
    skipped = skipped_seqs(record.skipped, end)
    for seq in range(end):
        arrivals = by_seq.get(seq)
        if arrivals:
            yield from packet_lines(arrivals, json_lines)
        else:
            yield missing_packet(seq, seq in skipped, json_lines)
