"""The TWAMP server machine decides every answer, in memory with a fixed clock (RFC 5357 §3)."""

import errno
import ipaddress
import logging

import pytest

from otwamp.control.effects import (
    BindTestPort,
    Close,
    LookUpKey,
    OpenReflector,
    Release,
    Send,
    StartTest,
    StopReflectors,
)
from otwamp.control.quota import SessionQuota
from otwamp.control.server_policy import NS, ServerPolicy
from otwamp.control.twamp_server_machine import TwampServerMachine
from otwamp.keys.source import KeySourceKind
from otwamp.wire.registry import Accept, TwampMode
from otwamp.wire.timestamp import duration_to_ntp, ns_to_ntp
from otwamp.wire.twamp_control import (
    AcceptSession,
    RequestTwSession,
    StartAck,
    StartSessions,
    StopSessions,
)
from tests.control.server_harness import (
    CREDENTIALS,
    LOCAL,
    NOW,
    PEER,
    ScriptedClient,
    counting_random,
)

SECURED = ServerPolicy(
    modes=TwampMode.UNAUTHENTICATED | TwampMode.AUTHENTICATED | TwampMode.ENCRYPTED,
    ikev2_keys=True,
    start_time=ns_to_ntp(NOW - 60 * NS),
)


def machine(
    policy: ServerPolicy = SECURED, refuse: str | None = None, quota: SessionQuota | None = None
) -> ScriptedClient:
    server = TwampServerMachine(policy, PEER, LOCAL, NOW, counting_random, refuse, quota)
    client = ScriptedClient(server)
    client.collect()
    return client


def request(**changes: object) -> RequestTwSession:
    fields: dict[str, object] = {
        "sender_address": ipaddress.ip_address(PEER[0]),
        "receiver_address": ipaddress.ip_address("0.0.0.0"),
        "sender_port": 40001,
        "receiver_port": 20000,
        "timeout": duration_to_ntp(2.0),
    }
    fields.update(changes)
    return RequestTwSession(**fields)  # type: ignore[arg-type]


def open_client(
    policy: ServerPolicy = SECURED, quota: SessionQuota | None = None
) -> ScriptedClient:
    client = machine(policy, quota=quota)
    client.set_up()
    client.collect()
    assert client.server_start().accept == Accept.OK
    return client


def accepted(client: ScriptedClient, port: int = 20000) -> AcceptSession:
    """Request a session, bind ``port`` and return the Accept-Session."""
    client.send(request().encode())
    assert client.collect() == [BindTestPort(LOCAL[0], 20000, 0)]
    client.machine.port_bound(port, NOW)
    client.collect()
    return AcceptSession.decode(client.read(AcceptSession.BODY))


def test_greeting_offers_the_configured_modes_and_the_ikev2_bit():
    client = machine()
    greeting = client.greeting()
    assert greeting.modes == 0x1 | 0x2 | 0x4 | 0x80  # RFC 7717 §7: bit 7 with a key source
    assert greeting.count == SECURED.count
    no_ike = machine(ServerPolicy(modes=TwampMode.AUTHENTICATED))
    assert no_ike.greeting().modes == 0x2


def test_a_full_server_greets_with_modes_0_and_closes(caplog):
    client = machine(refuse="64 control connections already")
    assert client.greeting().modes == 0
    assert isinstance(client.effects[-1], Close)
    assert client.machine.closed
    assert "64 control connections already" in caplog.text


def test_open_mode_starts_with_the_servers_start_time():
    client = open_client()
    client.framer = type(client.framer)()  # re-read from the effects
    for effect in client.effects:
        if isinstance(effect, Send):
            client.framer.feed(effect.data)
    client.greeting()
    start = client.server_start()
    assert start.accept == Accept.OK
    assert start.start_time == SECURED.start_time


