"""JSON summary, text report and raw lines."""

import json
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otwamp.results.metrics import summarize_twamp
from otwamp.results.records import Dropped, Reply, TwampSessionRecord
from otwamp.results.report import format_times, raw_lines, render_text, to_json

MakeReply = Callable[..., Reply]
MakeRecord = Callable[..., TwampSessionRecord]

STATS_KEYS = {"min", "median", "p95", "p99", "max", "mean"}
DIRECTION_KEYS = {"delay", "sync", "error", "ipdv", "pdv", "lost", "reordered", "ttl", "hops"}


@pytest.fixture
def session(make_reply: MakeReply, make_record: MakeRecord) -> TwampSessionRecord:
    """5 sent: seq 3 lost, seq 1 replied twice, replies 2 before 1, one truncated datagram."""
    replies = [
        make_reply(0, 0, fwd=50_000),
        make_reply(2, 2, fwd=60_000),
        make_reply(1, 1, fwd=70_000),
        make_reply(1, 1, fwd=70_000, back=25_000),
        make_reply(4, 3, fwd=80_000, sender_ttl=253, ttl=254),
    ]
    return make_record(5, replies, dropped=Dropped(truncated=1, auth_failures=2))


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def test_json_shape(session: TwampSessionRecord) -> None:
    doc = to_json(summarize_twamp(session))
    assert set(doc) == {
        "protocol",
        "mode",
        "key_source",
        "sid",
        "packets",
        "rtt",
        "forward",
        "backward",
        "processing",
        "completed",
    }
    assert doc["protocol"] == "twamp"
    assert doc["sid"] == "7f000001eeacd947a841893771f2517f"
    assert doc["completed"] is True
    packets = doc["packets"]
    assert packets == {
        "sent": 5,
        "received": 4,
        "lost": 1,
        "discarded": 0,
        "duplicates": 1,
        "reordered": 1,
        "corrupt": 0,
        "auth_failures": 2,
        "dropped": 3,
        "kernel_drops": 0,
    }
    assert set(doc["rtt"]) == STATS_KEYS
    assert set(doc["processing"]) == STATS_KEYS
    for direction in (doc["forward"], doc["backward"]):
        assert set(direction) == DIRECTION_KEYS
        assert set(direction["delay"]) == STATS_KEYS
        assert set(direction["pdv"]) == STATS_KEYS
        assert set(direction["ipdv"]) == STATS_KEYS | {"jitter"}
        assert isinstance(direction["sync"], bool)
        assert all(is_number(v) for v in direction["delay"].values())
    assert all(is_number(v) for v in doc["rtt"].values())
    json.dumps(doc)  # serializable as is


def test_json_values(session: TwampSessionRecord) -> None:
    doc = to_json(summarize_twamp(session))
    # RTT = forward + 20 us backward: 70, 80, 90, 100 us (nearest-rank median: 80).
    assert doc["rtt"]["min"] == pytest.approx(70e-6)
    assert doc["rtt"]["median"] == pytest.approx(80e-6)
    assert doc["rtt"]["max"] == pytest.approx(100e-6)
    assert doc["rtt"]["mean"] == pytest.approx(85e-6)
    assert doc["forward"]["lost"] == 1
    assert doc["forward"]["ttl"] == {"min": 253, "max": 255}
    assert doc["forward"]["hops"] == {"min": 0, "max": 2}
    assert doc["backward"]["hops"] == {"min": 0, "max": 1}
    assert doc["forward"]["error"] == pytest.approx(2e-9)


def test_json_all_lost_has_null_values(make_record: MakeRecord) -> None:
    doc = to_json(summarize_twamp(make_record(2, [])))
    assert doc["rtt"] == dict.fromkeys(STATS_KEYS)
    assert doc["forward"]["sync"] is False
    assert doc["forward"]["ttl"] is None
    assert doc["packets"]["lost"] == 2


@pytest.mark.parametrize(
    ("values", "text"),
    [
        ([0.0012, 0.0000505], "1.200/0.051 ms"),
        ([50e-6, 51.25e-6], "50.0/51.2 µs"),
        ([2e-9], "2.0 ns"),
        ([0.0], "0.0 ns"),
        ([-3e-6, 1e-6], "-3.0/1.0 µs"),
    ],
)
def test_format_times_shows_unit(values: list[float], text: str) -> None:
    assert format_times(values) == text


