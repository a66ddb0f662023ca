"""Kernel transmit times as T1: ordinal matching, the sender's records, reports, stamping.

The sans-I/O parts run without sockets; ``test_kernel_reports_transmit_times``
asks the real kernel on loopback (it falls back cleanly where it cannot).
"""

import json
import select
import socket
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.drivers.pacer import ntp_now
from otwamp.drivers.stamp_reflector import transmit_times
from otwamp.drivers.txstamp import enable_transmit_stamps
from otwamp.results import report
from otwamp.results.metrics import summarize_twamp
from otwamp.results.records import Stamp, TwampSessionRecord
from otwamp.session.reflector import SessionReflector
from otwamp.session.sender import SessionSender
from otwamp.session.txstamps import PENDING_LIMIT, TransmitStamps
from otwamp.wire.timestamp import ns_to_ntp, ntp_to_ns

from .helpers import ERROR, protection_for

T0 = 1_700_000_000_000_000_000


def test_ordinals_name_packets_in_send_order() -> None:
    stamps = TransmitStamps()
    for seq in range(3):
        stamps.sent(seq, T0 + seq * 1000)
    assert stamps.stamped(0, T0 + 300) == 0
    assert stamps.stamped(2, T0 + 2300) == 2  # ordinal 1's report never came
    assert stamps.stamped(1, T0 + 1300) is None  # behind: already passed
    assert stamps.matched == 2


def test_an_ordinal_used_by_a_failed_send_shifts_the_rest() -> None:
    """A report earlier than its packet's user-space time names an earlier packet."""
    stamps = TransmitStamps()
    stamps.sent(0, T0)
    # the kernel used ordinal 1 for a send that failed; packet 1 got ordinal 2
    stamps.sent(1, T0 + 1000)
    stamps.sent(2, T0 + 2000)
    assert stamps.stamped(0, T0 + 100) == 0
    assert stamps.stamped(2, T0 + 1100) == 1
    assert stamps.stamped(3, T0 + 2100) == 2


def test_unreported_packets_stay_bounded() -> None:
    stamps = TransmitStamps()
    for seq in range(PENDING_LIMIT + 10):
        stamps.sent(seq, T0 + seq)
    assert stamps.stamped(0, T0) is None  # dropped: keeps its user-space time
    assert stamps.stamped(PENDING_LIMIT + 9, T0 + PENDING_LIMIT + 9) == PENDING_LIMIT + 9


def _session(mode: str = "open") -> tuple[SessionSender, SessionReflector]:
    record = TwampSessionRecord(b"\x01" * 16, mode, "none")
    protection = protection_for(mode)
    reflector = SessionReflector(protection)
    reflector.start(0)
    return SessionSender(record, bytes(27), protection), reflector


def _round_trip(sender: SessionSender, reflector: SessionReflector, seq: int, t1: int) -> None:
    wire = bytes(sender.stamp(sender.prepare(seq), ns_to_ntp(t1), ERROR.to_int()))
    sender.mark_sent(seq, ns_to_ntp(t1), ERROR)
    reply = reflector.reflect(wire, t1 + 20_000, ERROR.to_int(), 64)
    assert reply is not None
    back = bytes(reflector.stamp(reply, ns_to_ntp(t1 + 30_000), ERROR.to_int()))
    sender.on_datagram(back, Stamp(t1 + 50_000, True, ERROR.seconds), 64)


def test_kernel_t1_is_the_records_t1_and_reports_say_so() -> None:
    sender, reflector = _session()
    in_packet = ntp_to_ns(ns_to_ntp(T0))
    _round_trip(sender, reflector, 0, T0)  # no kernel time yet for this one
    sender.kernel_sent(0, in_packet + 2_000)
    _round_trip(sender, reflector, 1, T0 + 10**6)  # and none ever for this one
    sender.settle()  # the kernel time came after the reply
    record = sender.record
    assert [reply.t1.ns for reply in record.replies] == [
        in_packet + 2_000,
        ntp_to_ns(ns_to_ntp(T0 + 10**6)),
    ]
    summary = summarize_twamp(record)
    assert summary.t1_kernel == 1
    assert report.timestamps_json(summary)["timestamps"]["t1"] == "mixed"
    assert "T1 from the kernel for 1 of 2 packets" in report.render_text(summary, False)
    lines = [json.loads(line) for line in report.raw_lines(record, json_lines=True)]
    assert lines[0]["t1"]["source"] == "kernel"
    assert lines[0]["t1"]["ns"] == in_packet + 2_000
    assert lines[0]["t1_packet"]["ns"] == in_packet
    assert lines[1]["t1"]["source"] == "user" and "t1_packet" not in lines[1]
    # RTT from the kernel's T1: 2 µs shorter than from the in-packet one
    assert lines[0]["rtt"] == pytest.approx((50_000 - 2_000 - 10_000) / 1e9)
    text = list(report.raw_lines(record, json_lines=False))
    assert "packet-T1" in text[0] and "packet-T1" not in text[1]


