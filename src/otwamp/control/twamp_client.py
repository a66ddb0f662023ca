"""The TWAMP-Control client as a sans-I/O state machine (RFC 5357 §3).

With Individual Session Control (RFC 5938) the client starts and stops the
sessions it names with Start-N-Sessions and Stop-N-Sessions; the Server may
acknowledge one command with several Start-N-Ack / Stop-N-Ack messages, one
per Accept value, and the client waits until every SID it named has been
acknowledged.
"""

from otwamp.control.client_base import SET_UP, ClientConnectionBase, ClientState, Transitions
from otwamp.control.events import (
    NEED_DATA,
    ClientEvent,
    Refused,
    SessionAccepted,
    SessionsAcked,
    StartAcked,
)
from otwamp.control.server_base import BLOCK
from otwamp.errors import ProtocolError
from otwamp.wire.registry import TwampMode
from otwamp.wire.twamp_control import RequestTwSession, StartSessions, StopSessions
from otwamp.wire.twamp_features import EXTENSION_BITS
from otwamp.wire.twamp_individual import (
    StartNAck,
    StartNSessions,
    StopNAck,
    StopNSessions,
    message_size,
)

TWAMP_TRANSITIONS: Transitions = SET_UP | {
    ClientState.IDLE: {
        RequestTwSession: ClientState.AWAIT_ACCEPT,
        StartSessions: ClientState.AWAIT_START_ACK,
        StartNSessions: ClientState.AWAIT_START_N_ACK,
        StopNSessions: ClientState.AWAIT_STOP_N_ACK,
    },
    ClientState.AWAIT_ACCEPT: {SessionAccepted: ClientState.IDLE, Refused: ClientState.IDLE},
    ClientState.AWAIT_START_ACK: {StartAcked: ClientState.TESTING, Refused: ClientState.IDLE},
    # RFC 5357 §3.8: no answer to Stop-Sessions; the connection may start a new round.
    ClientState.TESTING: {StopSessions: ClientState.IDLE},
    # RFC 5938 §3.3, §3.5: back to IDLE once every SID named is acknowledged.
    ClientState.AWAIT_START_N_ACK: {SessionsAcked: ClientState.IDLE},
    ClientState.AWAIT_STOP_N_ACK: {SessionsAcked: ClientState.IDLE},
}


class TwampClientConnection(ClientConnectionBase):
    """One TWAMP-Control connection, client side."""

    SECTION = "RFC 5357 §3"
    PROTOCOL = "TWAMP-Control"
    IKEV2_BIT = int(TwampMode.IKEV2_DERIVED)
    TRANSITIONS = TWAMP_TRANSITIONS

    _outstanding: frozenset[bytes] = frozenset()  # SIDs named and not yet acknowledged

    def want(self, features: int) -> None:
        """Use these optional modes (RFC 5938, 6038, 7750) where the greeting offers them."""
        if self.state is not ClientState.AWAIT_GREETING:
            raise RuntimeError("optional modes are chosen before the Server-Greeting is read")
        self._features = features & EXTENSION_BITS

    @property
    def agreed(self) -> int:
        """The optional-mode bits set in the Set-Up-Response (those wanted and offered)."""
        return self._agreed

    def request_session(self, request: RequestTwSession) -> bytes:
        """Octets of a Request-TW-Session (RFC 5357 §3.5)."""
        return self._send(RequestTwSession, "Request-TW-Session", request.encode())

    def stop_sessions(self, accept: int, num_sessions: int) -> bytes:
        """Octets of Stop-Sessions (RFC 5357 §3.8); no response follows."""
        stop = StopSessions(accept, num_sessions)
        return self._send(StopSessions, "Stop-Sessions", stop.encode())

    def start_n_sessions(self, sids: tuple[bytes, ...]) -> bytes:
        """Octets of Start-N-Sessions for ``sids`` (RFC 5938 §3.2)."""
        return self._individual(StartNSessions(sids))

    def stop_n_sessions(self, sids: tuple[bytes, ...]) -> bytes:
        """Octets of Stop-N-Sessions for ``sids`` (RFC 5938 §3.4)."""
        return self._individual(StopNSessions(sids))

    def next_event(self) -> ClientEvent:
        """The next event from the buffered octets, or NEED_DATA."""
        if self.state in (ClientState.AWAIT_START_N_ACK, ClientState.AWAIT_STOP_N_ACK):
            return self._ack()
        return super().next_event()

    def _individual(self, command: StartNSessions | StopNSessions) -> bytes:
        if not self._agreed & TwampMode.INDIVIDUAL_SESSION_CONTROL:
            raise RuntimeError(f"{command.NAME} without Individual Session Control (RFC 5938)")
        sent = self._send(type(command), command.NAME, command.encode())
        self._outstanding = frozenset(command.sids)
        return sent

    def _ack(self) -> ClientEvent:
        """One Start-N-Ack or Stop-N-Ack; done once every SID named is acknowledged."""
        kind = StartNAck if self.state is ClientState.AWAIT_START_N_ACK else StopNAck
        body = self._framer.grow(self._ack_size)
        if body is None:
            return NEED_DATA
        ack = kind.decode(body)
        if not set(ack.sids) <= self._outstanding:
            raise ProtocolError(
                "acknowledges a SID that was not named or was acknowledged already",
                field=kind.NAME,
                section=kind.SECTION,
            )
        self._outstanding -= set(ack.sids)
        event = SessionsAcked(ack.accept, ack.sids, not self._outstanding)
        if event.done:
            self._move(SessionsAcked)
        return event

    def _ack_size(self, prefix: bytes) -> int:
        """An acknowledgement's size from its first block, never more SIDs than outstanding."""
        if len(prefix) < BLOCK:
            return BLOCK
        size = message_size(prefix)
        if (size - BLOCK) // BLOCK > len(self._outstanding):
            raise ProtocolError(
                f"names more SIDs than the {len(self._outstanding)} awaiting acknowledgement",
                field="Number of Sessions",
                section="RFC 5938 §3.3",
            )
        return size
