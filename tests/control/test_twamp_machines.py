"""The sans-I/O TWAMP-Control machines (RFC 5357 §3, RFC 4656 §3) driven in memory and with the
perfSONAR transcripts."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otwamp.control.events import (
    NEED_DATA,
    SessionRequested,
    SetUpReceived,
    StartRequested,
    StopRequested,
    UnsupportedCommand,
)
from otwamp.control.framing import Framer
from otwamp.control.twamp_server import ServerState, TwampServerConnection
from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.security.control import (
    OpenControlSender,
    SecureControlReceiver,
    SecureControlSender,
)
from otwamp.wire.registry import Accept, TwampMode
from otwamp.wire.setup import ServerGreeting, ServerStart, SetUpResponse, encode_key_id
from otwamp.wire.twamp_control import (
    AcceptSession,
    RequestTwSession,
    StartAck,
    StartSessions,
    StopSessions,
)
from tests.control.conftest import (
    CLIENT_IV,
    CLIENT_TO_SERVER,
    KEYS,
    REQUEST,
    SERVER_IV,
    SERVER_TO_CLIENT,
    SID,
    START_TIME,
    Recorded,
    drain,
    split,
)

GREETING = ServerGreeting(modes=0x0F, challenge=b"C" * 16, salt=b"S" * 16, count=2048)
ACCEPT = AcceptSession(accept=Accept.OK, port=18792, sid=SID)
ZERO_HMAC = bytes(16)

OPEN_VECTORS = ("twamp-O", "twamp-O-pad0")
SECURED_VECTORS = ("twamp-A", "twamp-E", "twamp-M", "twamp-A-pad0", "twamp-E-pad0", "twamp-M-pad0")


class WireClient:
    """The client's side written from the codecs: seals what it sends, opens what it reads."""

    def __init__(self, secured: bool) -> None:
        self.secured = secured
        self.tx = SecureControlSender(KEYS, CLIENT_IV) if secured else OpenControlSender()
        self.framer = Framer()

    @staticmethod
    def setup(response: SetUpResponse) -> bytes:
        return response.encode()  # Set-Up-Response is never encrypted (RFC 4656 §3.1)

    def request_session(self, request: RequestTwSession) -> bytes:
        return self.tx.seal(request.encode())

    def start_sessions(self) -> bytes:
        return self.tx.seal(StartSessions().encode())

    def stop_sessions(self, accept: int, count: int) -> bytes:
        return self.tx.seal(StopSessions(accept, count).encode())

    def server_start(self, wire: bytes) -> ServerStart:
        clear = ServerStart.CLEAR_SIZE
        head = ServerStart.decode(wire[:clear] + bytes(ServerStart.SIZE - clear))
        if head.accept != Accept.OK or not self.secured:
            return ServerStart.decode(wire)
        self.framer.rx = SecureControlReceiver(KEYS, head.server_iv)
        return ServerStart.decode(wire[:clear] + self.framer.rx.decrypt(wire[clear:]))

    def read(self, wire: bytes, *kinds: type) -> list[object]:
        """Decode the server's answers of these kinds, in order."""
        self.framer.feed(wire)
        return [kind.decode(self.framer.part(kind.BODY)) for kind in kinds]