def test_a_mode_not_offered_is_refused_with_accept_3_and_closed():
    client = machine(ServerPolicy())  # open mode only
    client.set_up(TwampMode.AUTHENTICATED, CREDENTIALS)
    client.collect()
    assert client.server_start().accept == Accept.NOT_SUPPORTED
    assert client.machine.closed


def test_secured_set_up_asks_for_the_key_and_waits_for_it():
    client = machine()
    client.set_up(TwampMode.AUTHENTICATED, CREDENTIALS)
    assert client.collect() == [LookUpKey(CREDENTIALS.key_id, derived=False)]
    client.send(request().encode())  # pipelined: stays buffered while the key is looked up
    assert client.collect() == []
    client.machine.key_found(CREDENTIALS, None, NOW)
    effects = client.collect()
    assert isinstance(effects[0], Send)
    assert effects[1] == BindTestPort(LOCAL[0], 20000, 0)
    assert client.server_start().accept == Accept.OK
    assert client.machine.identity == CREDENTIALS.key_id


@pytest.mark.parametrize(
    ("mode_bits", "found", "problem", "accept"),
    [
        (0, False, None, Accept.FAILURE),  # unknown KeyID: RFC 4656 §3.3
        (0x80, False, None, Accept.NO_IKEV2_SA),  # no SA for the SPIs: RFC 7717 §5.2
        (0x80, False, "no answer from the IKE key broker", Accept.NO_IKEV2_SA),
        (0, True, None, Accept.FAILURE),  # wrong secret: the Token's Challenge mismatches
    ],
)
def test_key_failures_get_their_accept_values(mode_bits, found, problem, accept, caplog):
    client = machine()
    client.set_up(TwampMode.AUTHENTICATED, CREDENTIALS, mode_bits)
    (lookup,) = client.collect()
    assert lookup == LookUpKey(CREDENTIALS.key_id, derived=bool(mode_bits))
    wrong = CREDENTIALS.__class__(CREDENTIALS.key_id, b"wrong", KeySourceKind.PASSPHRASE, "alice")
    client.machine.key_found(wrong if found else None, problem, NOW)
    client.collect()
    assert client.server_start().accept == accept
    assert client.machine.closed
    assert "authentication failed" in caplog.text
    assert "wrong" not in caplog.text.replace("wrong shared secret", "")  # no key material


def test_a_request_becomes_a_reflector_on_the_bound_port():
    client = open_client()
    answer = accepted(client, port=20005)
    assert answer.accept == Accept.OK
    assert answer.port == 20005
    # RFC 4656 §3.5: SID = receiver address, its timestamp, 4 random octets.
    assert answer.sid[:4] == ipaddress.ip_address(LOCAL[0]).packed
    assert answer.sid[4:12] == ns_to_ntp(NOW).to_bytes(8, "big")
    (open_,) = [e for e in client.effects if isinstance(e, OpenReflector)]
    assert (open_.sid, open_.port, open_.sender) == (answer.sid, 20005, (PEER[0], 40001))
    assert open_.protection is None
    assert open_.refwait_ns == SECURED.refwait_ns


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"conf_sender": 1}, "Conf-Sender/Conf-Receiver must be 0"),
        ({"conf_receiver": 1}, "Conf-Sender/Conf-Receiver must be 0"),
        ({"num_packets": 10}, "Number of Schedule Slots/Packets must be 0"),
        ({"num_slots": 1}, "Number of Schedule Slots/Packets must be 0"),
        ({"type_p": 0x40000000 | 0x2E00}, "is not a DSCP"),
        ({"sender_address": ipaddress.ip_address("198.51.100.9")}, "no third-party reflection"),
        ({"padding_length": 70_000}, "exceeds a UDP datagram"),
        (
            {
                "sender_address": ipaddress.ip_address("::1"),
                "receiver_address": ipaddress.ip_address("::1"),
            },
            "IPv6 session on an IPv4 connection",
        ),
    ],
)
def test_requests_it_cannot_honour_get_accept_3_without_binding(changes, reason, caplog):
    """RFC 4656 §3.3 via RFC 5357 §3.5; the connection goes on (R5)."""
    client = open_client()
    client.send(request(**changes).encode())
    effects = client.collect()
    assert not any(isinstance(e, BindTestPort) for e in effects)
    answer = AcceptSession.decode(client.read(AcceptSession.BODY))
    assert (answer.accept, answer.port, answer.sid) == (Accept.NOT_SUPPORTED, 0, bytes(16))
    (line,) = [r.message for r in caplog.records if "refused (Accept 3)" in r.message]
    assert reason in line and PEER[0] in line
    assert not client.machine.closed
    assert accepted(client).accept == Accept.OK


