"""Sessions across the 2036 NTP era wrap (RFC 5905 §6, RFC 4656 §4.1.2), on a fake clock.

The 32-bit seconds field wraps to 0 on 2036-02-07 06:28:16 UTC: a session
that starts one second before it must keep its schedule, delays, loss
counts and Stop-Sessions discards as if nothing happened.
"""

import ipaddress

import pytest

from otwamp.results.metrics import summarize_twamp
from otwamp.results.owamp import summarize_owamp
from otwamp.results.records import OwampSessionRecord, Stamp, TwampSessionRecord
from otwamp.session.owamp_receiver import OwampReceiver
from otwamp.session.owamp_sender import OwampSender, too_late
from otwamp.session.reflector import SessionReflector
from otwamp.session.sender import SessionSender
from otwamp.session.slots import request_send_times
from otwamp.wire.owamp_control import RequestSession, Slot, SlotType
from otwamp.wire.timestamp import (
    NTP_UNIX_OFFSET,
    duration_to_ntp,
    ns_to_ntp,
    ntp_add,
    ntp_diff,
    ntp_to_ns,
)

from .helpers import ERROR, SID, protection_for

NS = 10**9
MS = 10**6
WRAP_NS = (2**32 - NTP_UNIX_OFFSET) * NS  # 2036-02-07 06:28:16 UTC: era 1, second 0
START_NS = WRAP_NS - NS  # one second before the wrap
COUNT = 20
INTERVAL_NS = 100 * MS  # 10 packets before the wrap, 10 after
TIMEOUT = duration_to_ntp(2.0)
TIMEOUT_NS = 2 * NS
LATE_NS = 300_000  # the sender's send call comes 300 µs after each scheduled time
DELAY_NS = 2 * MS  # one-way delay of every packet
MODES = ["open", "authenticated", "encrypted"]


def request(slot_type: SlotType = SlotType.FIXED) -> RequestSession:
    """A Request-Session of COUNT packets from START_NS, 100 ms (mean) apart."""
    return RequestSession(
        sender_address=ipaddress.ip_address("192.0.2.1"),
        receiver_address=ipaddress.ip_address("192.0.2.2"),
        sender_port=9000,
        receiver_port=9001,
        slots=(Slot.of_seconds(slot_type, INTERVAL_NS / NS),),
        num_packets=COUNT,
        start_time=ns_to_ntp(START_NS),
        timeout=TIMEOUT,
    )


def test_schedule_wraps_with_the_clock() -> None:
    session = request()
    times = request_send_times(session, SID)
    wait = session.slots[0].parameter
    assert list(times) == [ntp_add(session.start_time, (seq + 1) * wait) for seq in range(COUNT)]
    assert [t >> 32 for t in times[:9]] == [0xFFFFFFFF] * 9
    assert [t >> 32 for t in times[10:]] == [0] * 9 + [1]
    assert all(0 <= t < 2**64 for t in times)
    for seq, t in enumerate(times):  # 100 ms is not exact in 32.32: 0.23 ns off per wait
        assert abs(ntp_to_ns(t) - (START_NS + (seq + 1) * INTERVAL_NS)) <= 10


def test_poisson_schedule_keeps_its_offsets_across_the_wrap() -> None:
    times = request_send_times(request(SlotType.EXPONENTIAL), SID)
    start = request().start_time
    offsets = [ntp_diff(t, start) for t in times]
    assert offsets == sorted(offsets) and offsets[0] > 0
    assert min(times) < start  # some are due after the wrap


def test_too_late_across_the_wrap() -> None:
    due = ns_to_ntp(WRAP_NS - 500 * MS)
    assert not too_late(due, ntp_add(due, TIMEOUT), TIMEOUT)
    assert too_late(due, ntp_add(due, TIMEOUT + 1), TIMEOUT)  # now is in era 1
    assert not too_late(ntp_add(due, TIMEOUT), due, 0)  # early is never too late


