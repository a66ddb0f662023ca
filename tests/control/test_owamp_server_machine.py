"""The OWAMP server machine: sessions, Stop-Sessions timing and Fetch-Session (RFC 4656 §3).

In memory with a fixed clock; packets are fed to the receivers the machine
hands out, as the driver would.
"""

import ipaddress

import pytest

from otwamp.control.effects import (
    BindTestPort,
    Close,
    ComputeSchedule,
    OpenReceiver,
    OpenSender,
    Release,
    Send,
    StartTest,
    StopReceiving,
    StopSending,
)
from otwamp.control.owamp_server_machine import OwampServerMachine
from otwamp.control.quota import SessionQuota
from otwamp.control.received_sessions import ReceivedSessions
from otwamp.control.server_policy import NS, ServerPolicy
from otwamp.drivers.control_server import ServerSettings, session_quota
from otwamp.results.records import Stamp
from otwamp.session.slots import request_send_times
from otwamp.wire.owamp_control import AcceptSession, RequestSession, Slot, SlotType, StartAck
from otwamp.wire.owamp_fetch import FetchAck, FetchSession, records_size, skip_ranges_size
from otwamp.wire.owamp_stop import SessionDescription, StopSessions
from otwamp.wire.owamp_test import SenderPacket, encode_packet
from otwamp.wire.registry import Accept, OwampMode
from otwamp.wire.timestamp import ErrorEstimate, duration_to_ntp, ns_to_ntp, ntp_to_ns
from tests.control.server_harness import LOCAL, NOW, PEER, ScriptedClient, counting_random
from tests.session.helpers import fetch_records

OWAMP_LOCAL = (LOCAL[0], 861)
START = ns_to_ntp(NOW + NS)  # sessions start 1 s after NOW
TIMEOUT = duration_to_ntp(2.0)
COUNT = 10
INTERVAL = 0.1
ERROR = ErrorEstimate(sync=True, scale=0, multiplier=1).to_int()


def store() -> ReceivedSessions:
    return ReceivedSessions(300 * NS, 64 << 20)


def client(
    received: ReceivedSessions,
    policy: ServerPolicy | None = None,
    quota: SessionQuota | None = None,
    peer: tuple[str, int] = PEER,
    now: int = NOW,
) -> ScriptedClient:
    """A machine past an open-mode set-up, driven by a scripted client at ``peer``."""
    machine = OwampServerMachine(
        policy or ServerPolicy(), peer, OWAMP_LOCAL, now, counting_random, received, None, quota
    )
    scripted = ScriptedClient(machine)
    scripted.collect()
    scripted.set_up(now=now)
    scripted.collect()
    assert scripted.server_start().accept == Accept.OK
    return scripted


def request(to: bool, **changes: object) -> RequestSession:
    """A "to" session (the server receives) or a "from" session (the server sends)."""
    fields: dict[str, object] = {
        "sender_address": ipaddress.ip_address(PEER[0] if to else LOCAL[0]),
        "receiver_address": ipaddress.ip_address(LOCAL[0] if to else PEER[0]),
        "sender_port": 40001 if to else 0,
        "receiver_port": 0 if to else 40002,
        "slots": (Slot.of_seconds(SlotType.FIXED, INTERVAL),),
        "num_packets": COUNT,
        "conf_receiver": to,
        "conf_sender": not to,
        "start_time": START,
        "timeout": TIMEOUT,
        "sid": bytes(16) if to else bytes(range(16)),
    }
    fields.update(changes)
    return RequestSession(**fields)  # type: ignore[arg-type]


def accept(
    scripted: ScriptedClient, req: RequestSession, port: int, now: int = NOW
) -> AcceptSession:
    scripted.send(*req.encode_parts(), now=now)
    assert isinstance(scripted.collect()[-1], BindTestPort)
    scripted.machine.port_bound(port, now)
    (compute,) = scripted.collect()
    assert isinstance(compute, ComputeSchedule)  # off the event loop (S2)
    scripted.machine.schedule_ready(request_send_times(compute.request, compute.sid), now)
    scripted.collect()
    return AcceptSession.decode(scripted.read(AcceptSession.BODY))


