"""The OWAMP-Control client as a sans-I/O state machine (RFC 4656 §3).

After an accepted Start-Sessions the client expects the server's
Stop-Sessions (RFC 4656 §3.8: each side stops its own send sessions), so a
Fetch-Session sent later is answered after it, in order.
"""

from otwamp.control.client_base import ClientConnectionBase
from otwamp.control.events import NEED_DATA, SessionAccepted, StartAcked
from otwamp.control.owamp_events import Fetched, SessionsStopped
from otwamp.wire.owamp_control import AcceptSession, RequestSession, Slot, StartAck, StartSessions
from otwamp.wire.owamp_fetch import (
    FetchAck,
    FetchedSession,
    FetchSession,
    records_size,
    skip_ranges_size,
)
from otwamp.wire.owamp_stop import StopSessions
from otwamp.wire.registry import Accept


class OwampClientConnection(ClientConnectionBase):
    """One OWAMP-Control connection, client side."""

    def __init__(self) -> None:
        super().__init__()
        self._fetch: list[bytes] = []  # Fetch-Ack and the data parts read so far

    def request_session(self, request: RequestSession) -> bytes:
        """Octets of a Request-Session: fixed part and slots, each with its HMAC (RFC 4656 §3.5)."""
        self._expect.append("Accept-Session")
        return b"".join(self._tx.seal(part) for part in request.encode_parts())

    def start_sessions(self) -> bytes:
        """Octets of Start-Sessions (RFC 4656 §3.7)."""
        self._expect.append("Start-Ack")
        return self._tx.seal(StartSessions().encode())

    def stop_sessions(self, stop: StopSessions) -> bytes:
        """Octets of the client's Stop-Sessions describing its send sessions (RFC 4656 §3.8)."""
        return self._tx.seal(stop.encode())

    def fetch_session(self, fetch: FetchSession) -> bytes:
        """Octets of Fetch-Session (RFC 4656 §3.9)."""
        self._expect.append("Fetch-Ack")
        return self._tx.seal(fetch.encode())

    def _read(self, what: str) -> object:
        if what == "Accept-Session":
            body = self._framer.part(AcceptSession.BODY)
            return NEED_DATA if body is None else SessionAccepted(AcceptSession.decode(body))
        if what == "Start-Ack":
            return self._start_ack()
        if what == "Stop-Sessions":
            body = self._framer.grow(StopSessions.body_size)
            return NEED_DATA if body is None else SessionsStopped(StopSessions.decode(body))
        if what == "Fetch-Ack":
            return self._fetched()
        return super()._read(what)

    def _start_ack(self) -> object:
        body = self._framer.part(StartAck.BODY)
        if body is None:
            return NEED_DATA
        ack = StartAck.decode(body)
        if ack.accept == Accept.OK:
            self._expect.insert(1, "Stop-Sessions")  # right after this Start-Ack
        return StartAcked(ack)

    def _fetched(self) -> object:
        """Fetch-Ack, then the request copy, slots, skip ranges and records (RFC 4656 §3.9)."""
        parts = self._fetch
        while True:
            size = self._next_fetch_part(parts)
            if size is None:
                break
            part = self._framer.part(size)
            if part is None:
                return NEED_DATA
            parts.append(part)
        self._fetch = []
        ack = FetchAck.decode(parts[0])
        data = None
        if len(parts) == 5:
            data = FetchedSession.decode_parts(parts[1], parts[2], parts[3], parts[4], ack)
        return Fetched(ack, data)

    @staticmethod
    def _next_fetch_part(parts: list[bytes]) -> int | None:
        """The size of the next part to read, or None when the answer is complete."""
        if not parts:
            return FetchAck.BODY
        ack = FetchAck.decode(parts[0])
        sizes = [
            RequestSession.FIXED,
            Slot.SIZE * RequestSession.num_slots(parts[1]) if len(parts) > 1 else 0,
            skip_ranges_size(ack.num_skip_ranges),
            records_size(ack.num_records),
        ]
        if ack.accept != Accept.OK or len(parts) == 5:
            return None
        return sizes[len(parts) - 1]