def test_kernel_t1_of_a_lost_packet() -> None:
    sender, _reflector = _session()
    sender.mark_sent(0, ns_to_ntp(T0), ERROR)
    sender.kernel_sent(0, T0 + 1_500)
    (line,) = (json.loads(text) for text in report.raw_lines(sender.record, json_lines=True))
    assert line["lost"] and line["t1"] == {
        "ns": T0 + 1_500,
        "sync": ERROR.sync,
        "error": ERROR.seconds,
        "source": "kernel",
    }
    assert report.timestamps_json(summarize_twamp(sender.record))["timestamps"]["t1"] == "kernel"


@pytest.mark.parametrize("mode", ["open", "authenticated", "encrypted"])
@given(seq=st.integers(0, 2**32 - 1), ntp=st.integers(0, 2**64 - 1))
def test_prepared_stamping_matches_protecting_afterwards(mode: str, seq: int, ntp: int) -> None:
    """Work done before the stamp gives the octets protecting the stamped packet would."""
    protection = protection_for(mode)
    sender, _reflector = _session(mode)
    wire = bytes(sender.stamp(sender.prepare(seq), ntp, ERROR.to_int()))
    plain = sender.prepare(seq) if protection is None else None
    if protection is None:
        assert plain is not None
        assert wire == bytes(sender.stamp(plain, ntp, ERROR.to_int()))
    else:
        clear = protection.sender.unprotect(wire)
        assert clear[:4] == seq.to_bytes(4, "big") and clear[16:24] == ntp.to_bytes(8, "big")
        assert wire == protection.sender.protect(clear)


@pytest.mark.parametrize("mode", ["open", "authenticated", "encrypted"])
def test_warming_changes_neither_the_packet_nor_its_wire_form(mode: str) -> None:
    """``warm`` (before the stamp after an idle spell) leaves what is sent as it was."""
    warmed, _reflector = _session(mode)
    cold, _other = _session(mode)
    packet = warmed.prepare(7)
    before = bytes(packet)
    warmed.warm()
    assert bytes(packet) == before
    wire = bytes(warmed.stamp(packet, 123_456_789, ERROR.to_int()))
    assert wire == bytes(cold.stamp(cold.prepare(7), 123_456_789, ERROR.to_int()))


def test_stamping_another_packet_than_the_last_prepared() -> None:
    protection = protection_for("encrypted")
    assert protection is not None
    sender, _reflector = _session("encrypted")
    first = sender.prepare(1)
    sender.prepare(2)
    wire = bytes(sender.stamp(first, 5, ERROR.to_int()))
    assert protection.sender.unprotect(wire)[:4] == (1).to_bytes(4, "big")


def test_ntp_now_is_ns_to_ntp() -> None:
    before = ns_to_ntp(time.time_ns())
    now = ntp_now()
    assert before <= now <= ns_to_ntp(time.time_ns())


def test_kernel_reports_transmit_times() -> None:
    """The real kernel on loopback: one report per datagram, after its user-space time."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
    ):
        b.bind(("127.0.0.1", 0))
        a.connect(b.getsockname())
        a.setblocking(False)
        if not enable_transmit_stamps(a):
            pytest.skip("this kernel gives no software transmit timestamps")
        stamps, user = TransmitStamps(), []
        for seq in range(5):
            user.append(time.time_ns())
            a.send(bytes(14))
            stamps.sent(seq, user[-1])
        select.select([a], [], [], 1.0)
        matched = [(stamps.stamped(ordinal, ns), ns) for ordinal, ns in transmit_times(a)]
        assert [seq for seq, _ns in matched] == list(range(5))
        assert all(user[seq] <= ns < user[seq] + 10**9 for seq, ns in matched if seq is not None)


@pytest.mark.parametrize("mode", ["authenticated", "encrypted"])
def test_reflector_replies_finished_after_the_stamp_are_valid(mode: str) -> None:
    """Encrypted mode: the reply's first block is encrypted before T3, the rest after."""
    sender, reflector = _session(mode)
    _round_trip(sender, reflector, 0, T0)
    (reply,) = sender.record.replies
    assert reply.t3.ns == ntp_to_ns(ns_to_ntp(T0 + 30_000))
    assert reply.t2.ns == ntp_to_ns(ns_to_ntp(T0 + 20_000))