def started(scripted: ScriptedClient, now: int = NOW) -> list[object]:
    scripted.send(StartSessionsBody, now=now)
    effects = scripted.collect()
    assert StartAck.decode(scripted.read(StartAck.BODY)).accept == Accept.OK
    scripted.machine.test_started(Stamp(NOW, True, 1e-6))
    return effects


StartSessionsBody = bytes([2]) + bytes(15)  # Start-Sessions (RFC 4656 §3.7)


def deliver(receiver_effect: OpenReceiver, seqs: range) -> None:
    """Packets ``seqs`` of a "to" session arrive on time, 1 ms after they were sent."""
    receiver = receiver_effect.receiver
    for seq in seqs:
        sent = receiver._send_times[seq]
        packet = encode_packet(SenderPacket(seq, sent, ERROR), OwampMode.UNAUTHENTICATED)
        receiver.on_datagram(packet, Stamp(ntp_to_ns(sent) + 1_000_000, True, 1e-6), 64)


def fetch(scripted: ScriptedClient, fetch_: FetchSession) -> tuple[FetchAck, int]:
    """Fetch-Ack and the number of records that follow it."""
    scripted.send(fetch_.encode())
    scripted.collect()
    ack = FetchAck.decode(scripted.read(FetchAck.BODY))
    if ack.accept == Accept.OK:
        for size in (
            RequestSession.FIXED,
            Slot.SIZE,
            skip_ranges_size(ack.num_skip_ranges),
            records_size(ack.num_records),
        ):
            scripted.read(size)
    return ack, ack.num_records


def test_request_session_split_between_fixed_part_and_slots_is_one_request():
    """owping writes the fixed part and the slots as two segments ~50 ms apart."""
    scripted = client(store())
    fixed, slots = (scripted.channels.tx.seal(p) for p in request(True).encode_parts())
    scripted.machine.receive_data(fixed, NOW)
    assert scripted.collect() == []
    scripted.machine.receive_data(slots, NOW + 50_000_000)
    assert scripted.collect() == [BindTestPort(LOCAL[0], 0, 0)]
    scripted.machine.port_bound(20001, NOW)
    (compute,) = scripted.collect()
    scripted.machine.schedule_ready(request_send_times(compute.request, compute.sid), NOW)
    kinds = [type(e) for e in scripted.collect()]
    assert kinds == [OpenReceiver, Send]
    assert AcceptSession.decode(scripted.read(AcceptSession.BODY)).accept == Accept.OK


def test_the_server_chooses_the_sid_of_a_session_it_receives_and_takes_the_clients_otherwise():
    scripted = client(store())
    to = accept(scripted, request(True), 20001)
    assert to.sid[:4] == ipaddress.ip_address(LOCAL[0]).packed
    from_ = accept(scripted, request(False), 20002)
    assert from_.sid == bytes(range(16))
    (sender,) = [e for e in scripted.effects if isinstance(e, OpenSender)]
    assert (sender.receiver, sender.port) == ((PEER[0], 40002), 20002)
    assert len(sender.times) == COUNT


def test_the_padding_of_the_packets_the_server_sends_is_random():
    """RFC 4656 §4.1.2: the padding SHOULD be pseudo-random, not zeros."""
    scripted = client(store())
    accept(scripted, request(False, padding_length=64), 20002)
    (sender,) = [e for e in scripted.effects if isinstance(e, OpenSender)]
    padding = bytes(sender.sender.prepare(0)[-64:])
    assert padding != bytes(64) and len(set(padding)) > 8