class Pair:
    """A server machine and a client written from the codecs, in open or a secured mode."""

    def __init__(self, secured: bool = False) -> None:
        self.secured = secured
        self.client = WireClient(secured)
        self.server = TwampServerConnection()

    def to_server(self, data: bytes) -> list[object]:
        self.server.receive_data(data)
        events = []
        while (event := self.server.next_event()) is not NEED_DATA:
            events.append(event)
        return events

    def greet(self) -> None:
        assert ServerGreeting.decode(self.server.greet(GREETING)) == GREETING

    def set_up(self) -> None:
        """Greeting, Set-Up-Response and Server-Start with Accept 0."""
        self.greet()
        mode = TwampMode.AUTHENTICATED if self.secured else TwampMode.UNAUTHENTICATED
        response = SetUpResponse(
            mode=mode,
            key_id=encode_key_id("test") if self.secured else bytes(80),
            token=bytes(range(64)) if self.secured else bytes(64),
            client_iv=CLIENT_IV if self.secured else bytes(16),
        )
        wire = self.client.setup(response)
        assert self.to_server(wire) == [SetUpReceived(response)]
        assert self.server.state is ServerState.SETTING_UP
        start = ServerStart(Accept.OK, SERVER_IV if self.secured else bytes(16), START_TIME)
        if self.secured:
            wire = self.server.start(
                start,
                SecureControlSender(KEYS, SERVER_IV),
                SecureControlReceiver(KEYS, response.client_iv),
            )
            # Octets 0-31 in clear, Start-Time and MBZ encrypted (RFC 4656 §3.1).
            assert wire[:32] == start.encode()[:32]
            assert wire[32:] != start.encode()[32:]
        else:
            wire = self.server.start(start)
            assert wire == start.encode()
        assert self.client.server_start(wire) == start
        assert self.server.state is ServerState.AWAIT_COMMAND
        self.server_start_wire = wire

    def request(self, request: RequestTwSession = REQUEST, accept: AcceptSession = ACCEPT):
        wire = self.client.request_session(request)
        assert len(wire) == 112
        if self.secured:
            assert wire[:96] != request.encode()
        else:
            assert wire == request.encode() + ZERO_HMAC
        assert self.to_server(wire) == [SessionRequested(request)]
        assert self.server.state is ServerState.ANSWERING
        answer = self.server.accept_session(accept)
        assert len(answer) == 48
        assert self.client.read(answer, AcceptSession) == [accept]

    def start(self, accept: int = Accept.OK):
        wire = self.client.start_sessions()
        assert len(wire) == 32
        assert self.to_server(wire) == [StartRequested()]
        answer = self.server.start_ack(accept)
        assert self.client.read(answer, StartAck) == [StartAck(accept)]

    def stop(self, count: int = 1):
        wire = self.client.stop_sessions(Accept.OK, count)
        assert len(wire) == 32
        assert self.to_server(wire) == [StopRequested(StopSessions(Accept.OK, count))]


# Whole exchanges.


@pytest.mark.parametrize("secured", [False, True], ids=["open", "secured"])
def test_whole_exchange(secured):
    pair = Pair(secured)
    pair.set_up()
    pair.request()
    assert pair.server.sessions_accepted == 1
    pair.start()
    assert pair.server.state is ServerState.TESTING
    pair.stop(1)
    assert pair.server.state is ServerState.AWAIT_COMMAND
    assert pair.server.sessions_accepted == 0
    # The connection carries on: a second round (RFC 4656 §3.4).
    pair.request()
    pair.request(accept=AcceptSession(Accept.OK, 18793, bytes(range(16))))
    assert pair.server.sessions_accepted == 2
    pair.start()
    pair.stop(2)
    assert pair.server.state is ServerState.AWAIT_COMMAND


def test_open_mode_ignores_hmac_field():
    # RFC 4656 §3.2: in open mode the HMAC field is unused, MBZ semantics: ignored on receipt.
    pair = Pair()
    pair.set_up()
    assert pair.to_server(REQUEST.encode() + b"\xff" * 16) == [SessionRequested(REQUEST)]
    answer = pair.server.accept_session(ACCEPT)
    assert answer == ACCEPT.encode() + ZERO_HMAC


def test_secured_mode_refuses_unauthenticated_bytes_from_open_sender():
    # Plaintext decrypts to noise: never a SessionRequested. With these keys and IVs the
    # first decrypted octet names no command, so the server refuses it and closes.
    pair = Pair(secured=True)
    pair.set_up()
    pair.server.receive_data(REQUEST.encode() + ZERO_HMAC)
    event = pair.server.next_event()
    assert isinstance(event, UnsupportedCommand)
    assert event.command not in (2, 3, 5)
    assert pair.server.state is ServerState.CLOSED
    with pytest.raises(ProtocolError):
        pair.server.next_event()


