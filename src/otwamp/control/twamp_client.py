"""The TWAMP-Control client as a sans-I/O state machine (RFC 5357 §3)."""

from otwamp.control.client_base import ClientConnectionBase
from otwamp.control.events import NEED_DATA, ClientEvent, SessionAccepted, StartAcked
from otwamp.wire.twamp_control import (
    AcceptSession,
    RequestTwSession,
    StartAck,
    StartSessions,
    StopSessions,
)


class TwampClientConnection(ClientConnectionBase):
    """One TWAMP-Control connection, client side."""

    SECTION = "RFC 5357 §3"
    PROTOCOL = "TWAMP-Control"

    def request_session(self, request: RequestTwSession) -> bytes:
        """Octets of a Request-TW-Session (RFC 5357 §3.5)."""
        self._expect.append("Accept-Session")
        return self._tx.seal(request.encode())

    def start_sessions(self) -> bytes:
        """Octets of Start-Sessions (RFC 4656 §3.7)."""
        self._expect.append("Start-Ack")
        return self._tx.seal(StartSessions().encode())

    def stop_sessions(self, accept: int, num_sessions: int) -> bytes:
        """Octets of Stop-Sessions (RFC 5357 §3.8); no response follows."""
        return self._tx.seal(StopSessions(accept, num_sessions).encode())

    def next_event(self) -> ClientEvent:
        """The next event from the buffered octets, or NEED_DATA."""
        event = super().next_event()
        assert isinstance(event, ClientEvent)
        return event

    def _read(self, what: str) -> object:
        if what == "Accept-Session":
            body = self._framer.part(AcceptSession.BODY)
            return NEED_DATA if body is None else SessionAccepted(AcceptSession.decode(body))
        if what == "Start-Ack":
            body = self._framer.part(StartAck.BODY)
            return NEED_DATA if body is None else StartAcked(StartAck.decode(body))
        return super()._read(what)
