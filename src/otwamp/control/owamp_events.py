"""Events the OWAMP-Control machines report to their drivers (RFC 4656 §3)."""

from dataclasses import dataclass

from otwamp.wire.owamp_control import RequestSession
from otwamp.wire.owamp_fetch import FetchAck, FetchedSession, FetchSession
from otwamp.wire.owamp_stop import StopSessions


@dataclass(frozen=True, slots=True)
class OwampSessionRequested:
    """Server side: a Request-Session arrived (RFC 4656 §3.5)."""

    request: RequestSession


@dataclass(frozen=True, slots=True)
class TooManySlots:
    """Server side: a Request-Session with more slots than allowed; the connection ends."""

    count: int


@dataclass(frozen=True, slots=True)
class FetchRequested:
    """Server side: a Fetch-Session arrived (RFC 4656 §3.9)."""

    fetch: FetchSession


@dataclass(frozen=True, slots=True)
class SessionsStopped:
    """Either side: the peer's Stop-Sessions arrived (RFC 4656 §3.8)."""

    stop: StopSessions


@dataclass(frozen=True, slots=True)
class Fetched:
    """Client side: Fetch-Ack with Accept 0 and the session's data (RFC 4656 §3.9)."""

    ack: FetchAck
    data: FetchedSession