def run_owamp(mode: str, stop_ns: int) -> OwampSessionRecord:
    """Send every packet LATE_NS after its time, receive it DELAY_NS later, stop at stop_ns."""
    protection = protection_for(mode)
    times = request_send_times(request(), SID)
    record = OwampSessionRecord(SID, "to", mode, "passphrase", COUNT)
    receiver = OwampReceiver(record, times, TIMEOUT, protection)
    sender = OwampSender(b"\x00" * 7, protection)
    for seq, due in enumerate(times):
        now_ns = ntp_to_ns(due) + LATE_NS  # the injected clock
        now = ns_to_ntp(now_ns)
        assert not too_late(due, now, TIMEOUT)
        wire = bytes(sender.stamp(sender.prepare(seq), now, ERROR.to_int()))
        sender.mark_sent(seq, now, ERROR)
        received = Stamp(now_ns + DELAY_NS, True, ERROR.seconds)
        assert receiver.on_datagram(wire, received, 62), f"packet {seq} refused"
    next_seqno, skips = sender.stop_description()
    receiver.finish(next_seqno, skips, Stamp(stop_ns, True, ERROR.seconds))
    return record


@pytest.mark.parametrize("mode", MODES)
def test_owamp_session_across_the_wrap(mode: str) -> None:
    last_ns = START_NS + COUNT * INTERVAL_NS
    record = run_owamp(mode, last_ns + TIMEOUT_NS + 10 * MS)
    summary = summarize_owamp(record)
    packets = summary.packets
    assert (packets.sent, packets.received, packets.lost, packets.discarded) == (COUNT, COUNT, 0, 0)
    assert packets.dropped == 0
    delay = summary.path.one_way.delays.delay
    assert delay is not None
    assert delay.min == pytest.approx(DELAY_NS / NS, abs=2e-9)
    assert delay.max == pytest.approx(DELAY_NS / NS, abs=2e-9)
    sent_ns = [arrival.sent.ns for arrival in record.arrivals]
    times = request_send_times(request(), SID)
    expected = [ntp_to_ns(due) + LATE_NS for due in times]
    assert all(abs(got - want) <= 1 for got, want in zip(sent_ns, expected, strict=True))
    assert sent_ns == sorted(sent_ns)  # in Unix time, the wrap leaves no step back


def test_stop_sessions_discard_across_the_wrap() -> None:
    """RFC 4656 §3.8: packets due in the Timeout before the stop are discarded, not lost."""
    times = request_send_times(request(), SID)
    stop_ns = ntp_to_ns(times[15]) + TIMEOUT_NS + MS  # packets 16..19 are due after stop - Timeout
    record = run_owamp("open", stop_ns)
    assert (record.next_seqno, record.discarded_from) == (COUNT, 16)
    packets = summarize_owamp(record).packets
    assert (packets.sent, packets.received, packets.lost, packets.discarded) == (COUNT, 16, 0, 4)


@pytest.mark.parametrize("mode", MODES)
def test_twamp_round_trip_across_the_wrap(mode: str) -> None:
    protection = protection_for(mode)
    record = TwampSessionRecord(SID, mode, "passphrase")
    sender = SessionSender(record, bytes(30), protection)
    reflector = SessionReflector(protection)
    reflector.start(START_NS)
    for seq in range(COUNT):
        t1_ns = START_NS + seq * INTERVAL_NS
        t1 = ns_to_ntp(t1_ns)
        wire = bytes(sender.stamp(sender.prepare(seq), t1, ERROR.to_int()))
        sender.mark_sent(seq, t1, ERROR)
        reply = reflector.reflect(wire, t1_ns + DELAY_NS, ERROR.to_int(), 64)
        assert reply is not None
        t3 = ns_to_ntp(t1_ns + DELAY_NS + 50_000)
        back = bytes(reflector.stamp(reply, t3, ERROR.to_int()))
        t4 = Stamp(t1_ns + 2 * DELAY_NS + 50_000, True, ERROR.seconds)
        assert sender.on_datagram(back, t4, 64) is not None
    summary = summarize_twamp(record)
    assert (summary.packets.received, summary.packets.lost) == (COUNT, 0)
    for stats, seconds in (
        (summary.rtt.delay, 2 * DELAY_NS / NS),
        (summary.forward.one_way.delays.delay, DELAY_NS / NS),
        (summary.backward.one_way.delays.delay, DELAY_NS / NS),
    ):
        assert stats is not None
        assert stats.min == pytest.approx(seconds, abs=2e-9)
        assert stats.max == pytest.approx(seconds, abs=2e-9)
