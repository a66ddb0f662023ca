"""OWAMP JSON summary, text report and raw lines."""

import json

import pytest

from otwamp.results.owamp import OwampSummary, raw_lines, render_text, summarize_owamp, to_json
from otwamp.results.records import Dropped

from .builders import SID, arrival, record

STATS_KEYS = {"min", "median", "p95", "p99", "max", "mean"}
SESSION_KEYS = {
    "sid",
    "packets",
    "delay",
    "sync",
    "error",
    "ipdv",
    "pdv",
    "ttl",
    "hops",
    "completed",
    "incomplete",
}
PACKET_KEYS = {
    "sent",
    "received",
    "lost",
    "discarded",
    "duplicates",
    "reordered",
    "corrupt",
    "auth_failures",
    "dropped",
    "kernel_drops",
}


@pytest.fixture
def to_summary() -> OwampSummary:
    """5 packets: 3 lost, 1 duplicated, 2 before 1, one forged datagram."""
    arrivals = [arrival(0, 50_000), arrival(2, 70_000), arrival(1, 60_000), arrival(1, 65_000)]
    return summarize_owamp(record(6, arrivals, dropped=Dropped(auth_failures=1)))


@pytest.fixture
def from_summary() -> OwampSummary:
    """2 packets from the server on unsynchronized clocks."""
    arrivals = [arrival(0, 2_000_000, syncs=(False, True)), arrival(1, 3_000_000)]
    return summarize_owamp(record(2, arrivals, direction="from"))


def test_json_shape(to_summary: OwampSummary, from_summary: OwampSummary) -> None:
    doc = to_json(to_summary, from_summary, "authenticated", "passphrase")
    assert list(doc) == ["protocol", "mode", "key_source", "to", "from"]
    assert (doc["protocol"], doc["mode"], doc["key_source"]) == (
        "owamp",
        "authenticated",
        "passphrase",
    )
    for session in (doc["to"], doc["from"]):
        assert set(session) == SESSION_KEYS
        assert set(session["packets"]) == PACKET_KEYS
        assert set(session["delay"]) == STATS_KEYS
        assert set(session["pdv"]) == STATS_KEYS
        assert set(session["ipdv"]) == STATS_KEYS | {"jitter"}
    assert doc["to"]["sid"] == SID.hex()
    assert doc["to"]["packets"] == {
        "sent": 6,
        "received": 3,
        "lost": 3,
        "discarded": 0,
        "duplicates": 1,
        "reordered": 1,
        "corrupt": 0,
        "auth_failures": 1,
        "dropped": 1,
        "kernel_drops": 0,
    }
    assert doc["to"]["delay"]["min"] == 50e-6
    assert doc["to"]["sync"] is True
    assert doc["to"]["ttl"] == {"min": 250, "max": 250}
    assert doc["to"]["hops"] == {"min": 5, "max": 5}
    assert doc["to"]["completed"] is True
    assert doc["to"]["incomplete"] is None
    assert doc["from"]["sync"] is False
    json.dumps(doc)  # serializable as it is


def test_json_of_one_direction(from_summary: OwampSummary) -> None:
    doc = to_json(None, from_summary, "open", "none")
    assert doc["to"] is None
    assert doc["from"]["packets"]["received"] == 2


def test_text_has_units_and_numbers(to_summary: OwampSummary, from_summary: OwampSummary) -> None:
    text = render_text(to_summary, from_summary, percentiles=False)
    assert f"--- owping statistics to the server, SID {SID.hex()} ---" in text
    assert "--- owping statistics from the server" in text
    assert "6 sent, 3 received, 3 lost (50.000%), 1 duplicates, 1 reordered (33.333%)" in text
    assert "one-way delay min/median/max = 50.0/60.0/70.0 µs (err 2.0 ns)" in text
    assert "one-way delay min/median/max = 2.000/2.000/3.000 ms (unsynchronized)" in text
    assert "one-way jitter = " in text and "PDV p99 = 20.0 µs" in text
    assert "TTL 250-250, hops = 5 (consistently)" in text
    assert "authentication failures 1" in text
    assert "p25/p75/p90/p95/p99" not in text