def test_text_report(session: TwampSessionRecord) -> None:
    text = render_text(summarize_twamp(session), percentiles=False)
    assert "SID 7f000001eeacd947a841893771f2517f" in text
    assert "5 sent, 4 received, 1 lost (20.000%), 1 duplicates, 1 reordered (25.000%)" in text
    assert "round-trip time min/median/max = 70.0/80.0/100.0 µs" in text
    assert "forward delay min/median/max = 50.0/60.0/80.0 µs (err 2.0 ns)" in text
    assert "backward delay min/median/max = 20.0/20.0/20.0 µs" in text
    assert "reflector processing time min/median/max = 5.0/5.0/5.0 µs" in text
    assert "forward hops = 0-2 (variable)" in text
    assert "dropped: 3 (truncated 1, corrupt 0, wrong source 0, unknown seq 0, " in text
    assert "discarded" not in text  # TWAMP has no RFC 4656 §3.8 discard
    assert "p95" not in text
    assert "unsynchronized" not in text  # a lost packet is not a sync problem (D11)


def test_kernel_drops_are_reported_apart_from_the_refused(make_record: MakeRecord) -> None:
    summary = summarize_twamp(make_record(2, [], dropped=Dropped(kernel_drops=6_300_000)))
    assert to_json(summary)["packets"]["kernel_drops"] == 6_300_000
    assert to_json(summary)["packets"]["dropped"] == 0
    text = render_text(summary, percentiles=False)
    assert "authentication failures 0); by the kernel: 6300000" in text


def test_no_drops_no_dropped_line(make_record: MakeRecord) -> None:
    assert "dropped:" not in render_text(summarize_twamp(make_record(2, [])), percentiles=False)


def test_text_report_percentiles(session: TwampSessionRecord) -> None:
    text = render_text(summarize_twamp(session), percentiles=True)
    assert "round-trip time p25/p75/p90/p95/p99 = 70.0/90.0/100.0/100.0/100.0 µs" in text


def test_text_report_unsynchronized(make_reply: MakeReply, make_record: MakeRecord) -> None:
    record = make_record(1, [make_reply(0, syncs=(False, True, True, False))])
    text = render_text(summarize_twamp(record), percentiles=False)
    assert "forward delay min/median/max = 50.0/50.0/50.0 µs (unsynchronized)" in text


def test_text_report_all_lost(make_record: MakeRecord) -> None:
    text = render_text(summarize_twamp(make_record(3, [], completed=False)), percentiles=True)
    assert "3 sent, 0 received, 3 lost (100.000%)" in text
    assert "round-trip time: no packets" in text
    assert "session ended early" in text
    assert "forward hops = unknown" in text


def test_text_report_empty_session(make_record: MakeRecord) -> None:
    assert "0 lost (n/a)" in render_text(summarize_twamp(make_record(0, [])), percentiles=False)


def test_raw_text_lines(session: TwampSessionRecord) -> None:
    lines = list(raw_lines(session, json_lines=False))
    assert len(lines) == 6  # 5 sent + 1 duplicate
    assert lines[0].split() == [
        "0",
        "1700000000.000000000",
        "1",
        "1e-09",
        "1700000000.000050000",
        "1",
        "1e-09",
        "255",
        "0",
        "1700000000.000055000",
        "1",
        "1e-09",
        "1700000000.000075000",
        "1",
        "1e-09",
        "255",
    ]
    assert lines[2].endswith(" DUP")
    assert lines[4] == "3 1700000000.003000000 1 1e-09 LOST"


def test_raw_json_lines(session: TwampSessionRecord) -> None:
    records = [json.loads(line) for line in raw_lines(session, json_lines=True)]
    assert [r["seq"] for r in records] == [0, 1, 1, 2, 3, 4]
    assert [r["lost"] for r in records] == [False, False, False, False, True, False]
    assert records[2]["duplicate"] is True
    assert records[0]["t2"] == {"ns": 1_700_000_000_000_050_000, "sync": True, "error": 1e-9}
    assert records[0]["rtt"] == pytest.approx(70e-6)
    assert records[0]["processing"] == pytest.approx(5e-6)
    assert records[4] == {"seq": 3, "lost": True, "t1": records[4]["t1"]}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 20), st.lists(st.integers(0, 19), max_size=40))
def test_raw_line_count_is_sent_plus_duplicates(
    make_reply: MakeReply, make_record: MakeRecord, sent: int, seqs: list[int]
) -> None:
    record = make_record(sent, [make_reply(seq) for seq in seqs if seq < sent])
    duplicates = summarize_twamp(record).packets.duplicates
    for json_lines in (False, True):
        assert len(list(raw_lines(record, json_lines))) == sent + duplicates
