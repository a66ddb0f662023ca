"""Reports of a TWAMP session: JSON summary, human text, raw per-packet lines.

Nothing here prints or writes; callers do. No key material reaches a report:
the summary and records hold only the SID, mode and key-source name.
"""

import json
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from otwamp.results.delay import DelaySummary
from otwamp.results.metrics import (
    DirectionSummary,
    PacketCounts,
    Range,
    TwampSummary,
    backward_sample,
    dense,
    forward_sample,
    processing_ns,
    rtt_ns,
)
from otwamp.results.ordering import arrival_chains, copies, reordered_ratio
from otwamp.results.records import Reply, Sent, Stamp, TwampSessionRecord
from otwamp.results.stats import NS_PER_S, Stats, seconds

JsonObject = dict[str, Any]

JSON_STATS = ("min", "median", "p95", "p99", "max", "mean")
EXTRA_PERCENTILES = ("p25", "p75", "p90", "p95", "p99")

# (name, per-second factor, decimals), largest first; a line takes the first
# unit its largest value reaches.
UNITS = (("ms", 1e3, 3), ("µs", 1e6, 1), ("ns", 1e9, 1))


# --- JSON summary -----------------------------------------------------------


def stats_json(stats: Stats | None) -> JsonObject:
    """Stats as {min, median, p95, p99, max, mean} in seconds; null values when empty."""
    return {key: None if stats is None else getattr(stats, key) for key in JSON_STATS}


def range_json(span: Range | None) -> JsonObject | None:
    """A TTL or hop range as {min, max}, or null."""
    return None if span is None else {"min": span.min, "max": span.max}


def direction_json(direction: DirectionSummary) -> JsonObject:
    """One direction's object of the JSON summary."""
    delays = direction.one_way.delays
    return {
        "delay": stats_json(delays.delay),
        "sync": direction.one_way.sync,
        "error": direction.one_way.error,
        "ipdv": stats_json(delays.ipdv) | {"jitter": delays.jitter},
        "pdv": stats_json(delays.pdv),
        "lost": direction.lost,
        "reordered": direction.reordered,
        "ttl": range_json(direction.ttl),
        "hops": range_json(direction.hops),
    }


def packets_json(packets: PacketCounts) -> JsonObject:
    """The packet accounting object of a JSON summary, TWAMP's and OWAMP's alike."""
    return {
        "sent": packets.sent,
        "received": packets.received,
        "lost": packets.lost,
        "discarded": packets.discarded,
        "duplicates": packets.duplicates,
        "reordered": packets.reordered,
        "corrupt": packets.corrupt,
        "auth_failures": packets.auth_failures,
        "dropped": packets.dropped,
        "kernel_drops": packets.kernel_drops,
    }


def to_json(summary: TwampSummary) -> JsonObject:
    """The --json object of a session (times in seconds)."""
    return {
        "protocol": summary.protocol,
        "mode": summary.mode,
        "key_source": summary.key_source,
        "sid": summary.sid.hex(),
        "packets": packets_json(summary.packets),
        "rtt": stats_json(summary.rtt.delay),
        "forward": direction_json(summary.forward),
        "backward": direction_json(summary.backward),
        "processing": stats_json(summary.processing),
        "completed": summary.completed,
    }


def timestamps_json(summary: TwampSummary) -> JsonObject:
    """Where each timestamp comes from, for ``ping --json``: T1 "kernel", "user" or "mixed".

    T1 and T4 are the sender's (T4 always the kernel's receive time); T2 and
    T3 are what the reflector's packets say. Not in ``to_json``: the
    archive's columns are exactly its figures (docs/DECISIONS.md R16).
    """
    kernel, sent = summary.t1_kernel, summary.packets.sent
    t1 = "kernel" if sent and kernel == sent else "user" if not kernel else "mixed"
    sources = {"t1": t1, "t1_kernel": kernel, "t2": "reflector", "t3": "reflector", "t4": "kernel"}
    return {"timestamps": sources}


# --- human text -------------------------------------------------------------


def format_times(values: Sequence[float]) -> str:
    """Times in seconds as "a/b/c unit", in the unit that suits the largest."""
    largest = max(abs(value) for value in values)
    name, factor, decimals = next((unit for unit in UNITS if largest * unit[1] >= 1), UNITS[-1])
    return "/".join(f"{value * factor:.{decimals}f}" for value in values) + f" {name}"


def stats_lines(label: str, stats: Stats | None, percentiles: bool, note: str = "") -> list[str]:
    """The min/median/max line of a statistic and, with percentiles, its percentile line."""
    if stats is None:
        return [f"{label}: no packets"]
    head = f"{label} min/median/max = {format_times([stats.min, stats.median, stats.max])}"
    lines = [f"{head} {note}" if note else head]
    if percentiles:
        values = [getattr(stats, key) for key in EXTRA_PERCENTILES]
        names = "/".join(EXTRA_PERCENTILES)
        lines.append(f"  {label} {names} = {format_times(values)}")
    return lines