def test_text_percentiles(to_summary: OwampSummary) -> None:
    text = render_text(to_summary, None, percentiles=True)
    assert "  one-way delay p25/p75/p90/p95/p99 = " in text
    assert "from the server" not in text


def test_text_of_partial_session_with_nothing_received() -> None:
    summary = summarize_owamp(record(2, [], completed=False))
    text = render_text(summary, None, percentiles=False)
    assert "session ended early" in text
    assert "one-way delay: no packets" in text
    assert "TTL unknown, hops = unknown" in text


def test_raw_lines_mark_lost_skipped_and_duplicates() -> None:
    arrivals = [arrival(0), arrival(3), arrival(0, 60_000, ttl=None)]
    lines = list(raw_lines(record(6, arrivals, next_seqno=5, skipped=[(1, 1)]), json_lines=False))
    assert lines[0].startswith("0 1700000000.000000000 1 1e-09 1700000000.000050000 1 1e-09 250")
    assert lines[1].endswith(" - DUP")
    assert lines[2:] == ["1 SKIPPED", "2 LOST", lines[4], "4 LOST"]
    assert lines[4].startswith("3 ")


def test_discards_and_incomplete_results_are_reported() -> None:
    """RFC 4656 §3.8: discards are shown, never hidden in "sent"; so is a failed stop."""
    reason = "Stop-Sessions Accept 2 (internal error)"
    arrivals = [arrival(seq) for seq in range(93)]
    summary = summarize_owamp(
        record(100, arrivals, next_seqno=100, discarded_from=93, incomplete=reason)
    )
    text = render_text(summary, None, percentiles=False)
    assert "100 sent, 93 received, 0 lost (0.000%), 7 discarded (RFC 4656 §3.8)" in text
    assert f"warning: results may be incomplete: {reason}" in text
    doc = to_json(summary, None, "open", "none")["to"]
    assert (doc["packets"]["sent"], doc["packets"]["discarded"]) == (100, 7)
    assert doc["incomplete"] == reason
    short = record(4, [arrival(0)], discarded_from=2)
    assert list(raw_lines(short, json_lines=False))[1:] == ["1 LOST", "2 DISCARDED", "3 DISCARDED"]
    docs = [json.loads(line) for line in raw_lines(short, json_lines=True)]
    assert docs[2] == {"seq": 2, "lost": False, "skipped": False, "discarded": True}


def test_complete_results_show_no_warning(to_summary: OwampSummary) -> None:
    assert "warning" not in render_text(to_summary, None, percentiles=False)
    assert "discarded" not in render_text(to_summary, None, percentiles=False)


def test_corrupt_packets_are_shown_with_the_drops() -> None:
    summary = summarize_owamp(record(1, [arrival(0)], dropped=Dropped(corrupt=2)))
    assert "dropped: 2 (truncated 0, corrupt 2, " in render_text(summary, None, False)
    assert to_json(summary, None, "open", "none")["to"]["packets"]["corrupt"] == 2


def test_kernel_drops_are_shown_with_the_drops() -> None:
    summary = summarize_owamp(record(1, [arrival(0)], dropped=Dropped(kernel_drops=7)))
    assert "dropped: 0 (truncated 0, " in render_text(summary, None, False)
    assert "; by the kernel: 7" in render_text(summary, None, False)
    assert to_json(None, summary, "open", "none")["from"]["packets"]["kernel_drops"] == 7


def test_raw_json_lines() -> None:
    lines = list(raw_lines(record(3, [arrival(2), arrival(0)], skipped=[(1, 1)]), json_lines=True))
    docs = [json.loads(line) for line in lines]
    assert [(doc["seq"], doc["lost"]) for doc in docs] == [(0, False), (1, False), (2, False)]
    assert docs[1] == {"seq": 1, "lost": False, "skipped": True, "discarded": False}
    assert docs[0]["delay"] == 50e-6
    assert docs[0]["sent"] == {"ns": 1_700_000_000 * 10**9, "sync": True, "error": 1e-9}
    assert docs[0]["duplicate"] is False
