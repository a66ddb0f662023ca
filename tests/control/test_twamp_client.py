"""The sans-I/O TWAMP-Control client (RFC 5357 §3, RFC 4656 §3.1) with a fixed random source.

The machine decides connection set-up: mode, Count check, key request, the
IKEv2 Mode bit (D3) and what each Accept value means. It is driven here with
octets built by the wire codecs and with the perfSONAR transcripts.
"""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otwamp.control.client_base import ClientState
from otwamp.control.effects import Send
from otwamp.control.events import (
    NEED_DATA,
    ClientEvent,
    CredentialsNeeded,
    Refused,
    ServerStarted,
    SessionAccepted,
    StartAcked,
)
from otwamp.control.twamp_client import TwampClientConnection
from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.keys.source import Credentials, KeySourceKind
from otwamp.security.control import SecureControlReceiver, SecureControlSender
from otwamp.wire.registry import Accept, TwampMode
from otwamp.wire.setup import ServerGreeting, ServerStart, SetUpResponse, encode_key_id
from otwamp.wire.twamp_control import AcceptSession, RequestTwSession, StartAck, StopSessions
from tests.control.client_support import CREDENTIALS, draws, recorded_mode, recorded_random
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
    split,
)

OPEN, A, E, M = (
    TwampMode.UNAUTHENTICATED,
    TwampMode.AUTHENTICATED,
    TwampMode.ENCRYPTED,
    TwampMode.MIXED,
)
GREETING = ServerGreeting(modes=0x0F, challenge=b"C" * 16, salt=b"S" * 16, count=1024)
ACCEPT = AcceptSession(Accept.OK, 18792, SID)
ALL_VECTORS = (
    "twamp-O",
    "twamp-O-pad0",
    "twamp-A",
    "twamp-E",
    "twamp-M",
    "twamp-A-pad0",
    "twamp-E-pad0",
    "twamp-M-pad0",
)


def fixed_random():
    return draws(KEYS.aes_key, KEYS.hmac_key, CLIENT_IV)


def events(client: TwampClientConnection, data: bytes = b"") -> list[ClientEvent]:
    client.receive_data(data)
    out = []
    while (event := client.next_event()) is not NEED_DATA:
        out.append(event)
    return out


class Server:
    """The server's side of the wire, built from the codecs and channels directly."""

    def __init__(self, secured: bool) -> None:
        self.tx = SecureControlSender(KEYS, SERVER_IV) if secured else None

    def start(self, accept: int = Accept.OK) -> bytes:
        wire = ServerStart(accept, SERVER_IV, START_TIME).encode()
        if self.tx is None or accept != Accept.OK:
            return wire
        return wire[:32] + self.tx.encrypt(wire[32:])  # Start-Time block encrypted (§3.1)

    def answer(self, body: bytes) -> bytes:
        return body + bytes(16) if self.tx is None else self.tx.seal(body)


def connected(mode: TwampMode = OPEN) -> tuple[TwampClientConnection, Server]:
    """A client past Server-Start in ``mode`` (the server offers every mode)."""
    client = TwampClientConnection(fixed_random(), (mode,))
    (first,) = events(client, GREETING.encode())
    if mode is not OPEN:
        assert first == CredentialsNeeded(mode, derived_offered=False)
        client.credentials(CREDENTIALS)
    server = Server(mode is not OPEN)
    (started,) = events(client, server.start())
    assert isinstance(started, ServerStarted)
    assert client.state is ClientState.IDLE
    return client, server


# Set-up in every mode.


def test_open_mode_sends_the_set_up_response_at_once():
    client = TwampClientConnection(draws(), (OPEN, A))
    (event,) = events(client, ServerGreeting(0x01, bytes(16), bytes(16), 1024).encode())
    assert event == Send(SetUpResponse(int(OPEN)).encode())
    assert client.state is ClientState.AWAIT_SERVER_START
    (started,) = events(client, ServerStart(Accept.OK, bytes(16), START_TIME).encode())
    assert isinstance(started, ServerStarted)
    assert started.start.start_time == START_TIME
    security = started.security
    assert (security.mode, security.mode_word, security.keys) == (OPEN, 1, None)
    assert (security.key_source, security.ike_spis) == ("none", None)


