"""Replaying a perfSONAR transcript through one control machine, the peer's octets cut anywhere.

The walk follows the transcript in time order. The machine's own messages
come from its request and answer methods, given the recorded values (and, in
modes A, E and M, the recorded keys and IVs; a client draws the recorded
random octets); the peer's messages are fed in chunks ending at the cut
offsets asked for, and always at the end of each run of consecutive peer
messages (what follows answers the machine). Every event is noted with the
number of peer octets fed when the machine reported it; a client's
Set-Up-Response goes out as soon as it reads the greeting.
"""

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

from otwamp.control.effects import Send
from otwamp.control.events import (
    CredentialsNeeded,
    ServerStarted,
    SessionAccepted,
    SessionRequested,
    SetUpReceived,
    StartAcked,
    StartRequested,
    StopRequested,
)
from otwamp.control.owamp_client import OwampClientConnection
from otwamp.control.owamp_events import (
    Fetched,
    FetchRequested,
    OwampSessionRequested,
    SessionsStopped,
)
from otwamp.control.owamp_server import OwampServerConnection
from otwamp.control.twamp_client import TwampClientConnection
from otwamp.control.twamp_server import TwampServerConnection
from otwamp.wire.owamp_control import HMAC_SIZE, AcceptSession, RequestSession, StartAck
from otwamp.wire.owamp_fetch import FetchAck, FetchedSession, FetchSession
from otwamp.wire.owamp_stop import StopSessions
from otwamp.wire.registry import TwampMode
from tests.control.client_support import CREDENTIALS, recorded_mode, recorded_random
from tests.control.conftest import CLIENT_TO_SERVER, SERVER_TO_CLIENT, Recorded, drain
from tests.vectors import load_vector
from tests.wire.conftest import ALL_TWAMP, ControlMessage, control_messages
from tests.wire.owamp.vectors import OWAMP

# Every transcript: TWAMP in modes O, A, E and M (default and zero padding), OWAMP in O, A, E.
VECTORS = ALL_TWAMP + OWAMP
FETCH_PARTS = 4  # Fetch-Ack, then the request copy, skip ranges and records (RFC 4656 §3.9)

Machine = Any  # one of the four connection classes; they share receive_data / next_event
Speak = Callable[[Any, Recorded, ControlMessage, list[ControlMessage]], bytes]


@dataclass(frozen=True, eq=False)
class Side:
    """One control machine and how it speaks its half of a transcript."""

    name: str
    protocol: str  # "twamp" or "owamp": the transcripts it can replay
    machine: Callable[[Recorded], Machine]  # a new machine for a transcript
    peer: str  # the direction of the octets the machine is fed
    speak: Speak  # the octets the machine sends for one of its recorded messages
    # The event each peer message ends with, by message name (a tuple: one of them).
    events: dict[str, type | tuple[type, ...]]

    @property
    def own(self) -> str:
        """The direction of the octets the machine sends."""
        return SERVER_TO_CLIENT if self.peer == CLIENT_TO_SERVER else CLIENT_TO_SERVER


@dataclass(frozen=True)
class Replay:
    """What one replay saw: events with the peer octets fed by then, and what the machine sent."""

    events: list[tuple[int, object]]
    sent: bytes
    ends: list[int]  # where each fed chunk ended, in peer-stream octets

    def settled(self, baseline: "Replay") -> list[tuple[int, object]]:
        """``baseline``'s events as they must appear given this replay's chunk ends."""
        return [(min(end for end in self.ends if end >= at), e) for at, e in baseline.events]


@dataclass(frozen=True)
class PeerMessage:
    """A recorded message from the peer and where it lies in the peer's stream."""

    message: ControlMessage
    start: int

    @property
    def end(self) -> int:
        """Where the message ends in the peer's stream."""
        return self.start + len(self.message.wire)


def peer_messages(side: Side, name: str) -> list[PeerMessage]:
    """The peer's messages of transcript ``name`` with their stream offsets."""
    out, at = [], 0
    for m in control_messages(name):
        if m.direction == side.peer:
            out.append(PeerMessage(m, at))
            at += len(m.wire)
    return out