@pytest.mark.parametrize(
    ("code", "accept"),
    [
        (errno.EADDRNOTAVAIL, Accept.NOT_SUPPORTED),
        (errno.EADDRINUSE, Accept.TEMPORARY_RESOURCE_LIMITATION),
    ],
)
def test_a_port_that_cannot_be_bound_is_refused(code, accept):
    client = open_client()
    client.send(request().encode())
    client.collect()
    client.machine.port_failed(code, "no", NOW)
    client.collect()
    assert AcceptSession.decode(client.read(AcceptSession.BODY)).accept == accept


def test_start_and_stop_drive_the_reflectors():
    client = open_client()
    sid = accepted(client).sid
    client.send(StartSessions().encode())
    assert client.collect()[0] == StartTest((sid,))
    assert StartAck.decode(client.read(StartAck.BODY)).accept == Accept.OK
    client.send(StopSessions(Accept.OK, 1).encode())
    assert client.collect() == [StopReflectors(((sid, 2 * NS),))]


def test_a_stop_timeout_is_capped_at_a_minute():
    client = open_client()
    client.send(request(timeout=duration_to_ntp(3600.0)).encode())
    client.collect()
    client.machine.port_bound(20000, NOW)
    client.collect()
    sid = AcceptSession.decode(client.read(AcceptSession.BODY)).sid
    client.send(StartSessions().encode())
    client.send(StopSessions(Accept.OK, 1).encode())
    assert StopReflectors(((sid, 60 * NS),)) in client.collect()


def test_servwait_closes_an_idle_connection_but_not_a_testing_one(caplog):
    caplog.set_level(logging.INFO)
    client = open_client()
    machine_ = client.machine
    deadline = machine_.get_timer()
    assert deadline == NOW + SECURED.servwait_ns
    machine_.handle_timer(deadline - 1)
    assert not machine_.closed
    sid = accepted(client).sid
    client.send(StartSessions().encode())
    client.collect()
    later = NOW + 2 * SECURED.servwait_ns
    machine_.handle_timer(later)  # a started reflector is open: test traffic counts (R9)
    assert not machine_.closed
    assert machine_.get_timer() == later + SECURED.servwait_ns
    machine_.reflector_closed(sid)  # REFWAIT ended it
    machine_.handle_timer(later + SECURED.servwait_ns)
    assert machine_.closed
    assert "(SERVWAIT)" in client.collect()[-1].reason


def test_a_connection_lost_before_stop_releases_its_reflectors_after_stop_not():
    client = open_client()
    sid = accepted(client).sid
    client.machine.connection_lost(NOW)
    effects = client.collect()
    assert effects[0] == Release((sid,))
    assert isinstance(effects[-1], Close)
    stopped = open_client()
    accepted(stopped)
    stopped.send(StartSessions().encode())
    stopped.send(StopSessions(Accept.OK, 1).encode())
    stopped.collect()
    stopped.machine.connection_lost(NOW)
    assert not any(isinstance(e, Release) for e in stopped.collect())