@pytest.mark.parametrize("mode", [A, E, M])
def test_secured_modes_ask_for_a_key_and_key_both_channels(mode):
    client = TwampClientConnection(fixed_random(), (OPEN, mode))
    assert events(client, GREETING.encode()) == [CredentialsNeeded(mode, False)]
    assert client.state is ClientState.AWAIT_CREDENTIALS
    wire = client.credentials(CREDENTIALS)
    response = SetUpResponse.decode(wire)
    assert (response.mode, response.key_id, response.client_iv) == (
        mode,
        encode_key_id("test"),
        CLIENT_IV,
    )
    server = Server(secured=True)
    (started,) = events(client, server.start())
    assert started.security.keys == KEYS
    assert (started.security.key_source, started.security.label) == ("passphrase", "test")
    # Commands are sealed with the Client-IV chain; answers open with the Server-IV chain.
    rx = SecureControlReceiver(KEYS, CLIENT_IV)
    assert RequestTwSession.decode(rx.open(client.request_session(REQUEST))) == REQUEST
    assert events(client, server.answer(ACCEPT.encode())) == [SessionAccepted(ACCEPT)]


def test_the_strongest_common_mode_is_chosen():
    client = TwampClientConnection(fixed_random(), (OPEN, A, E, M))
    assert events(client, ServerGreeting(0x0B, bytes(16), bytes(16), 1024).encode()) == [
        CredentialsNeeded(A, False)
    ]


@pytest.mark.parametrize(
    ("source", "bit"), [(KeySourceKind.IKEV2, 0x80), (KeySourceKind.PASSPHRASE, 0)]
)
def test_the_ikev2_mode_bit_follows_the_key_used(source, bit):
    # RFC 7717 §5.2, D3: the bit says the key is IKEv2-derived, so it follows the key, not
    # merely the greeting's offer.
    client = TwampClientConnection(fixed_random(), (A,))
    greeting = ServerGreeting(0x82, bytes(16), bytes(16), 1024)
    assert events(client, greeting.encode()) == [CredentialsNeeded(A, derived_offered=True)]
    credentials = Credentials(bytes(80), b"k" * 32, source, "SPIi=01 SPIr=02")
    assert SetUpResponse.decode(client.credentials(credentials)).mode == int(A) | bit
    (started,) = events(client, Server(True).start())
    assert started.security.mode_word == int(A) | bit
    assert started.security.ike_spis == (("01", "02") if bit else None)


# Refusals.


def test_modes_zero_is_a_refusal():
    client = TwampClientConnection(draws(), (OPEN,))
    (event,) = events(client, ServerGreeting(0, bytes(16), bytes(16), 1024).encode())
    assert event == Refused("the server refused the connection (Server-Greeting with Modes 0)")
    assert client.state is ClientState.CLOSED
    with pytest.raises(ProtocolError):
        events(client, b"\x00")


def test_no_common_mode():
    client = TwampClientConnection(draws(), (A, E))
    (event,) = events(client, ServerGreeting(0x01, bytes(16), bytes(16), 1024).encode())
    assert event.reason == (
        "no common mode: the server offers open; this client allows authenticated, encrypted"
    )
    assert client.state is ClientState.CLOSED


@pytest.mark.parametrize(
    ("count", "words"),
    [
        (512, "512 is not a power of 2 of at least 1024"),
        (3072, "3072 is not a power of 2 of at least 1024"),
        (65536, "65536 exceeds this client's limit of 32768"),
    ],
)
def test_count_out_of_range_is_refused_before_any_key_is_asked(count, words):
    client = TwampClientConnection(draws(), (A,))
    (event,) = events(client, ServerGreeting(0x02, bytes(16), bytes(16), count).encode())
    assert isinstance(event, Refused)
    assert event.reason.startswith(f"the server's PBKDF2 Count: {words}")
    assert client.state is ClientState.CLOSED