def message_ends(side: Side, name: str) -> set[int]:
    """The cuts of the whole-message replay: the end of every peer message."""
    return {p.end for p in peer_messages(side, name)}


def segment_ends(side: Side, name: str) -> set[int]:
    """The cuts of the replay as captured: the end of every recorded TCP segment."""
    segments = load_vector(name)["control"]["tcp_segments"][side.peer]
    return {s["offset"] + s["length"] for s in segments}


def replay(side: Side, name: str, cuts: Collection[int]) -> Replay:
    """Walk transcript ``name`` as ``side``, feeding the peer's octets cut at ``cuts``."""
    rec, messages = Recorded(name), control_messages(name)
    machine = side.machine(rec)
    stream = b"".join(m.wire for m in messages if m.direction == side.peer)
    fed, events, sent, ends = 0, [], b"", []
    for run in _runs(messages):
        if run[0].direction != side.peer:
            sent += b"".join(side.speak(machine, rec, m, messages) for m in run)
            continue
        end = fed + sum(len(m.wire) for m in run)
        for stop in sorted({c for c in cuts if fed < c < end} | {end}):
            machine.receive_data(stream[fed:stop])
            fed = stop
            ends.append(fed)
            more, answers = drain(machine, lambda event: _set_up_answer(machine, event))
            events += [(fed, e) for e in more]
            sent += answers
    return Replay(events, sent, ends)


def _set_up_answer(client: Machine, event: object) -> bytes:
    """A client's Set-Up-Response, sent when it reads the greeting (RFC 4656 §3.1)."""
    if isinstance(event, Send):
        return event.data  # open mode
    if isinstance(event, CredentialsNeeded):
        return bytes(client.credentials(CREDENTIALS))
    return b""


def _runs(messages: list[ControlMessage]) -> Iterator[list[ControlMessage]]:
    """The transcript as runs of consecutive messages in one direction."""
    run: list[ControlMessage] = []
    for m in messages:
        if run and m.direction != run[0].direction:
            yield run
            run = []
        run.append(m)
    if run:
        yield run


def request_parts(message: ControlMessage) -> tuple[bytes, bytes]:
    """A recorded Request-Session's fixed part and slots, without their HMACs (RFC 4656 §3.5)."""
    fixed = message.plaintext[: RequestSession.FIXED]
    return fixed, message.plaintext[RequestSession.FIXED + HMAC_SIZE : -HMAC_SIZE]


def recorded_request(message: ControlMessage) -> RequestSession:
    """The Request-Session a recorded one carries."""
    return RequestSession.decode_parts(*request_parts(message))


def _body(message: ControlMessage) -> bytes:
    return message.plaintext[:-HMAC_SIZE]


def _server_set_up(
    server: TwampServerConnection | OwampServerConnection, rec: Recorded, message: ControlMessage
) -> bytes:
    """Server-Greeting or Server-Start, with the recorded channels when secured."""
    if message.name == "Server-Greeting":
        return server.greet(rec.greeting())
    return server.start(rec.server_start(), *rec.server_channels())


def _twamp_server_says(
    server: TwampServerConnection, rec: Recorded, message: ControlMessage, _all: object
) -> bytes:
    if message.name == "Accept-Session":
        return server.accept_session(rec.accept())
    if message.name == "Start-Ack":
        return server.start_ack(rec.start_ack().accept)
    return _server_set_up(server, rec, message)


def _owamp_server_says(
    server: OwampServerConnection,
    rec: Recorded,
    message: ControlMessage,
    messages: list[ControlMessage],
) -> bytes:
    if message.name == "Accept-Session":
        return server.accept_session(AcceptSession.decode(_body(message)))
    if message.name == "Start-Ack":
        return server.start_ack(StartAck.decode(_body(message)).accept)
    if message.name == "Stop-Sessions":
        return server.stop_sessions(StopSessions.decode(_body(message)))
    if message.name == "Fetch-Ack":
        return server.fetch_ack(
            *_fetch_answer(messages[message.index : message.index + FETCH_PARTS])
        )
    if message.name.startswith("Fetch data"):
        return b""  # sent with its Fetch-Ack
    return _server_set_up(server, rec, message)


