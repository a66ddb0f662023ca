"""Events the TWAMP-Control machines report to their drivers."""

from dataclasses import dataclass

from otwamp.wire.setup import ServerGreeting, ServerStart, SetUpResponse
from otwamp.wire.twamp_control import AcceptSession, RequestTwSession, StartAck, StopSessions


@dataclass(frozen=True, slots=True)
class NeedData:
    """More octets are needed before the next event."""


NEED_DATA = NeedData()


@dataclass(frozen=True, slots=True)
class SetUpReceived:
    """Server side: the client's Set-Up-Response arrived (RFC 4656 §3.1)."""

    response: SetUpResponse


@dataclass(frozen=True, slots=True)
class SessionRequested:
    """Server side: a Request-TW-Session arrived (RFC 5357 §3.5)."""

    request: RequestTwSession


@dataclass(frozen=True, slots=True)
class UnsupportedCommand:
    """Server side: an unexpected Command Number; Accept-Session 3 was queued (RFC 5357 §3.5)."""

    command: int


@dataclass(frozen=True, slots=True)
class StartRequested:
    """Server side: Start-Sessions arrived (RFC 4656 §3.7)."""


@dataclass(frozen=True, slots=True)
class StopRequested:
    """Server side: Stop-Sessions arrived (RFC 5357 §3.8)."""

    stop: StopSessions


@dataclass(frozen=True, slots=True)
class GreetingReceived:
    """Client side: the Server-Greeting arrived (RFC 4656 §3.1)."""

    greeting: ServerGreeting


@dataclass(frozen=True, slots=True)
class ServerStarted:
    """Client side: Server-Start arrived (RFC 4656 §3.1)."""

    start: ServerStart


@dataclass(frozen=True, slots=True)
class SessionAccepted:
    """Client side: an Accept-Session arrived (RFC 4656 §3.5)."""

    accept: AcceptSession


@dataclass(frozen=True, slots=True)
class StartAcked:
    """Client side: Start-Ack arrived (RFC 4656 §3.7)."""

    ack: StartAck


ServerEvent = (
    NeedData
    | SetUpReceived
    | SessionRequested
    | UnsupportedCommand
    | StartRequested
    | StopRequested
)
ClientEvent = NeedData | GreetingReceived | ServerStarted | SessionAccepted | StartAcked