def test_a_higher_count_limit_allows_it():
    client = TwampClientConnection(draws(), (A,), max_count=65536)
    greeting = ServerGreeting(0x02, bytes(16), bytes(16), 65536)
    assert events(client, greeting.encode()) == [CredentialsNeeded(A, False)]


def test_accept_1_with_credentials_names_the_key():
    client = TwampClientConnection(fixed_random(), (E,))
    events(client, GREETING.encode())
    client.credentials(CREDENTIALS)
    (event,) = events(client, ServerStart(Accept.FAILURE, SERVER_IV, 5).encode())
    assert event == Refused(
        "the server rejected the authentication (Accept 1): "
        "unknown KeyID 'test' or wrong shared secret",
        1,
    )
    assert client.state is ClientState.CLOSED


@pytest.mark.parametrize("accept", [2, 3, 6, 200])
def test_server_start_refusals_say_what_the_accept_means(accept):
    client = TwampClientConnection(draws(), (OPEN,))
    events(client, GREETING.encode())
    (event,) = events(client, ServerStart(accept, bytes(16), 5).encode())
    meaning = Accept.interpret(accept).meaning
    assert event == Refused(
        f"the server refused the connection set-up: Accept {accept} ({meaning})", accept
    )
    assert client.state is ClientState.CLOSED
    with pytest.raises(ProtocolError):
        events(client, bytes(48))


def test_refused_request_and_start_leave_the_connection_usable():
    client, server = connected()
    client.request_session(REQUEST)
    (event,) = events(
        client, server.answer(AcceptSession(Accept.TEMPORARY_RESOURCE_LIMITATION).encode())
    )
    assert event.reason == (
        "the server refused Request-TW-Session: Accept 5 (temporary resource limitations)"
    )
    assert client.state is ClientState.IDLE
    client.start_sessions()
    (event,) = events(client, server.answer(StartAck(Accept.FAILURE).encode()))
    assert (
        event.reason == "the server refused Start-Sessions: Accept 1 (failure, reason unspecified)"
    )
    assert client.state is ClientState.IDLE


# A whole exchange and the order of things.


@pytest.mark.parametrize("mode", [OPEN, A])
def test_two_rounds_on_one_connection(mode):
    client, server = connected(mode)
    for _ in range(2):
        client.request_session(REQUEST)
        assert events(client, server.answer(ACCEPT.encode())) == [SessionAccepted(ACCEPT)]
        client.start_sessions()
        assert events(client, server.answer(StartAck(0).encode())) == [StartAcked(StartAck(0))]
        assert client.state is ClientState.TESTING
        client.stop_sessions(Accept.OK, 1)
        assert client.state is ClientState.IDLE


def test_open_mode_commands_are_plaintext_with_zero_hmacs():
    client, _ = connected()
    assert client.start_sessions() == b"\x02" + bytes(31)
    client, server = connected()
    client.request_session(REQUEST)
    events(client, server.answer(ACCEPT.encode()))
    client.start_sessions()
    events(client, server.answer(StartAck(0).encode()))
    assert client.stop_sessions(0, 1) == StopSessions(0, 1).encode() + bytes(16)


@pytest.mark.parametrize("state", ["idle", "testing"])
def test_octets_nobody_asked_for_are_a_protocol_error(state):
    client, server = connected()
    if state == "testing":
        client.start_sessions()
        events(client, server.answer(StartAck(0).encode()))
    with pytest.raises(ProtocolError, match="did not ask for"):
        events(client, server.answer(ACCEPT.encode()))


def test_commands_out_of_order_are_programming_errors():
    client = TwampClientConnection(draws(), (OPEN,))
    with pytest.raises(RuntimeError):
        client.request_session(REQUEST)  # before set-up
    with pytest.raises(RuntimeError):
        client.credentials(CREDENTIALS)  # not asked for
    client, _ = connected()
    with pytest.raises(RuntimeError):
        client.stop_sessions(0, 1)  # nothing started
    client.request_session(REQUEST)
    with pytest.raises(RuntimeError):
        client.start_sessions()  # the Accept-Session is still due
    assert client.state is ClientState.AWAIT_ACCEPT


