"""The OWAMP-Control client as a sans-I/O state machine (RFC 4656 §3).

After an accepted Start-Sessions both sides stop their own send sessions
(RFC 4656 §3.8), in either order; the client fetches a session the server
received only once both Stop-Sessions have crossed, so every response
arrives in a known order (docs/DECISIONS.md R8).
"""

from otwamp.control.client_base import (
    SET_UP,
    ClientConnectionBase,
    ClientState,
    Transitions,
    refusal,
)
from otwamp.control.events import NEED_DATA, ClientEvent, Refused, SessionAccepted, StartAcked
from otwamp.control.owamp_events import Fetched, SessionsStopped
from otwamp.control.security import DEFAULT_MAX_COUNT, Random
from otwamp.wire._owamp import BLOCK
from otwamp.wire.owamp_control import RequestSession, Slot, StartSessions
from otwamp.wire.owamp_fetch import (
    FetchAck,
    FetchedSession,
    FetchSession,
    records_size,
    skip_ranges_size,
)
from otwamp.wire.owamp_stop import StopSessions
from otwamp.wire.registry import Accept, OwampMode, TwampMode

RECORDS_PART = 4  # after Fetch-Ack, the request's fixed part, its slots and the Skip Ranges

OWAMP_TRANSITIONS: Transitions = SET_UP | {
    ClientState.IDLE: {
        RequestSession: ClientState.AWAIT_ACCEPT,
        StartSessions: ClientState.AWAIT_START_ACK,
        FetchSession: ClientState.AWAIT_FETCH_ACK,
    },
    ClientState.AWAIT_ACCEPT: {SessionAccepted: ClientState.IDLE, Refused: ClientState.IDLE},
    ClientState.AWAIT_START_ACK: {StartAcked: ClientState.TESTING, Refused: ClientState.IDLE},
    ClientState.TESTING: {
        SessionsStopped: ClientState.SERVER_STOPPED,
        StopSessions: ClientState.CLIENT_STOPPED,
    },
    ClientState.SERVER_STOPPED: {StopSessions: ClientState.IDLE},
    ClientState.CLIENT_STOPPED: {SessionsStopped: ClientState.IDLE},
    ClientState.AWAIT_FETCH_ACK: {Fetched: ClientState.IDLE, Refused: ClientState.IDLE},
}


class OwampClientConnection(ClientConnectionBase):
    """One OWAMP-Control connection, client side."""

    IKEV2_BIT = int(OwampMode.IKEV2_DERIVED)
    TRANSITIONS = OWAMP_TRANSITIONS

    def __init__(
        self,
        random: Random,
        modes: tuple[TwampMode, ...] = (TwampMode.UNAUTHENTICATED,),
        max_count: int = DEFAULT_MAX_COUNT,
    ) -> None:
        super().__init__(random, modes, max_count)
        self._fetch: list[bytes] = []  # Fetch-Ack and the data parts read so far
        self._records = bytearray()  # the packet records part read so far (RFC 4656 §3.9)
        self.incomplete: str | None = None  # why this connection's results are invalid

    def request_session(self, request: RequestSession) -> bytes:
        """Octets of a Request-Session: fixed part and slots, each with its HMAC (RFC 4656 §3.5)."""
        direction = "to" if request.conf_receiver else "from"
        return self._send(RequestSession, f"the {direction} session", *request.encode_parts())

    def stop_sessions(self, stop: StopSessions) -> bytes:
        """Octets of the client's Stop-Sessions describing its send sessions (RFC 4656 §3.8)."""
        return self._send(StopSessions, "Stop-Sessions", stop.encode())

    def fetch_session(self, fetch: FetchSession) -> bytes:
        """Octets of Fetch-Session (RFC 4656 §3.9)."""
        return self._send(FetchSession, "Fetch-Session", fetch.encode())

    def _read(self) -> ClientEvent:
        if self.state in (ClientState.TESTING, ClientState.CLIENT_STOPPED):
            return self._stopped()
        if self.state is ClientState.AWAIT_FETCH_ACK:
            return self._fetched()
        return super()._read()

    def _stopped(self) -> ClientEvent:
        """The server's Stop-Sessions; a non-zero Accept invalidates the results (§3.8)."""
        body = self._framer.grow(StopSessions.body_size)
        if body is None:
            return NEED_DATA
        stop = StopSessions.decode(body)
        if stop.accept != Accept.OK:
            meaning = Accept.interpret(stop.accept).meaning
            self.incomplete = f"the server's Stop-Sessions had Accept {stop.accept} ({meaning})"
        return SessionsStopped(stop)

    def _fetched(self) -> ClientEvent:
        """Fetch-Ack, then the request copy, slots, skip ranges and records (RFC 4656 §3.9)."""
        parts = self._fetch
        while (size := self._next_fetch_part(parts)) is not None:
            if len(parts) == RECORDS_PART:
                if not self._records_part(size):
                    return NEED_DATA
                break
            part = self._framer.part(size)
            if part is None:
                return NEED_DATA
            parts.append(part)
        # One copy more, for a moment: the Arrivals built from it cost as much again.
        records, self._fetch, self._records = bytes(self._records), [], bytearray()
        ack = FetchAck.decode(parts[0])
        if ack.accept != Accept.OK:
            return Refused(refusal(ack.accept, self._asked), ack.accept)
        request, slots, skips = parts[1:]
        return Fetched(ack, FetchedSession.decode_parts(request, slots, skips, records, ack))

    def _records_part(self, size: int) -> bool:
        """Read the packet records part as it arrives; whether all of it and its HMAC came.

        Whole blocks are decrypted as they come, covered by the part's HMAC
        (RFC 4656 §3.2, as the Server-Start's tail), into one buffer: a
        session of millions of packets costs its records' octets once, not
        the several copies of a part read whole.
        """
        records, framer = self._records, self._framer
        while (missing := size - len(records)) > 0:
            whole = min(missing, framer.pending() // BLOCK * BLOCK)
            wire = framer.clear(whole) if whole else None
            if wire is None:
                return False
            records += framer.rx.decrypt(wire)
        return framer.finish() is not None

    @staticmethod
    def _next_fetch_part(parts: list[bytes]) -> int | None:
        """The size of the next part to read, or None when the answer is complete."""
        if not parts:
            return FetchAck.BODY
        ack = FetchAck.decode(parts[0])
        if ack.accept != Accept.OK:
            return None
        sizes = (
            RequestSession.FIXED,
            Slot.SIZE * RequestSession.num_slots(parts[1]) if len(parts) > 1 else 0,
            skip_ranges_size(ack.num_skip_ranges),
            records_size(ack.num_records),
        )
        return sizes[len(parts) - 1]
