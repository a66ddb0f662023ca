"""Individual Session Control (RFC 5938) and the optional Modes bits, machine against machine.

Our client machine and our server machine are joined in memory with a fixed
clock and repeatable random octets; every octet the client sends may be cut
anywhere, and the server must answer exactly as to the whole messages.
"""

import itertools
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
from otwamp.control.events import (
    CredentialsNeeded,
    ServerStarted,
    SessionAccepted,
    SessionsAcked,
)
from otwamp.control.server_policy import ServerPolicy
from otwamp.control.twamp_client import TwampClientConnection
from otwamp.control.twamp_server_machine import TwampServerMachine
from otwamp.wire.registry import Accept, TwampMode
from otwamp.wire.setup import ServerStart
from otwamp.wire.twamp_control import AcceptSession, StartSessions
from otwamp.wire.twamp_features import EXTENSION_BITS, PacketFormat
from otwamp.wire.twamp_individual import StartNAck, StartNSessions, StopNSessions
from tests.control.server_harness import CREDENTIALS, LOCAL, NOW, PEER, ScriptedClient
from tests.control.test_twamp_server_machine import request

OPEN, AUTH = TwampMode.UNAUTHENTICATED, TwampMode.AUTHENTICATED
ISC = TwampMode.INDIVIDUAL_SESSION_CONTROL
POLICY = ServerPolicy(modes=OPEN | AUTH, twamp_extensions=EXTENSION_BITS)
UNKNOWN = b"\xee" * 16


def fixed_random():
    """Repeatable octets, fresh for each connection, so replays give the same SIDs."""
    counter = itertools.count()

    def draw(size: int) -> bytes:
        start = next(counter)
        return bytes((start + i) % 256 for i in range(size))

    return draw


class Link:
    """Our client machine and our server machine joined in memory.

    ``piece`` cuts what the client sends into writes of that many octets, ``cuts`` at
    those offsets of the whole stream (counted from the first octet the client sends).
    """

    def __init__(self, mode=OPEN, want=EXTENSION_BITS, policy=POLICY, piece=0, cuts=()):
        self.server = TwampServerMachine(policy, PEER, LOCAL, NOW, fixed_random())
        self.client = TwampClientConnection(fixed_random(), modes=(mode,))
        self.client.want(want)
        self.piece, self.cuts, self.sent = piece, set(cuts), 0
        self.effects: list[object] = []
        self.ports = itertools.count(20000)
        self.pump()

    def to_server(self, data: bytes) -> None:
        bounds = {0, len(data)}
        if self.piece:
            bounds |= set(range(0, len(data), self.piece))
        bounds |= {c - self.sent for c in self.cuts if 0 < c - self.sent < len(data)}
        edges = sorted(bounds)
        for a, b in itertools.pairwise(edges):
            self.server.receive_data(data[a:b], NOW)
            self.pump()
        self.sent += len(data)

    def pump(self) -> None:
        while batch := self.server.effects():
            for effect in batch:
                self.effects.append(effect)
                if isinstance(effect, Send):
                    self.client.receive_data(effect.data)
                elif isinstance(effect, BindTestPort):
                    self.server.port_bound(next(self.ports), NOW)
                elif isinstance(effect, LookUpKey):
                    self.server.key_found(CREDENTIALS, None, NOW)

    def event(self):
        return self.client.next_event()

    def set_up(self) -> ServerStarted:
        event = self.event()
        if isinstance(event, CredentialsNeeded):
            self.to_server(self.client.credentials(CREDENTIALS))
        else:
            self.to_server(event.data)
        started = self.event()
        assert isinstance(started, ServerStarted), started
        return started

    def session(self) -> bytes:
        self.to_server(self.client.request_session(request(receiver_port=0, padding_length=80)))
        event = self.event()
        assert isinstance(event, SessionAccepted), event
        return event.accept.sid

    def of(self, kind):
        return [e for e in self.effects if isinstance(e, kind)]