def test_stop_sessions_waits_for_every_session_of_the_round():
    """RFC 4656 §3.8: not before the client's packets, still in flight, are complete."""
    scripted = client(store())
    accept(scripted, request(True, num_packets=3 * COUNT), 20001)  # the client's: 3 s
    accept(scripted, request(False), 20002)  # ours: 1 s
    started(scripted)
    due = scripted.machine.get_timer()
    # RFC 4656 §3.6: the first packet goes one interval after the start.
    to_end = START + duration_to_ntp(INTERVAL * 3 * COUNT) + TIMEOUT
    assert abs(due - ntp_to_ns(to_end)) < 1000
    scripted.machine.handle_timer(due - NS)
    assert scripted.collect() == []
    scripted.machine.handle_timer(due)
    (stop_sending,) = scripted.collect()
    assert stop_sending == StopSending((bytes(range(16)),))
    scripted.machine.senders_stopped(due)
    (send,) = scripted.collect()
    stop = StopSessions.decode(scripted.framer.grow(StopSessions.body_size))
    assert isinstance(send, Send)
    assert [d.sid for d in stop.sessions] == [bytes(range(16))]


def test_the_clients_earlier_stop_is_answered_and_its_session_finished():
    received = store()
    scripted = client(received)
    to = accept(scripted, request(True), 20001)
    accept(scripted, request(False), 20002)
    effects = started(scripted)
    (receiver,) = [e for e in scripted.effects if isinstance(e, OpenReceiver)]
    assert StartTest((to.sid, bytes(range(16)))) in effects
    deliver(receiver, range(COUNT))
    later = ntp_to_ns(START + duration_to_ntp(5.0))
    scripted.send(StopSessions(Accept.OK, (SessionDescription(to.sid, COUNT),)).encode(), now=later)
    assert scripted.collect() == [StopReceiving((to.sid,)), StopSending((bytes(range(16)),))]
    scripted.machine.senders_stopped(later)
    scripted.collect()
    assert receiver.receiver.finished
    assert receiver.receiver.record.next_seqno == COUNT
    assert len(fetch_records(receiver.receiver, 0, COUNT)) == COUNT
    assert scripted.machine.get_timer() == later + ServerPolicy().servwait_ns


def test_a_session_is_fetched_from_another_connection_of_the_same_identity():
    received = store()
    first = client(received)
    to = accept(first, request(True), 20001)
    started(first)
    (receiver,) = [e for e in first.effects if isinstance(e, OpenReceiver)]
    deliver(receiver, range(COUNT))
    later = ntp_to_ns(START + duration_to_ntp(5.0))
    first.send(StopSessions(Accept.OK, (SessionDescription(to.sid, COUNT),)).encode(), now=later)
    first.collect()
    first.machine.senders_stopped(later)
    first.machine.connection_lost(later)
    assert Release((to.sid,)) in first.collect()
    second = client(received)  # powstream: stop on one connection, fetch on a new one
    ack, records = fetch(second, FetchSession(to.sid))
    assert (ack.accept, ack.finished, ack.next_seqno, records) == (Accept.OK, True, COUNT, COUNT)


def test_kept_sessions_expire_and_unknown_sids_are_refused(caplog):
    received = ReceivedSessions(300 * NS, 64 << 20)
    first = client(received)
    to = accept(first, request(True), 20001)
    started(first)
    later = ntp_to_ns(START + duration_to_ntp(5.0))
    first.send(StopSessions(Accept.OK, (SessionDescription(to.sid, COUNT),)).encode(), now=later)
    first.collect()
    first.machine.senders_stopped(later)
    assert len(received) == 1
    second = client(received)
    second.send(FetchSession(to.sid).encode(), now=later + 301 * NS)
    second.collect()
    assert FetchAck.decode(second.read(FetchAck.BODY)).accept == Accept.FAILURE
    assert len(received) == 0
    assert "unknown SID" in caplog.text


def test_a_session_the_server_sends_is_not_one_it_can_fetch(caplog):
    scripted = client(store())
    from_ = accept(scripted, request(False), 20002)
    ack, _ = fetch(scripted, FetchSession(from_.sid))
    assert (ack.accept, ack.num_records) == (Accept.FAILURE, 0)
    assert "unknown SID" in caplog.text


