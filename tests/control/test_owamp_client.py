"""The sans-I/O OWAMP-Control client (RFC 4656 §3) with a fixed random source.

The machine replays perfSONAR's owping transcripts byte for byte given
owping's random draws, handles both orders of the Stop-Sessions exchange,
and marks results invalid after a non-zero Accept in the server's
Stop-Sessions (RFC 4656 §3.8).
"""

from collections.abc import Iterator
from dataclasses import replace

import pytest

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
from otwamp.control.owamp_client import OwampClientConnection
from otwamp.control.owamp_events import Fetched, SessionsStopped
from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.wire.owamp_control import AcceptSession, RequestSession, StartAck
from otwamp.wire.owamp_fetch import FetchAck, FetchSession, PacketRecords
from otwamp.wire.owamp_stop import SessionDescription, StopSessions
from otwamp.wire.registry import Accept, TwampMode
from otwamp.wire.setup import ServerGreeting, ServerStart, SetUpResponse
from tests.control.client_support import CREDENTIALS, draws, recorded_mode, recorded_random
from tests.wire.owamp.vectors import OWAMP, load

HMAC = 16
SID = bytes.fromhex("7f000001eeacd97c54efcbd5976a102a")


def transcript(name: str) -> Iterator[tuple[str, str, bytes, bytes]]:
    """(direction, name, wire octets, plaintext octets) of each recorded message."""
    for m in load(name)["control"]["messages"]:
        wire = bytes.fromhex(m["wire_hex"])
        yield m["dir"], m["name"], wire, bytes.fromhex(m.get("plaintext_hex") or m["wire_hex"])


def recorded_setup(name: str) -> SetUpResponse:
    plain = next(p for d, m, _, p in transcript(name) if m == "Set-Up-Response")
    return SetUpResponse.decode(plain)


def client_request(client: OwampClientConnection, name: str, plain: bytes) -> bytes:
    """The client machine's octets for a recorded client command."""
    if name == "Request-Session":
        fixed = plain[: RequestSession.FIXED]
        slots = plain[RequestSession.FIXED + HMAC : -HMAC]
        return client.request_session(RequestSession.decode_parts(fixed, slots))
    if name == "Start-Sessions":
        return client.start_sessions()
    if name == "Stop-Sessions":
        return client.stop_sessions(StopSessions.decode(plain[:-HMAC]))
    return client.fetch_session(FetchSession.decode(plain[:-HMAC]))


def replay(name: str, piece: int = 0) -> tuple[list[ClientEvent], bytes, bytes]:
    """Walk the transcript in time order: the events, the octets sent and those recorded.

    The server's octets arrive a message at a time, or ``piece`` octets at a time.
    """
    client = OwampClientConnection(recorded_random(name, recorded_setup(name)), recorded_mode(name))
    got: list[ClientEvent] = []
    sent, recorded = b"", b""
    for direction, message, wire, plain in transcript(name):
        if direction == "client->server":
            recorded += wire
            if message != "Set-Up-Response":  # the machine sends that one itself
                sent += client_request(client, message, plain)
            continue
        for start in range(0, len(wire), piece or len(wire)):
            client.receive_data(wire[start : start + (piece or len(wire))])
            while (event := client.next_event()) is not NEED_DATA:
                got.append(event)
                if isinstance(event, Send):
                    sent += event.data
                elif isinstance(event, CredentialsNeeded):
                    sent += client.credentials(CREDENTIALS)
    assert client.state is ClientState.IDLE
    assert client.incomplete is None
    return got, sent, recorded


@pytest.mark.parametrize("name", OWAMP)
def test_client_machine_replays_owping(name: str) -> None:
    got, sent, recorded = replay(name)
    assert sent == recorded
    first = Send if name == "owamp-O" else CredentialsNeeded
    assert [type(event) for event in got] == [
        first,
        ServerStarted,
        SessionAccepted,
        SessionAccepted,
        StartAcked,
        SessionsStopped,
        Fetched,
    ]


def test_fetched_data_carries_the_records() -> None:
    got, _, _ = replay("owamp-O")
    fetched = got[-1]
    assert isinstance(fetched, Fetched)
    assert fetched.ack.num_records == 5
    assert [r.seq for r in fetched.data.records] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("name", OWAMP)
@pytest.mark.parametrize("piece", [1, 7, 16])
def test_fetched_records_are_read_as_they_arrive(name: str, piece: int) -> None:
    """The records part is decrypted a block at a time as its octets come (R24), then its
    HMAC checked: the same records as from whole messages, the same octets sent."""
    got, sent, recorded = replay(name, piece)
    whole, _, _ = replay(name)
    assert sent == recorded
    assert got[-1] == whole[-1]
    fetched = got[-1]
    assert isinstance(fetched, Fetched)
    records = fetched.data.records
    assert isinstance(records, PacketRecords)
    assert len(records) == fetched.ack.num_records == 5
    assert [fields[0] for fields in records.fields()] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("name", ["owamp-A", "owamp-E"])