def _fetch_answer(parts: list[ControlMessage]) -> tuple[FetchAck, FetchedSession]:
    """The recorded Fetch-Ack and the session data that follows it (RFC 4656 §3.9)."""
    ack_part, request, skips, records = parts
    ack = FetchAck.decode(_body(ack_part))
    fixed, slots = request_parts(request)
    return ack, FetchedSession.decode_parts(fixed, slots, _body(skips), _body(records), ack)


def _twamp_client_says(
    client: TwampClientConnection, rec: Recorded, message: ControlMessage, _all: object
) -> bytes:
    if message.name == "Set-Up-Response":
        return b""  # sent on reading the greeting
    if message.name == "Request-TW-Session":
        return client.request_session(rec.request())
    if message.name == "Start-Sessions":
        return client.start_sessions()
    stop = rec.stop()
    return client.stop_sessions(stop.accept, stop.num_sessions)


def _owamp_client_says(
    client: OwampClientConnection, _rec: Recorded, message: ControlMessage, _all: object
) -> bytes:
    if message.name == "Set-Up-Response":
        return b""  # sent on reading the greeting
    if message.name == "Request-Session":
        return client.request_session(recorded_request(message))
    if message.name == "Start-Sessions":
        return client.start_sessions()
    if message.name == "Stop-Sessions":
        return client.stop_sessions(StopSessions.decode(_body(message)))
    return client.fetch_session(FetchSession.decode(_body(message)))


def _recorded_client(rec: Recorded) -> tuple[Callable[[int], bytes], tuple[TwampMode, ...]]:
    """A client's random source and modes: the recorded client's draws and its one mode."""
    return recorded_random(rec.name, rec.setup()), recorded_mode(rec.name)


SERVER_EVENTS: dict[str, type | tuple[type, ...]] = {
    "Set-Up-Response": SetUpReceived,
    "Start-Sessions": StartRequested,
}
CLIENT_EVENTS: dict[str, type | tuple[type, ...]] = {
    "Server-Greeting": (Send, CredentialsNeeded),  # open mode; modes A, E and M
    "Server-Start": ServerStarted,
    "Accept-Session": SessionAccepted,
    "Start-Ack": StartAcked,
}

SIDES = (
    Side(
        "twamp-server",
        "twamp",
        lambda _rec: TwampServerConnection(),
        CLIENT_TO_SERVER,
        _twamp_server_says,
        SERVER_EVENTS | {"Request-TW-Session": SessionRequested, "Stop-Sessions": StopRequested},
    ),
    Side(
        "twamp-client",
        "twamp",
        lambda rec: TwampClientConnection(*_recorded_client(rec)),
        SERVER_TO_CLIENT,
        _twamp_client_says,
        CLIENT_EVENTS,
    ),
    Side(
        "owamp-server",
        "owamp",
        lambda _rec: OwampServerConnection(),
        CLIENT_TO_SERVER,
        _owamp_server_says,
        SERVER_EVENTS
        | {
            "Request-Session": OwampSessionRequested,
            "Stop-Sessions": SessionsStopped,
            "Fetch-Session": FetchRequested,
        },
    ),
    Side(
        "owamp-client",
        "owamp",
        lambda rec: OwampClientConnection(*_recorded_client(rec)),
        SERVER_TO_CLIENT,
        _owamp_client_says,
        CLIENT_EVENTS
        | {"Stop-Sessions": SessionsStopped, "Fetch data: packet records + HMAC": Fetched},
    ),
)
OWAMP_SERVER = SIDES[2]


def cases() -> list[tuple[Side, str]]:
    """Every (machine, transcript) pair a machine can replay."""
    return [(s, v) for s in SIDES for v in VECTORS if v.startswith(s.protocol)]