def test_a_session_that_ended_abnormally_is_not_fetched_complete_but_in_part():
    """RFC 4656 §3.9: a complete session that did not end normally MUST be denied."""
    received = store()
    first = client(received)
    to = accept(first, request(True), 20001)
    started(first)
    (receiver,) = [e for e in first.effects if isinstance(e, OpenReceiver)]
    deliver(receiver, range(4))
    first.machine.connection_lost(NOW + 2 * NS)  # before any Stop-Sessions
    assert StopReceiving((to.sid,)) in first.collect()
    second = client(received)
    assert fetch(second, FetchSession(to.sid))[0].accept == Accept.FAILURE
    ack, records = fetch(second, FetchSession(to.sid, 0, 2))
    assert (ack.accept, records) == (Accept.OK, 3)


def test_a_session_still_running_is_fetched_in_part_without_its_end():
    received = store()
    first = client(received)
    to = accept(first, request(True), 20001)
    started(first)
    (receiver,) = [e for e in first.effects if isinstance(e, OpenReceiver)]
    deliver(receiver, range(5))
    second = client(received)
    complete = fetch(second, FetchSession(to.sid))[0]
    assert complete.accept == Accept.TEMPORARY_RESOURCE_LIMITATION
    ack, records = fetch(second, FetchSession(to.sid, 0, 100))
    assert (ack.accept, ack.finished, ack.next_seqno, records) == (Accept.OK, False, 0, 5)


def test_a_stop_with_a_non_zero_accept_marks_the_results_incomplete():
    """RFC 4656 §3.8: a non-zero Accept means the results are not to be trusted."""
    scripted = client(store())
    to = accept(scripted, request(True), 20001)
    started(scripted)
    (receiver,) = [e for e in scripted.effects if isinstance(e, OpenReceiver)]
    later = ntp_to_ns(START + duration_to_ntp(5.0))
    stop = StopSessions(Accept.FAILURE, (SessionDescription(to.sid, COUNT),))
    scripted.send(stop.encode(), now=later)
    scripted.collect()
    assert receiver.receiver.finished
    assert not receiver.receiver.record.completed


def test_a_stop_describing_a_session_the_client_does_not_send_closes_the_connection():
    scripted = client(store())
    accept(scripted, request(True), 20001)
    started(scripted)
    scripted.send(StopSessions(Accept.OK, (SessionDescription(bytes(16), 3),)).encode())
    close = scripted.collect()[-1]
    assert isinstance(close, Close)
    assert "RFC 4656 §3.8" in close.reason


THIRD = ipaddress.ip_address("198.51.100.9")  # neither end of the control connection
SENDING = {"to": False}  # the server would send