def conversation(link: Link) -> list[SessionsAcked]:
    """Two sessions started together, one stopped, a third requested and started meanwhile."""
    link.set_up()
    first, second = link.session(), link.session()
    acks = []
    link.to_server(link.client.start_n_sessions((first, second)))
    acks.append(link.event())
    link.to_server(link.client.stop_n_sessions((first,)))
    acks.append(link.event())
    third = link.session()  # RFC 5938: requested while the second one runs
    link.to_server(link.client.start_n_sessions((third, UNKNOWN)))
    acks += [link.event(), link.event()]
    link.to_server(link.client.stop_n_sessions((second, third)))
    acks.append(link.event())
    return acks


@pytest.mark.parametrize("mode", [OPEN, AUTH])
def test_sessions_start_and_stop_one_by_one(mode):
    link = Link(mode)
    acks = conversation(link)
    first, second, third = (e.sid for e in link.of(OpenReflector))
    assert acks == [
        SessionsAcked(Accept.OK, (first, second), True),
        SessionsAcked(Accept.OK, (first,), True),
        SessionsAcked(Accept.OK, (third,), False),  # RFC 5938 §3.3: one ack per Accept
        SessionsAcked(Accept.FAILURE, (UNKNOWN,), True),
        SessionsAcked(Accept.OK, (second, third), True),
    ]
    assert link.of(StartTest) == [StartTest((first, second)), StartTest((third,))]
    timeout = link.server.reflectors[first].timeout_ns
    assert link.of(StopReflectors) == [
        StopReflectors(((first, timeout),)),
        StopReflectors(((second, timeout), (third, timeout))),
    ]
    assert link.server.mode & ISC and not link.server.closed


def test_every_cut_of_the_client_stream_gives_the_same_answers():
    whole = Link()
    expected = conversation(whole)
    length = whole.sent
    answers = b"".join(e.data for e in whole.effects if isinstance(e, Send))
    for cut in range(1, length):
        link = Link(cuts=(cut,))
        assert conversation(link) == expected, cut
        assert b"".join(e.data for e in link.effects if isinstance(e, Send)) == answers


@pytest.mark.parametrize("mode", [OPEN, AUTH])
def test_one_octet_at_a_time(mode):
    assert conversation(Link(mode, piece=1)) == conversation(Link(mode))


def test_the_server_offers_only_the_extensions_enabled():
    # RFC 5938 §3.1, RFC 6038 §4.1, RFC 7750 §2.1: each bit only when the server supports it.
    client = ScriptedClient(TwampServerMachine(ServerPolicy(), PEER, LOCAL, NOW, fixed_random()))
    client.collect()
    assert client.greeting().modes == OPEN
    policy = ServerPolicy(twamp_extensions=int(ISC | TwampMode.REFLECT_DSCP_ECN))
    client = ScriptedClient(TwampServerMachine(policy, PEER, LOCAL, NOW, fixed_random()))
    client.collect()
    assert client.greeting().modes == OPEN | ISC | TwampMode.REFLECT_DSCP_ECN


def test_a_client_uses_only_what_is_offered():
    link = Link(policy=ServerPolicy(modes=OPEN, twamp_extensions=int(ISC)))
    link.set_up()
    assert link.client.agreed == ISC
    assert link.server.mode == OPEN | ISC
    plain = Link(policy=ServerPolicy(modes=OPEN))
    plain.set_up()
    assert plain.client.agreed == 0
    with pytest.raises(RuntimeError, match="without Individual Session Control"):
        plain.client.start_n_sessions((UNKNOWN,))


def test_a_mode_bit_not_offered_is_refused():
    client = ScriptedClient(TwampServerMachine(ServerPolicy(), PEER, LOCAL, NOW, fixed_random()))
    client.collect()
    client.greeting()  # open mode only: then a Mode of open plus ISC, which is not offered
    client.machine.receive_data((int(OPEN | ISC)).to_bytes(4, "big") + bytes(160), NOW)
    client.collect()
    assert client.server_start().accept == Accept.NOT_SUPPORTED


def isc_client() -> ScriptedClient:
    client = ScriptedClient(TwampServerMachine(POLICY, PEER, LOCAL, NOW, fixed_random()))
    client.collect()
    client.greeting()
    client.machine.receive_data(int(OPEN | ISC).to_bytes(4, "big") + bytes(160), NOW)
    client.collect()
    assert client.server_start().accept == Accept.OK
    return client