def test_an_unknown_command_gets_accept_3_and_the_connection_closes(caplog):
    client = open_client()
    client.send(bytes([42]) + bytes(15))
    effects = client.collect()
    assert AcceptSession.decode(client.read(AcceptSession.BODY)).accept == Accept.NOT_SUPPORTED
    assert isinstance(effects[-1], Close)
    assert "unknown Command Number 42" in caplog.text


def test_a_malformed_command_closes_only_this_connection_with_its_reason():
    client = open_client()
    client.send(StopSessions(Accept.OK, 3).encode())  # before Start-Sessions
    (close,) = client.collect()
    assert isinstance(close, Close)
    assert "RFC 4656 §3.4" in close.reason


def test_every_split_of_the_client_stream_gives_the_same_effects():
    stream = request().encode() + bytes(16) + StartSessions().encode() + bytes(16)
    for cut in range(len(stream) + 1):
        client = open_client()
        client.machine.receive_data(stream[:cut], NOW)
        client.machine.receive_data(stream[cut:], NOW + 1)
        assert client.collect() == [BindTestPort(LOCAL[0], 20000, 0)]
        client.machine.port_bound(20000, NOW + 2)  # Start-Sessions was kept buffered
        kinds = [type(e) for e in client.collect()]
        assert kinds == [OpenReflector, Send, StartTest, Send]


def test_sessions_per_connection_and_per_address_are_bounded():
    """S3: one connection, or one address, cannot take every test port."""
    policy = ServerPolicy(max_sessions_per_connection=2)
    quota = SessionQuota(3)
    first = ScriptedClient(
        TwampServerMachine(policy, PEER, LOCAL, NOW, counting_random, None, quota)
    )
    first.collect()
    first.set_up()
    first.collect()
    first.server_start()
    sids = [accepted(first, 20000 + n).sid for n in range(2)]
    first.send(request().encode())
    first.collect()
    assert AcceptSession.decode(first.read(AcceptSession.BODY)).accept == 4  # this connection
    first.machine.reflector_closed(sids[0])
    assert accepted(first, 20003).accept == Accept.OK
    second = ScriptedClient(
        TwampServerMachine(policy, PEER, LOCAL, NOW, counting_random, None, quota)
    )
    second.collect()
    second.set_up()
    second.collect()
    second.server_start()
    assert accepted(second, 20004).accept == Accept.OK  # the address's third
    second.send(request().encode())
    second.collect()
    assert AcceptSession.decode(second.read(AcceptSession.BODY)).accept == 5  # the address
    assert quota[PEER[0]] == 3
    second.machine.connection_lost(NOW)
    for effect in second.collect():
        if isinstance(effect, Release):
            for sid in effect.sids:
                second.machine.reflector_closed(sid)  # as the driver reports each close
    assert quota[PEER[0]] == 2


def test_a_message_must_arrive_whole_within_the_message_timeout():
    """S4: a client dripping one octet every 2 s is closed, not kept for ever."""
    client = open_client()
    wire = request().encode() + bytes(16)
    now = NOW
    for octet in wire[:5]:
        now += 2 * NS
        client.machine.receive_data(bytes([octet]), now)
        client.machine.handle_timer(now)
    assert not client.machine.closed
    assert client.machine.get_timer() == NOW + 2 * NS + ServerPolicy().message_timeout_ns
    client.machine.handle_timer(NOW + 12 * NS)
    close = client.collect()[-1]
    assert isinstance(close, Close)
    assert "a message begun 10 s ago is still incomplete" in close.reason


def test_the_set_up_must_come_within_the_message_timeout():
    client = machine()
    client.machine.handle_timer(NOW + SECURED.message_timeout_ns)
    assert client.machine.closed


def test_a_connection_that_never_started_can_be_evicted_one_that_started_not():
    idle = open_client()
    assert not idle.machine.started
    idle.machine.evict(NOW)
    assert "dropped to make room" in idle.collect()[-1].reason
    busy = open_client()
    accepted(busy)
    busy.send(StartSessions().encode())
    busy.collect()
    assert busy.machine.started