@pytest.mark.parametrize("secured", [False, True], ids=["open", "secured"])
def test_pipelined_commands_wait_for_the_answer(secured):
    # The client may send Start-Sessions before Accept-Session arrives; the server keeps it
    # buffered while a command awaits its answer (state ANSWERING).
    pair = Pair(secured)
    pair.set_up()
    wire = pair.client.request_session(REQUEST) + pair.client.start_sessions()
    assert pair.to_server(wire) == [SessionRequested(REQUEST)]
    assert pair.server.next_event() is NEED_DATA
    answers = pair.server.accept_session(ACCEPT)
    assert pair.to_server(b"") == [StartRequested()]
    answers += pair.server.start_ack(Accept.OK)
    assert pair.client.read(answers, AcceptSession, StartAck) == [ACCEPT, StartAck(0)]


@pytest.mark.parametrize("secured", [False, True], ids=["open", "secured"])
def test_set_up_and_request_in_one_segment(secured):
    # A Request-TW-Session arriving with Set-Up-Response waits until Server-Start is sent,
    # so the server decodes it with the channel Server-Start installs.
    pair = Pair(secured)
    pair.greet()
    response = SetUpResponse(TwampMode.AUTHENTICATED, encode_key_id("k"), bytes(64), CLIENT_IV)
    if not secured:
        response = SetUpResponse(TwampMode.UNAUTHENTICATED)
    wire = pair.client.setup(response) + pair.client.request_session(REQUEST)
    events = pair.to_server(wire)
    assert len(events) == 1
    assert isinstance(events[0], SetUpReceived)
    assert pair.server.next_event() is NEED_DATA
    channels = (
        (SecureControlSender(KEYS, SERVER_IV), SecureControlReceiver(KEYS, CLIENT_IV))
        if secured
        else (None, None)
    )
    start = pair.server.start(ServerStart(0, SERVER_IV, START_TIME), *channels)
    assert pair.to_server(b"") == [SessionRequested(REQUEST)]
    assert pair.client.server_start(start).start_time == START_TIME


def test_start_sessions_with_no_session_is_accepted_by_the_state_table():
    # The code's state table allows Start-Sessions in AWAIT_COMMAND whether or not a session
    # was accepted (RFC 4656 §3.7 does not forbid it); only Stop-Sessions needs running sessions.
    pair = Pair()
    pair.set_up()
    assert pair.to_server(pair.client.start_sessions()) == [StartRequested()]
    assert pair.server.state is ServerState.ANSWERING


def test_refused_session_is_not_counted():
    pair = Pair()
    pair.set_up()
    pair.request(accept=AcceptSession(Accept.TEMPORARY_RESOURCE_LIMITATION))
    assert pair.server.sessions_accepted == 0
    pair.request()
    assert pair.server.sessions_accepted == 1


def test_refused_start_keeps_the_server_out_of_testing():
    pair = Pair()
    pair.set_up()
    pair.request()
    pair.start(accept=Accept.FAILURE)
    assert pair.server.state is ServerState.AWAIT_COMMAND
    # Still not testing: a Stop-Sessions is out of order.
    with pytest.raises(ProtocolError):
        pair.to_server(pair.client.stop_sessions(0, 1))


# Negative paths.


@pytest.mark.parametrize("secured", [False, True], ids=["open", "secured"])
def test_stop_before_start_is_out_of_order(secured):
    pair = Pair(secured)
    pair.set_up()
    pair.request()
    with pytest.raises(ProtocolError) as info:
        pair.to_server(pair.client.stop_sessions(0, 1))
    assert info.value.field == "Command Number"
    assert info.value.section == "RFC 4656 §3.4"