def test_a_forged_records_part_fails_its_hmac(name: str) -> None:
    """RFC 4656 §3.2: the HMAC after the records part covers what was read a block at a time."""
    client = OwampClientConnection(recorded_random(name, recorded_setup(name)), recorded_mode(name))
    messages = list(transcript(name))
    last = max(i for i, (direction, *_) in enumerate(messages) if direction != "client->server")
    with pytest.raises(AuthenticationError):
        for index, (direction, message, wire, plain) in enumerate(messages):
            if direction == "client->server":
                if message != "Set-Up-Response":
                    client_request(client, message, plain)
                continue
            flip = index == last  # the fetched data: a bit of the last record block flipped
            tail = bytes([wire[-HMAC - 1] ^ 1]) if flip else wire[-HMAC - 1 : -HMAC]
            client.receive_data(wire[: -HMAC - 1] + tail + wire[-HMAC:])
            while (event := client.next_event()) is not NEED_DATA:
                if isinstance(event, CredentialsNeeded):
                    client.credentials(CREDENTIALS)


# In memory: open mode, the server's octets built by the codecs.


def answer(body: bytes) -> bytes:
    return body + bytes(HMAC)  # open mode: HMAC unused (RFC 4656 §3.2)


def events(client: OwampClientConnection, data: bytes) -> list[ClientEvent]:
    client.receive_data(data)
    out = []
    while (event := client.next_event()) is not NEED_DATA:
        out.append(event)
    return out


def request(direction: str) -> RequestSession:
    """owping's recorded Request-Session, for the "to" or the "from" session."""
    plain = next(p for _, m, _, p in transcript("owamp-O") if m == "Request-Session")
    fixed, slots = plain[: RequestSession.FIXED], plain[RequestSession.FIXED + HMAC : -HMAC]
    recorded = RequestSession.decode_parts(fixed, slots)
    return replace(recorded, conf_sender=direction == "from", conf_receiver=direction == "to")


def started_client() -> OwampClientConnection:
    """An open-mode client whose "to" session was accepted and started."""
    client = OwampClientConnection(draws(), (TwampMode.UNAUTHENTICATED,))
    events(client, ServerGreeting(0x01, bytes(16), bytes(16), 1024).encode())
    events(client, ServerStart(Accept.OK, bytes(16), 5).encode())
    client.request_session(request("to"))
    events(client, answer(AcceptSession(Accept.OK, 9000, SID).encode()))
    client.start_sessions()
    assert events(client, answer(StartAck(0).encode())) == [StartAcked(StartAck(0))]
    assert client.state is ClientState.TESTING
    return client


SERVER_STOP = StopSessions(Accept.OK)
OUR_STOP = StopSessions(Accept.OK, (SessionDescription(SID, 5),))


def test_stop_sessions_in_either_order() -> None:
    client = started_client()
    client.stop_sessions(OUR_STOP)
    assert client.state is ClientState.CLIENT_STOPPED
    assert events(client, answer(SERVER_STOP.encode())) == [SessionsStopped(SERVER_STOP)]
    assert client.state is ClientState.IDLE

    client = started_client()
    assert events(client, answer(SERVER_STOP.encode())) == [SessionsStopped(SERVER_STOP)]
    assert client.state is ClientState.SERVER_STOPPED
    with pytest.raises(ProtocolError, match="did not ask for"):
        events(client, answer(SERVER_STOP.encode()))  # a second one


def test_fetch_waits_for_both_stop_sessions() -> None:
    client = started_client()
    with pytest.raises(RuntimeError):
        client.fetch_session(FetchSession(SID))
    events(client, answer(SERVER_STOP.encode()))
    with pytest.raises(RuntimeError):
        client.fetch_session(FetchSession(SID))
    client.stop_sessions(OUR_STOP)
    client.fetch_session(FetchSession(SID))
    assert client.state is ClientState.AWAIT_FETCH_ACK


@pytest.mark.parametrize("accept", [1, 2, 5, 99])
def test_non_zero_accept_in_the_servers_stop_marks_the_results_incomplete(accept: int) -> None:
    # RFC 4656 §3.8: results of every session of this connection SHOULD be considered invalid.
    client = started_client()
    stop = StopSessions(accept)
    assert events(client, answer(stop.encode())) == [SessionsStopped(stop)]
    meaning = Accept.interpret(accept).meaning
    assert client.incomplete == f"the server's Stop-Sessions had Accept {accept} ({meaning})"


def test_accept_0_in_the_servers_stop_leaves_the_results_complete() -> None:
    client = started_client()
    events(client, answer(SERVER_STOP.encode()))
    assert client.incomplete is None


@pytest.mark.parametrize(("direction", "accept"), [("to", 4), ("from", 5)])
def test_refused_sessions_name_their_direction(direction: str, accept: int) -> None:
    client = OwampClientConnection(draws(), (TwampMode.UNAUTHENTICATED,))
    events(client, ServerGreeting(0x01, bytes(16), bytes(16), 1024).encode())
    events(client, ServerStart(Accept.OK, bytes(16), 5).encode())
    client.request_session(request(direction))
    (event,) = events(client, answer(AcceptSession(accept).encode()))
    meaning = Accept(accept).meaning
    assert event == Refused(
        f"the server refused the {direction} session: Accept {accept} ({meaning})", accept
    )
    assert client.state is ClientState.IDLE


def test_refused_fetch_is_a_refusal_and_nothing_follows() -> None:
    client = started_client()
    client.stop_sessions(OUR_STOP)
    events(client, answer(SERVER_STOP.encode()))
    client.fetch_session(FetchSession(SID))
    (event,) = events(client, answer(FetchAck(Accept.FAILURE).encode()))
    assert event == Refused(
        "the server refused Fetch-Session: Accept 1 (failure, reason unspecified)", 1
    )
    assert client.state is ClientState.IDLE