def clock_note(direction: DirectionSummary) -> str:
    """The clock note of a one-way delay: unsynchronized, or its error (RFC 4656 §4.1.2)."""
    one_way = direction.one_way
    if not one_way.sync or one_way.error is None:
        return "(unsynchronized)"
    return f"(err {format_times([one_way.error])})"


def variation_line(label: str, delays: DelaySummary) -> str:
    """Jitter (mean |IPDV|) and PDV p99 - min of one series (RFC 3393 §4.5, RFC 5481 §4.2)."""
    jitter = "n/a" if delays.jitter is None else format_times([delays.jitter])
    pdv = "n/a" if delays.pdv is None else format_times([delays.pdv.p99])
    return f"{label} jitter = {jitter} (mean |IPDV|), PDV p99 = {pdv}"


def hops_text(hops: Range | None) -> str:
    """Hop count, consistent or as a range."""
    if hops is None:
        return "unknown"
    if hops.min == hops.max:
        return f"{hops.min} (consistently)"
    return f"{hops.min}-{hops.max} (variable)"


def directions(summary: TwampSummary) -> tuple[tuple[str, DirectionSummary], ...]:
    """The two directions of a session with their labels."""
    return (("forward", summary.forward), ("backward", summary.backward))


def percent(part: int, whole: int) -> str:
    """part/whole as a percentage with three decimals."""
    return f"{100 * part / whole:.3f}%" if whole else "n/a"


def counts_line(packets: PacketCounts) -> str:
    """Sent, received, loss (of the packets not discarded), discards, duplicates, reordering."""
    ratio = reordered_ratio(packets.reordered, packets.received)
    discarded = f", {packets.discarded} discarded (RFC 4656 §3.8)" if packets.discarded else ""
    return (
        f"{packets.sent} sent, {packets.received} received, {packets.lost} lost "
        f"({percent(packets.lost, packets.measured)}){discarded}, "
        f"{packets.duplicates} duplicates, "
        f"{packets.reordered} reordered" + ("" if ratio is None else f" ({100 * ratio:.3f}%)")
    )


def dropped_lines(packets: PacketCounts) -> list[str]:
    """The datagrams refused, by reason, and those the kernel dropped, when there were any."""
    if not packets.dropped and not packets.kernel_drops:
        return []
    return [
        f"dropped: {packets.dropped} (truncated {packets.truncated}, corrupt "
        f"{packets.corrupt}, wrong source {packets.wrong_source}, unknown seq "
        f"{packets.unknown_seq}, authentication failures {packets.auth_failures}); "
        f"by the kernel: {packets.kernel_drops}"
    ]


def counts_lines(summary: TwampSummary) -> list[str]:
    """Packet counts, loss, duplicates, reordering and drops."""
    lines = [counts_line(summary.packets)]
    for label, direction in directions(summary):
        lines.append(
            f"{label}: {direction.lost} lost, {direction.duplicates} duplicates, "
            f"{direction.reordered} reordered"
        )
    return lines + dropped_lines(summary.packets)


def timestamps_line(summary: TwampSummary) -> str:
    """Which clock read T1: the kernel at transmission or user space before the send call."""
    sources = timestamps_json(summary)["timestamps"]
    if sources["t1"] == "mixed":
        return f"T1 from the kernel for {summary.t1_kernel} of {summary.packets.sent} packets"
    return (
        f"T1 from the {sources['t1']} ({'transmit' if sources['t1'] == 'kernel' else 'send call'})"
    )


def render_text(summary: TwampSummary, percentiles: bool) -> str:
    """The human report, in the spirit of twping's; percentiles adds p25..p99 lines."""
    header = f"--- TWAMP statistics, SID {summary.sid.hex()} ---"
    lines = [header, f"mode {summary.mode}, key source {summary.key_source}"]
    if not summary.completed:
        lines.append("session ended early: results are partial")
    lines += counts_lines(summary)
    lines += stats_lines("round-trip time", summary.rtt.delay, percentiles)
    for label, direction in directions(summary):
        delay = direction.one_way.delays.delay
        lines += stats_lines(f"{label} delay", delay, percentiles, clock_note(direction))
    lines += stats_lines("reflector processing time", summary.processing, percentiles)
    lines.append(timestamps_line(summary))
    lines.append(variation_line("round-trip", summary.rtt))
    lines += [variation_line(label, d.one_way.delays) for label, d in directions(summary)]
    lines += [f"{label} hops = {hops_text(d.hops)}" for label, d in directions(summary)]
    return "\n".join(lines) + "\n"


# --- raw per-packet lines ---------------------------------------------------


def stamp_text(stamp: Stamp) -> str:
    """A timestamp as "seconds.nanoseconds sync error" (Unix epoch)."""
    whole, frac = divmod(stamp.ns, NS_PER_S)
    return f"{whole}.{frac:09d} {int(stamp.sync)} {stamp.error:.3g}"