@pytest.mark.parametrize("secured", [False, True], ids=["open", "secured"])
def test_request_while_testing_is_out_of_order(secured):
    pair = Pair(secured)
    pair.set_up()
    pair.request()
    pair.start()
    with pytest.raises(ProtocolError) as info:
        pair.to_server(pair.client.request_session(REQUEST))
    assert info.value.field == "Command Number"
    assert "out of order" in str(info.value)


def test_start_while_testing_is_out_of_order():
    pair = Pair()
    pair.set_up()
    pair.request()
    pair.start()
    with pytest.raises(ProtocolError):
        pair.to_server(pair.client.start_sessions())


@pytest.mark.parametrize("secured", [False, True], ids=["open", "secured"])
@pytest.mark.parametrize("count", [0, 2, 0xFFFFFFFF])
def test_stop_with_wrong_number_of_sessions(secured, count):
    pair = Pair(secured)
    pair.set_up()
    pair.request()
    pair.start()
    with pytest.raises(ProtocolError) as info:
        pair.to_server(pair.client.stop_sessions(0, count))
    assert info.value.section == "RFC 5357 §3.8"
    assert info.value.field == "Stop-Sessions"


@pytest.mark.parametrize("command", [0, 1, 4, 6, 7, 200])
def test_unknown_command_gets_accept_3(command):
    # RFC 5357 §3.5: an unexpected Command Number is answered with Accept-Session, Accept 3.
    pair = Pair()
    pair.set_up()
    events = pair.to_server(bytes([command]) + bytes(15))
    assert events == [UnsupportedCommand(command)]
    assert pair.server.state is ServerState.CLOSED
    refusal = pair.server.refusal_for_unsupported()
    assert refusal == b"\x03" + bytes(31) + ZERO_HMAC
    assert AcceptSession.decode(refusal[:32]) == AcceptSession(Accept.NOT_SUPPORTED)


def test_unknown_command_while_testing():
    pair = Pair()
    pair.set_up()
    pair.request()
    pair.start()
    assert pair.to_server(b"\x06" + bytes(15)) == [UnsupportedCommand(6)]


def test_unknown_command_secured_refusal_is_sealed():
    pair = Pair(secured=True)
    pair.set_up()
    client_tx = SecureControlSender(KEYS, CLIENT_IV)  # the client's chain, first message
    assert pair.to_server(client_tx.encrypt(b"\x09" + bytes(15))) == [UnsupportedCommand(9)]
    refusal = pair.server.refusal_for_unsupported()
    # The client's receive chain: the Server-Start block, then the refusal with its HMAC.
    rx = SecureControlReceiver(KEYS, SERVER_IV)
    rx.decrypt(pair.server_start_wire[32:])
    assert AcceptSession.decode(rx.open(refusal)) == AcceptSession(Accept.NOT_SUPPORTED)


def test_corrupted_hmac_from_client():
    pair = Pair(secured=True)
    pair.set_up()
    wire = bytearray(pair.client.request_session(REQUEST))
    wire[-1] ^= 0x01
    with pytest.raises(AuthenticationError) as info:
        pair.to_server(bytes(wire))
    assert info.value.field == "HMAC"


def test_corrupted_body_from_client():
    pair = Pair(secured=True)
    pair.set_up()
    wire = bytearray(pair.client.request_session(REQUEST))
    wire[40] ^= 0x80  # inside the encrypted body: the HMAC no longer matches
    with pytest.raises(AuthenticationError):
        pair.to_server(bytes(wire))


@pytest.mark.parametrize("accept", [1, 2, 3, 6])
def test_server_start_refusal_closes_both(accept):
    pair = Pair()
    pair.greet()
    pair.to_server(pair.client.setup(SetUpResponse(TwampMode.UNAUTHENTICATED)))
    refusal = ServerStart(accept, bytes(16), START_TIME)
    wire = pair.server.start(refusal)
    assert wire == refusal.encode()
    assert pair.server.state is ServerState.CLOSED
    assert pair.client.server_start(wire).accept == accept
    with pytest.raises(ProtocolError):
        pair.to_server(b"\x00" * 48)


