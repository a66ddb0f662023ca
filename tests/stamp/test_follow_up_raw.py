"""``otwamp stamp --raw`` says which T3 is a Follow-Up Timestamp (RFC 8972 §4.7).

The timestamp-fidelity bench compares both T3s of each reply with the wire,
so the raw records keep the T3 the reply carried beside the reported one.
"""

import json

from otwamp.cli.stamp import stamp_raw_lines
from otwamp.results.records import Reply, Sent, Stamp, TwampSessionRecord
from otwamp.stamp.sender import with_follow_up
from otwamp.wire.timestamp import ns_to_ntp, ntp_to_ns
from tests.e2e.processes import run_cli
from tests.stamp.stamp_support import running_reflector

NOW = 1_700_000_000_000_000_000


def stamp(ns: int) -> Stamp:
    return Stamp(ns, False, 1e-6)


def session() -> tuple[TwampSessionRecord, dict[int, Stamp]]:
    """Three packets, the second reflected twice; replies 0 and 1 have a Follow-Up T3.

    Each reply carried T3 = T1 + 20 ns; the Follow-Up Timestamps say T1 + 25 ns.
    """
    record = TwampSessionRecord(sid=b"\x00\x07", mode="open", key_source="none")
    for seq in range(3):
        record.sent.append(Sent(seq, stamp(NOW + seq * 1000)))
    for seq in (0, 1, 1, 2):
        base = NOW + seq * 1000
        t3 = base + (25 if seq < 2 else 20)
        record.replies.append(
            Reply(seq, seq, stamp(base), stamp(base + 10), stamp(t3), stamp(base + 40), 255, 64)
        )
    return record, {seq: stamp(NOW + seq * 1000 + 20) for seq in (0, 1)}


def test_json_records_say_where_t3_comes_from() -> None:
    record, in_packet = session()
    lines = [json.loads(line) for line in stamp_raw_lines(record, in_packet, json_lines=True)]
    assert [(line["seq"], line["duplicate"]) for line in lines] == [
        (0, False),
        (1, False),
        (1, True),
        (2, False),
    ]
    assert [line["t3"]["source"] for line in lines] == ["follow-up"] * 3 + ["packet"]
    assert lines[0]["t3"]["ns"] == NOW + 25 and lines[0]["t3_packet"]["ns"] == NOW + 20
    assert lines[2]["t3_packet"] == {"ns": NOW + 1020, "sync": False, "error": 1e-6}
    assert lines[3]["t3"]["ns"] == NOW + 2020 and "t3_packet" not in lines[3]


def test_text_lines_and_a_lost_packet() -> None:
    record, in_packet = session()
    record.sent.append(Sent(3, stamp(NOW + 3000)))
    text = list(stamp_raw_lines(record, in_packet, json_lines=False))
    assert len(text) == 5 and text[4].endswith(" LOST")
    assert "packet-T3 1700000000.000000020 0 1e-06" in text[0]
    assert text[2].endswith(" DUP") and "packet-T3" in text[2]
    assert "packet-T3" not in text[3]
    lost = [json.loads(line) for line in stamp_raw_lines(record, {}, json_lines=True)][-1]
    assert lost["lost"] is True and lost["seq"] == 3


def test_with_follow_up_and_the_carried_t3() -> None:
    record = TwampSessionRecord(sid=b"\x00\x07", mode="open", key_source="none")
    record.sent.append(Sent(0, stamp(NOW)))
    record.replies.append(Reply(0, 0, *(stamp(NOW + d) for d in (0, 10, 20, 40)), 255, 64))
    reported = {0: ns_to_ntp(NOW + 25)}  # reflector seq 0's transmit time, from the next reply
    carried = {r.reflector_seq: r.t3 for r in record.replies if r.reflector_seq in reported}
    assert with_follow_up(record, reported) == 1
    [line] = [json.loads(line) for line in stamp_raw_lines(record, carried, json_lines=True)]
    assert line["t3"]["source"] == "follow-up" and line["t3_packet"]["ns"] == NOW + 20
    assert line["t3"]["ns"] == ntp_to_ns(ns_to_ntp(NOW + 25))


def test_follow_up_raw_against_the_reflector() -> None:
    with running_reflector() as reflector:
        result = run_cli(
            "stamp",
            reflector.target,
            "-c",
            "20",
            "-i",
            "0.005",
            "--tlv",
            "follow-up",
            "--raw",
            "--json",
        )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 20 and not any(line["lost"] for line in lines)
    by_reflector = sorted(lines, key=lambda line: line["reflector_seq"])
    # every reply but the last is reported by the next one (RFC 8972 §4.7)
    assert [line["t3"]["source"] for line in by_reflector] == ["follow-up"] * 19 + ["packet"]
    for line in by_reflector[:-1]:
        # the kernel's transmit time comes after the clock read written into the packet
        assert line["t3_packet"]["ns"] <= line["t3"]["ns"] < line["t3_packet"]["ns"] + 10**8