def stamp_json(stamp: Stamp) -> JsonObject:
    """A timestamp as {ns, sync, error}."""
    return {"ns": stamp.ns, "sync": stamp.sync, "error": stamp.error}


def reply_text(reply: Reply, duplicate: bool, sent: Sent | None = None) -> str:
    """seq T1 T2 sender_ttl reflector_seq T3 T4 ttl, like twping -R, DUP marked.

    When T1 is the kernel's transmit time, the in-packet T1 of ``sent`` follows.
    """
    ttl = "-" if reply.ttl is None else str(reply.ttl)
    fields = [
        str(reply.sender_seq),
        stamp_text(reply.t1),
        stamp_text(reply.t2),
        str(reply.sender_ttl),
        str(reply.reflector_seq),
        stamp_text(reply.t3),
        stamp_text(reply.t4),
        ttl,
    ]
    if sent is not None and sent.t1_kernel_ns is not None:
        fields.append(f"packet-T1 {stamp_text(sent.t1)}")
    return " ".join(fields) + (" DUP" if duplicate else "")


def reply_json(reply: Reply, duplicate: bool, sent: Sent | None = None) -> JsonObject:
    """One reply as a JSON record, with its derived times in seconds.

    ``t1`` says its ``source``; when it is the kernel's transmit time,
    ``t1_packet`` is the T1 the packet carried (``sent``'s).
    """
    kernel = sent is not None and sent.t1_kernel_ns is not None
    record = {
        "seq": reply.sender_seq,
        "lost": False,
        "duplicate": duplicate,
        "reflector_seq": reply.reflector_seq,
        "t1": stamp_json(reply.t1) | {"source": "kernel" if kernel else "user"},
        "t2": stamp_json(reply.t2),
        "t3": stamp_json(reply.t3),
        "t4": stamp_json(reply.t4),
        "sender_ttl": reply.sender_ttl,
        "ttl": reply.ttl,
        "rtt": seconds(rtt_ns(reply)),
        "forward": seconds(forward_sample(reply).delay_ns),
        "backward": seconds(backward_sample(reply).delay_ns),
        "processing": seconds(processing_ns(reply)),
    }
    if kernel:
        assert sent is not None
        record["t1_packet"] = stamp_json(sent.t1)
    return record


def packet_text(sent: Sent, replies: Sequence[Reply]) -> list[str]:
    """Text lines of one sent packet: its replies, or one LOST line."""
    if not replies:
        return [f"{sent.seq} {stamp_text(sent.t1)} LOST"]
    return [reply_text(reply, index > 0, sent) for index, reply in enumerate(replies)]


def packet_json(sent: Sent, replies: Sequence[Reply]) -> list[JsonObject]:
    """JSON records of one sent packet: its replies, or one lost record."""
    if not replies:
        lost: JsonObject = {"seq": sent.seq, "lost": True}
        lost["t1"] = stamp_json(sent.recorded_t1) | {"source": sent.t1_source}
        if sent.t1_kernel_ns is not None:
            lost["t1_packet"] = stamp_json(sent.t1)
        return [lost]
    return [reply_json(reply, index > 0, sent) for index, reply in enumerate(replies)]


def packets_in_order(record: TwampSessionRecord) -> Iterator[tuple[Sent, list[Reply]]]:
    """Each sent packet in sender seq order with its replies (none: lost; more: duplicated).

    Built one packet at a time from the columns: what stays alive for the
    whole session is two integers a packet (``arrival_chains``), so ``--raw``
    of millions of packets streams.
    """
    sent, replies = record.sent_log, record.reply_log
    seqs = sent.seqs
    order: Sequence[int] = range(len(seqs))
    if any(seqs[index] > seqs[index + 1] for index in range(len(seqs) - 1)):
        order = array("I", sorted(order, key=seqs.__getitem__))
    replies_of = _replies_by_seq(replies.sender_seq, seqs)
    for index in order:
        packet = sent[index]
        yield packet, [replies[i] for i in replies_of(packet.seq)]


def _replies_by_seq(
    sender_seqs: "array[int]", sent_seqs: Sequence[int]
) -> Callable[[int], list[int]]:
    """The indices of a sent packet's replies, in arrival order, by its sequence number."""
    if dense(sent_seqs, len(sent_seqs)):  # our own numbers
        heads, links = arrival_chains(sender_seqs, max(sent_seqs, default=-1) + 1)
        return lambda seq: copies(heads, links, seq)
    by_seq: dict[int, list[int]] = {}  # a hand-made record's sparse numbers
    for index, seq in enumerate(sender_seqs):
        by_seq.setdefault(seq, []).append(index)
    return lambda seq: by_seq.get(seq, [])


def raw_lines(record: TwampSessionRecord, json_lines: bool) -> Iterator[str]:
    """One line per reply (duplicates marked) or lost packet, in sender seq order."""
    for sent, replies in packets_in_order(record):
        if json_lines:
            yield from (json.dumps(obj) for obj in packet_json(sent, replies))
        else:
            yield from packet_text(sent, replies)