def test_start_sessions_is_out_of_order_in_this_mode():
    # RFC 5938 §3.1: the Start and Stop commands of RFC 5357 MUST NOT be used.
    client = isc_client()
    client.send(StartSessions().encode())
    client.collect()
    assert client.machine.closed
    assert "out of order" in client.effects[-1].reason


def test_more_sids_than_sessions_accepted_is_refused_before_reading_them():
    client = isc_client()
    head = StartNSessions((UNKNOWN,)).encode()[:12] + (1000).to_bytes(4, "big")
    client.machine.receive_data(head, NOW)  # the SIDs would be 16000 octets: never awaited
    client.collect()
    assert client.machine.closed
    assert "only 0 sessions were accepted" in client.effects[-1].reason


def test_stop_n_for_an_unknown_sid_gets_accept_1(caplog):
    client = isc_client()
    client.send(request(receiver_port=0).encode())
    client.collect()
    client.machine.port_bound(20000, NOW)
    client.collect()
    AcceptSession.decode(client.read(AcceptSession.BODY))
    client.send(StopNSessions((UNKNOWN,)).encode())
    client.collect()
    failed = client.read(32)
    assert (failed[0], failed[1], failed[12:16], failed[16:]) == (
        10,
        Accept.FAILURE,
        (1).to_bytes(4, "big"),
        UNKNOWN,
    )
    assert "unknown, ended or stopped" in caplog.text
    assert not client.machine.closed


def test_a_closed_connection_releases_only_sessions_not_stopped():
    link = Link()
    link.set_up()
    first, second = link.session(), link.session()
    link.to_server(link.client.start_n_sessions((first, second)))
    link.event()
    link.to_server(link.client.stop_n_sessions((first,)))
    link.event()
    link.server.connection_lost(NOW)
    link.pump()
    assert link.of(Release) == [Release((second,))]  # the first finishes its Timeout
    assert isinstance(link.effects[-1], Close)


def test_a_start_n_ack_for_a_sid_not_named_is_a_protocol_error():
    link = Link()
    link.set_up()
    sid = link.session()
    link.client.start_n_sessions((sid,))
    forged = link.server.twamp._tx.seal(StartNAck((UNKNOWN,), 0).encode())
    link.client.receive_data(forged)
    with pytest.raises(Exception, match="not named"):
        link.event()


@pytest.mark.parametrize(
    ("length", "padding", "accept"),
    [(8, 35, Accept.OK), (8, 34, Accept.NOT_SUPPORTED), (0, 27, Accept.OK)],
)
def test_reflect_octets_requests(length, padding, accept, caplog):
    caplog.set_level(logging.INFO)
    client = ScriptedClient(TwampServerMachine(POLICY, PEER, LOCAL, NOW, fixed_random()))
    client.collect()
    client.greeting()
    mode = OPEN | TwampMode.REFLECT_OCTETS | TwampMode.SYMMETRICAL_SIZE
    client.machine.receive_data(int(mode).to_bytes(4, "big") + bytes(160), NOW)
    client.collect()
    assert client.server_start().accept == Accept.OK
    ask = request(padding_length=padding, reflect_octets=0xBEEF, reflect_length=length)
    client.send(ask.encode())
    client.collect()
    if accept == Accept.OK:
        client.machine.port_bound(20000, NOW)
        client.collect()
    answer = AcceptSession.decode(client.read(AcceptSession.BODY), reflect_octets=True)
    assert answer.accept == accept
    if accept == Accept.OK:
        # RFC 6038 §4.3: the octets come back; no Server octets are asked for.
        assert (answer.reflected_octets, answer.server_octets) == (0xBEEF, 0)
        (opened,) = [e for e in client.effects if isinstance(e, OpenReflector)]
        assert opened.test_format == PacketFormat(False, length, True, False)
    else:
        assert "RFC 6038 §4.3" in caplog.text


def test_server_start_is_unchanged_by_the_extensions():
    link = Link()
    started = link.set_up()
    assert isinstance(started.start, ServerStart) and started.start.accept == Accept.OK


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_after_set_up_never_raises(data):
    """Whatever a client sends in this mode, the machine answers or closes; never raises."""
    client = isc_client()
    client.machine.receive_data(StartNSessions((UNKNOWN,)).encode()[:1] + data, NOW)
    client.collect()
    assert client.machine.closed or client.machine.effects() == []
