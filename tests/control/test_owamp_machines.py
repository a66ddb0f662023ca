"""The OWAMP-Control machines replay perfSONAR's owampd/owping transcripts (RFC 4656 §3).

Walking each transcript in time order, the server machine turns every
client message into the right event and, given the recorded values, sends
exactly the recorded octets; the client machine does the same from its side.
In modes A and E the channels are keyed from the vector's session keys and
IVs, so every HMAC is checked and every octet of ciphertext reproduced.
"""

from collections.abc import Iterator

import pytest

from otwamp.control.events import NeedData, SetUpReceived, StartRequested
from otwamp.control.owamp_events import (
    FetchRequested,
    OwampSessionRequested,
    SessionsStopped,
    TooManySlots,
)
from otwamp.control.owamp_server import OwampServerConnection
from otwamp.errors import ProtocolError
from otwamp.security.control import SecureControlReceiver, SecureControlSender
from otwamp.security.sessionkeys import SessionKeys
from otwamp.wire.owamp_control import AcceptSession, RequestSession, StartAck
from otwamp.wire.owamp_fetch import FetchAck, FetchedSession
from otwamp.wire.owamp_stop import StopSessions
from otwamp.wire.setup import ServerGreeting, ServerStart, SetUpResponse
from tests.wire.owamp.vectors import OWAMP, load

HMAC = 16


def transcript(name: str) -> Iterator[tuple[str, str, bytes, bytes]]:
    """(direction, name, wire octets, plaintext octets) of each recorded message."""
    for m in load(name)["control"]["messages"]:
        wire = bytes.fromhex(m["wire_hex"])
        yield m["dir"], m["name"], wire, bytes.fromhex(m.get("plaintext_hex") or m["wire_hex"])


def keys(name: str) -> SessionKeys | None:
    derived = load(name)["derived_for_checking"]
    if not derived:
        return None
    return SessionKeys(
        bytes.fromhex(derived["aes_session_key"]), bytes.fromhex(derived["hmac_session_key"])
    )


def server_answer(
    server: OwampServerConnection, name: str, plain: bytes, fetched: list[bytes]
) -> bytes | None:
    """The server machine's octets for a recorded server message (None: part of a fetch)."""
    body = plain[:-HMAC]
    if name == "Accept-Session":
        return server.accept_session(AcceptSession.decode(body))
    if name == "Start-Ack":
        return server.start_ack(StartAck.decode(body).accept)
    if name == "Stop-Sessions":
        return server.stop_sessions(StopSessions.decode(body))
    fetched.append(plain)
    if name != "Fetch data: packet records + HMAC":
        return None
    ack = FetchAck.decode(fetched[0][:-HMAC])
    request = fetched[1]  # the reproduction: fixed part + HMAC + slots + HMAC
    slots = request[RequestSession.FIXED + HMAC : -HMAC]
    data = FetchedSession.decode_parts(
        request[: RequestSession.FIXED], slots, fetched[2][:-HMAC], fetched[3][:-HMAC], ack
    )
    return server.fetch_ack(ack, data)


@pytest.mark.parametrize("name", OWAMP)
def test_server_machine_replays_owampd(name: str) -> None:
    server = OwampServerConnection()
    session_keys = keys(name)
    expected_events = {
        "Set-Up-Response": SetUpReceived,
        "Request-Session": OwampSessionRequested,
        "Start-Sessions": StartRequested,
        "Stop-Sessions": SessionsStopped,
        "Fetch-Session": FetchRequested,
    }
    sent, recorded, fetched = b"", b"", []
    for direction, message, wire, plain in transcript(name):
        if direction == "client->server":
            server.receive_data(wire)
            event = server.next_event()
            assert isinstance(event, expected_events[message]), message
            continue
        recorded += wire
        if message == "Server-Greeting":
            sent += server.greet(ServerGreeting.decode(plain))
        elif message == "Server-Start":
            start = ServerStart.decode(plain)
            if session_keys is None:
                sent += server.start(start)
            else:
                client_iv = SetUpResponse.decode(
                    bytes.fromhex(load(name)["control"]["client_to_server_hex"])[:164]
                ).client_iv
                sent += server.start(
                    start,
                    SecureControlSender(session_keys, start.server_iv),
                    SecureControlReceiver(session_keys, client_iv),
                )
        else:
            sent += server_answer(server, message, plain, fetched) or b""
    assert sent == recorded
    assert isinstance(server.next_event(), NeedData)


def _started_server() -> OwampServerConnection:
    server = OwampServerConnection(max_slots=2)
    server.greet(ServerGreeting(1, bytes(16), bytes(16), 1024))
    server.receive_data(SetUpResponse(1).encode())
    assert isinstance(server.next_event(), SetUpReceived)
    server.start(ServerStart(0))
    return server


def test_too_many_slots_ends_the_connection() -> None:
    server = _started_server()
    request = bytes([1, 4, 0, 1]) + (3).to_bytes(4, "big") + bytes(88)
    server.receive_data(request + bytes(16))
    event = server.next_event()
    assert event == TooManySlots(3)
    assert server.refusal(4)[0] == 4  # Accept-Session with Accept 4 (RFC 4656 §3.3)


def test_stop_before_start_is_out_of_order() -> None:
    server = _started_server()
    server.receive_data(bytes([3]) + bytes(31))
    with pytest.raises(ProtocolError, match="out of order"):
        server.next_event()
