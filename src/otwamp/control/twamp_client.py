"""The TWAMP-Control client as a sans-I/O state machine (RFC 5357 §3)."""

from otwamp.control.client_base import SET_UP, ClientConnectionBase, ClientState, Transitions
from otwamp.control.events import Refused, SessionAccepted, StartAcked
from otwamp.wire.registry import TwampMode
from otwamp.wire.twamp_control import RequestTwSession, StartSessions, StopSessions

TWAMP_TRANSITIONS: Transitions = SET_UP | {
    ClientState.IDLE: {
        RequestTwSession: ClientState.AWAIT_ACCEPT,
        StartSessions: ClientState.AWAIT_START_ACK,
    },
    ClientState.AWAIT_ACCEPT: {SessionAccepted: ClientState.IDLE, Refused: ClientState.IDLE},
    ClientState.AWAIT_START_ACK: {StartAcked: ClientState.TESTING, Refused: ClientState.IDLE},
    # RFC 5357 §3.8: no answer to Stop-Sessions; the connection may start a new round.
    ClientState.TESTING: {StopSessions: ClientState.IDLE},
}


class TwampClientConnection(ClientConnectionBase):
    """One TWAMP-Control connection, client side."""

    SECTION = "RFC 5357 §3"
    PROTOCOL = "TWAMP-Control"
    IKEV2_BIT = int(TwampMode.IKEV2_DERIVED)
    TRANSITIONS = TWAMP_TRANSITIONS

    def request_session(self, request: RequestTwSession) -> bytes:
        """Octets of a Request-TW-Session (RFC 5357 §3.5)."""
        return self._send(RequestTwSession, "Request-TW-Session", request.encode())

    def stop_sessions(self, accept: int, num_sessions: int) -> bytes:
        """Octets of Stop-Sessions (RFC 5357 §3.8); no response follows."""
        stop = StopSessions(accept, num_sessions)
        return self._send(StopSessions, "Stop-Sessions", stop.encode())