@pytest.mark.parametrize(
    ("changes", "accept_value", "reason"),
    [
        pytest.param(
            {"slots": (Slot(SlotType.FIXED, 0),)},
            Accept.PERMANENT_RESOURCE_LIMITATION,
            "impossible schedule: mean interval 0 s",
            id="slot-interval-0",
        ),
        pytest.param(
            {"slots": (Slot.of_seconds(SlotType.EXPONENTIAL, 5e-6),)},
            Accept.PERMANENT_RESOURCE_LIMITATION,
            "impossible schedule",
            id="mean-below-10us",
        ),
        pytest.param(
            {"slots": (Slot.of_seconds(SlotType.FIXED, 1e-6), Slot.of_seconds(SlotType.FIXED, 0))},
            Accept.PERMANENT_RESOURCE_LIMITATION,
            "impossible schedule",
            id="mean-of-two-slots-below-10us",
        ),
        pytest.param(
            {"slots": (Slot.of_seconds(SlotType.FIXED, 9000.0),), "num_packets": 10},
            Accept.PERMANENT_RESOURCE_LIMITATION,
            "impossible schedule",
            id="longer-than-a-day",
        ),
        pytest.param(
            {"num_packets": 11},
            Accept.PERMANENT_RESOURCE_LIMITATION,
            "11 packets, the limit is 10",
            id="too-many-packets",
        ),
        pytest.param(
            {"num_packets": 0}, Accept.PERMANENT_RESOURCE_LIMITATION, "0 packets", id="no-packets"
        ),
        pytest.param(
            {"timeout": duration_to_ntp(601.0)},
            Accept.PERMANENT_RESOURCE_LIMITATION,
            "Timeout above 600 s",
            id="timeout-too-long",
        ),
        pytest.param(
            {"conf_sender": True},
            Accept.NOT_SUPPORTED,
            "exactly one of Conf-Sender and Conf-Receiver",
            id="both-conf",
        ),
        pytest.param(
            {"conf_receiver": False},
            Accept.NOT_SUPPORTED,
            "exactly one of Conf-Sender and Conf-Receiver",
            id="neither-conf",
        ),
        pytest.param(
            {"sender_address": THIRD},
            Accept.NOT_SUPPORTED,
            "not the control client (no third party)",
            id="third-party-sender",
        ),
        pytest.param(
            {**SENDING, "receiver_address": THIRD},
            Accept.NOT_SUPPORTED,
            "not the control client (no third party)",
            id="third-party-receiver",
        ),
        pytest.param(
            {"receiver_address": THIRD},
            Accept.NOT_SUPPORTED,
            "is not this server's address here",
            id="receiver-address-not-ours",
        ),
        pytest.param(
            {**SENDING, "sender_address": THIRD},
            Accept.NOT_SUPPORTED,
            "is not this server's address here",
            id="sender-address-not-ours",
        ),
        pytest.param(
            {
                "sender_address": ipaddress.ip_address("::1"),
                "receiver_address": ipaddress.ip_address("::1"),
            },
            Accept.NOT_SUPPORTED,
            "IPv6 session on an IPv4 connection",
            id="ipv6-on-ipv4",
        ),
        pytest.param(
            {**SENDING, "receiver_port": 0},
            Accept.NOT_SUPPORTED,
            "needs the client's port and SID",
            id="send-without-port",
        ),
        pytest.param(
            {**SENDING, "sid": bytes(16)},
            Accept.NOT_SUPPORTED,
            "needs the client's port and SID",
            id="send-without-sid",
        ),
        pytest.param(
            {**SENDING, "type_p": 0x40000000 | 0x2E00},
            Accept.NOT_SUPPORTED,
            "is not a DSCP",
            id="type-p-not-dscp",
        ),
        pytest.param(
            {"padding_length": 70_000},
            Accept.NOT_SUPPORTED,
            "exceeds a UDP datagram",
            id="padding-too-long",
        ),
    ],
)
def test_requests_it_cannot_honour_are_refused(changes, accept_value, reason, caplog):
    """RFC 4656 §3.3, §3.5: refused with the Accept value; the connection goes on."""
    changes = dict(changes)
    to = changes.pop("to", True)
    scripted = client(store(), ServerPolicy(max_packets=10))
    scripted.send(*request(to, **changes).encode_parts())
    assert not any(isinstance(e, BindTestPort) for e in scripted.collect())
    assert AcceptSession.decode(scripted.read(AcceptSession.BODY)).accept == accept_value
    (line,) = [r.message for r in caplog.records if f"refused (Accept {accept_value})" in r.message]
    assert reason in line and PEER[0] in line
    assert scripted.machine.sessions == {}
    assert accept(scripted, request(True), 20001).accept == Accept.OK  # RFC 4656 §3.5