def test_modes_zero_greeting_closes_the_server():
    # RFC 4656 §3.1: Modes 0 means the server will not talk to this client.
    server = TwampServerConnection()
    wire = server.greet(ServerGreeting(0, b"C" * 16, b"S" * 16, 1024))
    assert wire[12:16] == bytes(4)
    assert server.state is ServerState.CLOSED
    assert server.next_event() is NEED_DATA
    server.receive_data(SetUpResponse(TwampMode.UNAUTHENTICATED).encode())
    with pytest.raises(ProtocolError):
        server.next_event()


def test_client_octets_before_the_greeting():
    server = TwampServerConnection()
    server.receive_data(b"\x00")
    with pytest.raises(ProtocolError) as info:
        server.next_event()
    assert info.value.field == "TWAMP-Control"


def test_bad_request_body_from_client():
    pair = Pair()
    pair.set_up()
    body = bytearray(REQUEST.encode())
    body[1] = 5  # IPVN 5
    with pytest.raises(ProtocolError) as info:
        pair.to_server(bytes(body) + ZERO_HMAC)
    assert info.value.field == "IPVN"


def test_answers_without_a_question_are_programming_errors():
    pair = Pair()
    pair.set_up()
    with pytest.raises(RuntimeError):
        pair.server.accept_session(ACCEPT)
    with pytest.raises(RuntimeError):
        pair.server.start_ack(0)
    pair.to_server(pair.client.request_session(REQUEST))
    with pytest.raises(RuntimeError):
        pair.server.start_ack(0)  # Request-TW-Session wants an Accept-Session
    with pytest.raises(RuntimeError):
        pair.server.greet(GREETING)


def test_partial_messages_need_data():
    pair = Pair()
    pair.greet()
    wire = pair.client.setup(SetUpResponse(TwampMode.UNAUTHENTICATED))
    pair.server.receive_data(wire[:163])
    assert pair.server.next_event() is NEED_DATA
    pair.server.receive_data(wire[163:])
    assert isinstance(pair.server.next_event(), SetUpReceived)


# The perfSONAR transcripts replayed through the machines.


def replay_server(rec: Recorded, chunks: list[bytes]) -> tuple[list[object], bytes]:
    """Feed the recorded client stream to a server answering with the recorded values."""
    server = TwampServerConnection()
    sent = server.greet(rec.greeting())
    tx, rx = rec.server_channels()

    def answer(event):
        if isinstance(event, SetUpReceived):
            return server.start(rec.server_start(), tx, rx)
        if isinstance(event, SessionRequested):
            return server.accept_session(rec.accept())
        if isinstance(event, StartRequested):
            return server.start_ack(rec.start_ack().accept)
        assert isinstance(event, StopRequested)
        return b""

    events = []
    for chunk in chunks:
        server.receive_data(chunk)
        more, out = drain(server, answer)
        events += more
        sent += out
    assert server.state is ServerState.AWAIT_COMMAND
    return events, sent


def expected_server_events(rec: Recorded) -> list[object]:
    return [
        SetUpReceived(rec.setup()),
        SessionRequested(rec.request()),
        StartRequested(),
        StopRequested(rec.stop()),
    ]


ALL_VECTORS = OPEN_VECTORS + SECURED_VECTORS


@pytest.mark.parametrize("name", ALL_VECTORS)
def test_server_replays_recorded_client_stream(name):
    rec = Recorded(name)
    events, sent = replay_server(rec, [rec.stream(CLIENT_TO_SERVER)])
    assert events == expected_server_events(rec)
    # Given the recorded field values (and, when secured, keys and IVs) the server's answers
    # are the recorded server stream, byte for byte, HMACs included.
    assert sent == rec.stream(SERVER_TO_CLIENT)