def test_partial_messages_need_data():
    client = TwampClientConnection(draws(), (OPEN,))
    wire = GREETING.encode()
    assert events(client, wire[:63]) == []
    assert client.state is ClientState.AWAIT_GREETING
    assert len(events(client, wire[63:])) == 1


def test_corrupted_hmac_from_server():
    client, server = connected(A)
    client.request_session(REQUEST)
    answer = bytearray(server.answer(ACCEPT.encode()))
    answer[40] ^= 0x10
    with pytest.raises(AuthenticationError):
        events(client, bytes(answer))


def test_corrupted_start_time_block_breaks_the_first_server_hmac():
    # DESIGN D13: the first Accept-Session HMAC covers the encrypted Server-Start block.
    client = TwampClientConnection(fixed_random(), (A,))
    events(client, GREETING.encode())
    client.credentials(CREDENTIALS)
    server = Server(secured=True)
    start = bytearray(server.start())
    start[40] ^= 0x01
    events(client, bytes(start))
    client.request_session(REQUEST)
    with pytest.raises(AuthenticationError):
        events(client, server.answer(ACCEPT.encode()))


# The perfSONAR transcripts: given perfSONAR's random draws, our decisions send its octets.


def replay(name: str, chunks: list[bytes]) -> tuple[list[type], bytes]:
    """Feed the recorded server stream; answer as the recorded client did."""
    rec = Recorded(name)
    client = TwampClientConnection(recorded_random(name, rec.setup()), recorded_mode(name))
    kinds, sent = [], b""
    for chunk in chunks:
        client.receive_data(chunk)
        while (event := client.next_event()) is not NEED_DATA:  # each answered at once
            kinds.append(type(event))
            if isinstance(event, Send):
                sent += event.data
            elif isinstance(event, CredentialsNeeded):
                sent += client.credentials(CREDENTIALS)
            elif isinstance(event, ServerStarted):
                assert event.start == rec.server_start()
                sent += client.request_session(rec.request())
            elif isinstance(event, SessionAccepted):
                assert event.accept == rec.accept()
                sent += client.start_sessions()
            else:
                assert event == StartAcked(rec.start_ack())
                stop = rec.stop()
                sent += client.stop_sessions(stop.accept, stop.num_sessions)
    assert client.state is ClientState.IDLE
    return kinds, sent


def expected_kinds(name: str) -> list[type]:
    first = CredentialsNeeded if Recorded(name).secured else Send
    return [first, ServerStarted, SessionAccepted, StartAcked]


@pytest.mark.parametrize("name", ALL_VECTORS)
def test_client_replays_recorded_server_stream(name):
    rec = Recorded(name)
    kinds, sent = replay(name, [rec.stream(SERVER_TO_CLIENT)])
    assert kinds == expected_kinds(name)
    assert sent == rec.stream(CLIENT_TO_SERVER)


@pytest.mark.parametrize("name", ["twamp-O", "twamp-A", "twamp-E", "twamp-M"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(1, 80), max_size=40))
def test_client_replay_in_random_chunks(name, sizes):
    rec = Recorded(name)
    kinds, sent = replay(name, split(rec.stream(SERVER_TO_CLIENT), sizes))
    assert kinds == expected_kinds(name)
    assert sent == rec.stream(CLIENT_TO_SERVER)


@pytest.mark.parametrize("name", ["twamp-O", "twamp-A"])
def test_client_replay_one_octet_at_a_time(name):
    rec = Recorded(name)
    stream = rec.stream(SERVER_TO_CLIENT)
    kinds, sent = replay(name, [stream[i : i + 1] for i in range(len(stream))])
    assert kinds == expected_kinds(name)
    assert sent == rec.stream(CLIENT_TO_SERVER)


@pytest.mark.parametrize("name", ["twamp-A", "twamp-E", "twamp-M"])
def test_recorded_server_stream_with_a_flipped_octet_fails_authentication(name):
    rec = Recorded(name)
    data = bytearray(rec.stream(SERVER_TO_CLIENT))
    data[150] ^= 0x01  # inside Accept-Session's HMAC (server octets 144-159)
    with pytest.raises(AuthenticationError):
        replay(name, [bytes(data)])