def test_a_session_across_the_2036_era_boundary():
    """NTP seconds wrap to 0 on 2036-02-07 (RFC 5905 §6): schedules, timers and fetch hold."""
    era_1 = 2_085_978_496 * NS  # Unix ns of NTP era 1's first second
    scripted = client(store(), now=era_1 - 2 * NS)
    machine = scripted.machine
    start = ns_to_ntp(era_1 - NS // 2)  # the packets go out on both sides of the boundary
    now = era_1 - 2 * NS
    to = accept(scripted, request(True, start_time=start), 20001, now)
    accept(scripted, request(False, start_time=start), 20002, now)
    started(scripted, now)
    (receiver,) = [e for e in scripted.effects if isinstance(e, OpenReceiver)]
    assert receiver.receiver._send_times[-1] < receiver.receiver._send_times[0]  # wrapped
    due = machine.get_timer()
    assert abs(due - (era_1 - NS // 2 + round(COUNT * INTERVAL * NS) + 2 * NS)) < 1000
    assert machine.testing(due - 1) and not machine.testing(due)
    deliver(receiver, range(COUNT))
    machine.handle_timer(due)
    machine.senders_stopped(due)
    scripted.send(StopSessions(Accept.OK, (SessionDescription(to.sid, COUNT),)).encode(), now=due)
    scripted.collect()
    ours = StopSessions.decode(scripted.framer.grow(StopSessions.body_size))
    assert ours.sessions[0].next_seqno == 0  # the driver sent nothing here
    ack, records = fetch(scripted, FetchSession(to.sid))
    assert (ack.accept, ack.next_seqno, records) == (Accept.OK, COUNT, COUNT)
    assert receiver.receiver.record.dropped.unknown_seq == 0


def test_a_stop_announcing_more_sessions_than_the_client_has_is_refused_at_its_header():
    """S1: Number of Sessions 2**32-1 closes the connection before anything more is read."""
    scripted = client(store())
    accept(scripted, request(True), 20001)
    started(scripted)
    header = bytes([3, 0, 0, 0]) + (0xFFFFFFFF).to_bytes(4, "big") + bytes(8)
    scripted.machine.receive_data(scripted.channels.tx.encrypt(header), NOW)
    (close,) = scripted.collect()[-1:]
    assert isinstance(close, Close)
    assert "Number of Sessions 4294967295" in close.reason


def test_a_description_announcing_more_skip_ranges_than_packets_is_refused_at_its_head():
    """S1: skip ranges <= packets scheduled (RFC 4656 §3.8), checked before they are read."""
    scripted = client(store())
    to = accept(scripted, request(True), 20001)
    started(scripted)
    header = bytes([3, 0, 0, 0]) + (1).to_bytes(4, "big") + bytes(8)
    head = to.sid + (COUNT).to_bytes(4, "big") + (0xFFFFFFFF).to_bytes(4, "big") + bytes(8)
    scripted.machine.receive_data(header + head, NOW)
    close = scripted.collect()[-1]
    assert isinstance(close, Close)
    assert f"4294967295 skip ranges for SID {to.sid.hex()}, which has {COUNT} packets" in (
        close.reason
    )


def test_octets_sent_far_ahead_of_their_answers_close_the_connection():
    """S1: nothing is buffered without bound, even while the machine waits for a port."""
    scripted = client(store())
    scripted.send(*request(True).encode_parts())
    assert isinstance(scripted.collect()[-1], BindTestPort)  # now waiting for the driver
    for _ in range(17):
        scripted.machine.receive_data(bytes(65536), NOW)
    close = scripted.collect()[-1]
    assert isinstance(close, Close)
    assert "octets sent ahead of their answers" in close.reason


def test_a_rounds_sockets_are_released_once_both_stops_crossed():
    """S3: a long-lived connection does not pile up sockets round after round."""
    quota = SessionQuota(10)
    scripted = client(store(), quota=quota)
    machine = scripted.machine
    to = accept(scripted, request(True), 20001)
    from_ = accept(scripted, request(False), 20002)
    started(scripted)
    assert quota[PEER[0]] == 2
    later = ntp_to_ns(START + duration_to_ntp(5.0))
    scripted.send(StopSessions(Accept.OK, (SessionDescription(to.sid, COUNT),)).encode(), now=later)
    scripted.collect()
    machine.senders_stopped(later)
    assert Release((to.sid, from_.sid)) in scripted.collect()
    assert (quota[PEER[0]], machine.sessions) == (0, {})
    assert machine.received.find(to.sid, None, later) is not None  # still fetchable


def test_scheduled_packets_are_budgeted_per_connection_and_server_wide():
    """S2: schedules cost 8 octets a packet; what they may hold in all is bounded."""
    policy = ServerPolicy(max_packets_per_connection=25)
    quota = SessionQuota(per_source=100, packets=40, per_source_packets=40)
    one = client(store(), policy, quota)
    assert accept(one, request(True, num_packets=20), 20001).accept == Accept.OK
    one.send(*request(True, num_packets=10).encode_parts())
    one.collect()
    refused = AcceptSession.decode(one.read(AcceptSession.BODY))
    assert refused.accept == Accept.PERMANENT_RESOURCE_LIMITATION  # 30 > 25 on this connection
    other = ("192.0.2.8", 40000)
    two = client(store(), policy, quota, other)
    address = ipaddress.ip_address(other[0])
    two.send(*request(True, num_packets=21, sender_address=address).encode_parts())
    two.collect()
    assert AcceptSession.decode(two.read(AcceptSession.BODY)).accept == 5  # 41 > 40 in all
    assert quota.scheduled == 20
    one.machine.connection_lost(NOW)
    assert quota.scheduled == 0


def test_the_default_limits_take_one_ten_million_packet_session():
    """R24: ``otwamp server``'s defaults take the largest session the clients ask for
    (-c 10,000,000), from one address on one connection, and not a packet more."""
    settings = ServerSettings()
    assert (ServerPolicy().max_packets, ServerPolicy().max_packets_per_connection) == (
        settings.max_packets,
        settings.max_packets_per_connection,
    )
    slots = (Slot.of_seconds(SlotType.FIXED, 50e-6),)  # 20,000 pps: 500 s
    quota = session_quota(settings)
    scripted = client(store(), ServerPolicy(), quota)
    scripted.send(*request(True, num_packets=10_000_000, slots=slots).encode_parts())
    assert isinstance(scripted.collect()[-1], BindTestPort)
    assert quota.scheduled == 10_000_000
    other = client(store(), ServerPolicy(), session_quota(settings))
    other.send(*request(True, num_packets=10_000_001, slots=slots).encode_parts())
    other.collect()
    refused = AcceptSession.decode(other.read(AcceptSession.BODY))
    assert refused.accept == Accept.PERMANENT_RESOURCE_LIMITATION


def test_a_connection_lost_mid_test_stops_its_senders_without_waiting_for_an_answer():
    scripted = client(store())
    from_ = accept(scripted, request(False), 20002)
    started(scripted)
    scripted.machine.connection_lost(NOW + NS)
    effects = scripted.collect()
    assert effects[0] == StopSending((from_.sid,), reply=False)
    assert Release((from_.sid,)) in effects
    assert isinstance(effects[-1], Close)


def test_a_requests_packets_are_reserved_until_it_is_refused_or_closed():
    """S2: the budget is taken with the request, so concurrent requests cannot overshoot it."""
    quota = SessionQuota(per_source=10, packets=100, per_source_packets=100)
    scripted = client(store(), quota=quota)
    scripted.send(*request(True, num_packets=60).encode_parts())
    scripted.collect()
    assert quota.scheduled == 60  # while the port is bound and the schedule computed
    scripted.machine.port_failed(98, "in use", NOW)  # EADDRINUSE
    scripted.collect()
    assert quota.scheduled == 0
    scripted.send(*request(True, num_packets=60).encode_parts())
    scripted.machine.port_bound(20001, NOW)
    assert isinstance(scripted.collect()[-1], ComputeSchedule)
    scripted.machine.connection_lost(NOW)
    assert (quota.scheduled, quota[PEER[0]]) == (0, 0)