def test_open_vector_values():
    rec = Recorded("twamp-O")
    assert rec.stop() == StopSessions(0, 1)
    assert rec.accept().port == 18792
    assert rec.request().padding_length == 27
    assert len(rec.stream(CLIENT_TO_SERVER)) == 164 + 112 + 32 + 32
    assert len(rec.stream(SERVER_TO_CLIENT)) == 64 + 48 + 48 + 32


chunk_sizes = st.lists(st.integers(1, 80), max_size=40)


@pytest.mark.parametrize("name", ["twamp-O", "twamp-A", "twamp-E", "twamp-M"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=chunk_sizes)
def test_server_replay_in_random_chunks(name, sizes):
    rec = Recorded(name)
    events, sent = replay_server(rec, split(rec.stream(CLIENT_TO_SERVER), sizes))
    assert events == expected_server_events(rec)
    assert sent == rec.stream(SERVER_TO_CLIENT)


@pytest.mark.parametrize("name", ["twamp-A", "twamp-E"])
def test_secured_replay_with_secure_receivers_only(name):
    # Only SecureControlReceiver keyed from derived_for_checking, with Client-IV from the
    # Set-Up-Response and Server-IV from the Server-Start: every HMAC must verify.
    rec = Recorded(name)
    server = TwampServerConnection()
    server.greet(rec.greeting())
    server.receive_data(rec.stream(CLIENT_TO_SERVER))
    setup = server.next_event()
    assert isinstance(setup, SetUpReceived)
    client_iv = setup.response.client_iv
    server.start(rec.server_start(), rx=SecureControlReceiver(rec.keys, client_iv))
    assert server.next_event() == SessionRequested(rec.request())
    server.accept_session(rec.accept())
    assert server.next_event() == StartRequested()
    server.start_ack(0)
    assert server.next_event() == StopRequested(StopSessions(0, 1))
    assert server.next_event() is NEED_DATA


@pytest.mark.parametrize("name", ["twamp-A", "twamp-E", "twamp-M"])
@pytest.mark.parametrize("direction", [CLIENT_TO_SERVER])
def test_secured_replay_with_a_flipped_octet_fails_authentication(name, direction):
    rec = Recorded(name)
    data = bytearray(rec.stream(direction))
    # Flip one octet of the first HMAC: Request-TW-Session's (client octets 260-275) or
    # Accept-Session's (server octets 144-159).
    data[270 if direction == CLIENT_TO_SERVER else 150] ^= 0x01
    with pytest.raises(AuthenticationError):
        replay_server(rec, [bytes(data)])


@pytest.mark.parametrize("name", ["twamp-A", "twamp-E"])
def test_secured_replay_with_wrong_keys_fails(name):
    rec = Recorded(name)
    server = TwampServerConnection()
    server.greet(rec.greeting())
    server.receive_data(rec.stream(CLIENT_TO_SERVER))
    server.next_event()
    server.start(rec.server_start(), rx=SecureControlReceiver(KEYS, rec.setup().client_iv))
    # Decrypted under the wrong key, the first block names no command (35 and 27 here):
    # the request is refused, never reported as a SessionRequested.
    event = server.next_event()
    assert isinstance(event, UnsupportedCommand)
    assert event.command not in (2, 3, 5)
    assert server.state is ServerState.CLOSED


def test_secured_vectors_recorded_values():
    rec = Recorded("twamp-A")
    assert rec.secured
    assert rec.setup().mode == TwampMode.AUTHENTICATED
    assert rec.setup().client_iv.hex() == "956d4ead42af1ecf7421fe844f196818"
    assert rec.server_start().server_iv.hex() == "6b576e233125f548157127ea0d0d4600"
    assert Recorded("twamp-E").setup().mode == TwampMode.ENCRYPTED
    assert Recorded("twamp-M").setup().mode == TwampMode.MIXED
    assert not Recorded("twamp-O").secured
