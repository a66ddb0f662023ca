"""Events the control machines report to their drivers (RFC 4656 §3, RFC 5357 §3)."""

from dataclasses import dataclass

from otwamp.control.effects import Send
from otwamp.control.owamp_events import Fetched, SessionsStopped
from otwamp.control.security import Security
from otwamp.wire.registry import TwampMode
from otwamp.wire.setup import ServerStart, SetUpResponse
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
class StartNRequested:
    """Server side: Start-N-Sessions arrived (RFC 5938 §3.2)."""

    sids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class StopNRequested:
    """Server side: Stop-N-Sessions arrived (RFC 5938 §3.4)."""

    sids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class SessionsAcked:
    """Client side: a Start-N-Ack or Stop-N-Ack arrived (RFC 5938 §3.3, §3.5).

    ``accept`` is its Accept value for ``sids``; ``done`` says whether every SID of the
    command has now been acknowledged (the Server may answer with several).
    """

    accept: int
    sids: tuple[bytes, ...]
    done: bool


@dataclass(frozen=True, slots=True)
class CredentialsNeeded:
    """Client side: the chosen mode needs a key; answer with ``credentials()`` (RFC 4656 §3.1).

    ``derived_offered``: the greeting offers the IKEv2-derived key (RFC 7717 §5.2).
    """

    mode: TwampMode
    derived_offered: bool


@dataclass(frozen=True, slots=True)
class ServerStarted:
    """Client side: Server-Start accepted the connection (RFC 4656 §3.1)."""

    start: ServerStart
    security: Security


@dataclass(frozen=True, slots=True)
class Refused:
    """Client side: the connection or a request was refused; ``reason`` says why.

    ``accept`` is the server's non-zero Accept value (RFC 4656 §3.3), or None
    when the greeting (Modes 0) or this client's own limits refused it.
    """

    reason: str
    accept: int | None = None


@dataclass(frozen=True, slots=True)
class SessionAccepted:
    """Client side: an Accept-Session with Accept 0 arrived (RFC 4656 §3.5)."""

    accept: AcceptSession


@dataclass(frozen=True, slots=True)
class StartAcked:
    """Client side: Start-Ack with Accept 0 arrived (RFC 4656 §3.7)."""

    ack: StartAck


ServerEvent = (
    NeedData
    | SetUpReceived
    | SessionRequested
    | UnsupportedCommand
    | StartRequested
    | StopRequested
    | StartNRequested
    | StopNRequested
)
SetUpEvent = NeedData | Send | CredentialsNeeded | ServerStarted | Refused
# Both protocols' client events: the OWAMP ones only ever come from the OWAMP machine.
ClientEvent = SetUpEvent | SessionAccepted | StartAcked | SessionsAcked | SessionsStopped | Fetched
