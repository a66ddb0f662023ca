"""The OWAMP server machine: sessions it receives and sends, Stop and Fetch (RFC 4656 §3-4).

A Request-Session with Conf-Receiver makes this server the Session-Receiver
(``OpenReceiver``); with Conf-Sender, the Session-Sender (``OpenSender``).
Start-Sessions starts a round of the sessions accepted since the last one.
RFC 4656 §3.8: the server sends its Stop-Sessions only once every session of
the round, sent or received, is past its last scheduled packet plus Timeout,
or at once in answer to the client's earlier Stop-Sessions. Received
sessions stay fetchable, from this connection or another, in the server's
``ReceivedSessions``.
"""

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from otwamp.control.effects import (
    ComputeSchedule,
    OpenReceiver,
    OpenSender,
    Release,
    SendStream,
    StartTest,
    StopReceiving,
    StopSending,
)
from otwamp.control.events import StartRequested, UnsupportedCommand
from otwamp.control.owamp_events import (
    FetchRequested,
    OwampSessionRequested,
    SessionsStopped,
    TooManySlots,
)
from otwamp.control.owamp_server import OwampServerConnection
from otwamp.control.quota import SessionQuota
from otwamp.control.received_sessions import ReceivedSession, ReceivedSessions
from otwamp.control.server_machine import Awaiting, Endpoint, Random, ServerMachine
from otwamp.control.server_policy import NS, ServerPolicy, fmt, ip_version
from otwamp.control.sid import new_sid
from otwamp.results.records import OwampSessionRecord, Stamp
from otwamp.session.owamp_receiver import OwampReceiver
from otwamp.session.owamp_sender import OwampSender
from otwamp.session.protection import protects, session_protection
from otwamp.wire.owamp_control import AcceptSession, RequestSession
from otwamp.wire.owamp_fetch import FetchAck, FetchedSession, FetchSession
from otwamp.wire.owamp_stop import SessionDescription, SkipRange, StopSessions
from otwamp.wire.registry import Accept
from otwamp.wire.timestamp import ns_to_ntp, ntp_to_duration, ntp_to_ns
from otwamp.wire.twamp_control import type_p_dscp
from otwamp.wire.twamp_test import MAX_UDP_PAYLOAD, sender_size

log = logging.getLogger("otwamp.server")

MIN_INTERVAL = 10e-6  # mean send interval below which a schedule is refused (100,000 pps)
MAX_DURATION = 86_400.0  # longest schedule accepted, seconds
MAX_TIMEOUT = 600.0  # longest Timeout accepted, seconds


@dataclass(slots=True)
class _Session:
    """One accepted OWAMP-Test session of the connection."""

    request: RequestSession
    sid: bytes
    times: Sequence[int]  # scheduled send timestamps
    receiver: OwampReceiver | None = None  # Conf-Receiver: we receive
    sender: OwampSender | None = None  # Conf-Sender: we send
    started: bool = False  # by a Start-Sessions (each round starts only new sessions)
    stopped: bool = False  # its round's Stop-Sessions exchange is over

    @property
    def end(self) -> int:
        """When it is complete: Timeout after its last scheduled packet (RFC 4656 §3.8), Unix ns.

        In nanoseconds rather than 32.32 so that comparisons hold across the
        2036 era boundary (RFC 5905 §6).
        """
        return ntp_to_ns(self.times[-1]) + ((self.request.timeout * NS) >> 32)


class OwampServerMachine(ServerMachine):
    """One OWAMP-Control connection, server side, with every decision."""

    def __init__(
        self,
        policy: ServerPolicy,
        peer: Endpoint,
        local: Endpoint,
        now: int,
        random: Random,
        received: ReceivedSessions,
        refuse: str | None = None,
        quota: SessionQuota | None = None,
    ) -> None:
        self.owamp = OwampServerConnection(policy.max_slots)
        self.received = received
        self.sessions: dict[bytes, _Session] = {}
        self._request: RequestSession | None = None  # awaiting its port, then its schedule
        self._scheduling: tuple[bytes, int] | None = None  # its SID and port meanwhile
        self._clock = Stamp(now, False, 1.0)  # the host clock as read at Start-Sessions
        self._round_end: int | None = None  # Unix ns when our Stop-Sessions is due
        self._our_stop_sent = True  # no round running
        self._shutting_down = False
        self._client_stopped_round = False
        self._close_at: int | None = None  # Unix ns: the end of the shutdown's grace time
        super().__init__(self.owamp, policy, peer, local, now, random, refuse, quota)
        self._skip_limits: dict[bytes, int] = {}  # the framing's table (§3.8)
        self.owamp.skip_limits = self._skip_limits

    def test_started(self, clock: Stamp) -> None:
        """The answer to ``StartTest``: the host clock state for this round's sessions."""
        self._clock = clock

    def senders_stopped(self, now: int) -> None:
        """The answer to ``StopSending``: our senders are stopped; send our Stop-Sessions."""
        self._resume(Awaiting.SENDERS)
        if self.closed:
            return
        self._send(self.owamp.stop_sessions(StopSessions(Accept.OK, self._our_descriptions())))
        self._our_stop_sent = True
        self._round_end = None
        self._end_round()
        self._advance(now)

    def shutdown(self, now: int) -> None:
        """The server stops: a premature Stop-Sessions for a running round (§3.8), then close.

        The client has the grace time to answer with its Stop-Sessions and fetch
        what it sent; new sessions are refused meanwhile.
        """
        if self.closed or self._shutting_down:
            return
        self._shutting_down = True
        if self._our_stop_sent:
            super().shutdown(now)
            return
        self._round_end = None
        self._close_at = now + self.policy.shutdown_grace_ns
        if self._awaiting is Awaiting.NOTHING:
            self._stop_our_senders()

    def get_timer(self) -> int | None:
        """SERVWAIT, the time our Stop-Sessions is due, or the end of a shutdown's grace."""
        servwait = super().get_timer()
        if servwait is None:
            return None
        return min(t for t in (servwait, self._round_end, self._close_at) if t is not None)

    def handle_timer(self, now: int) -> None:
        """Send our Stop-Sessions once the round is complete (§3.8); then SERVWAIT."""
        if self._close_at is not None and now >= self._close_at:
            super().shutdown(now)
            return
        if self._round_end is not None and now >= self._round_end and not self.closed:
            self._round_end = None
            if self._awaiting is Awaiting.NOTHING:
                self._stop_our_senders()
        super().handle_timer(now)

    def testing(self, now: int) -> bool:
        """Whether a started session may still be sending: until Timeout after its last packet."""
        ends = [s.end for s in self.sessions.values() if s.started and not s.stopped]
        return bool(ends) and now < max(ends)

    def release_all(self, now: int) -> None:
        """Stop what runs, keep what was received fetchable, free every socket (§3.8)."""
        self._drop_request()
        running = self._running_senders()
        if running:
            self._emit(StopSending(running, reply=False))
        self._finish_receivers(None, now)
        for sid, session in self.sessions.items():
            if not session.started and session.receiver is not None:
                self.received.discard(sid)
        self._release(tuple(self.sessions))

    def _on_command(self, event: object, now: int) -> None:
        match event:
            case OwampSessionRequested(request=request):
                self._request_session(request)
            case StartRequested():
                self._start(now)
            case SessionsStopped(stop=stop):
                self._client_stopped(stop, now)
            case FetchRequested(fetch=fetch):
                self._fetch(fetch, now)
            case TooManySlots(count=count):
                limit = self.policy.max_slots
                accept = Accept.PERMANENT_RESOURCE_LIMITATION
                reason = f"{count} schedule slots, the limit is {limit}"
                self._send(self.owamp.refusal(self.refused(accept, reason)))
            case UnsupportedCommand(command=number):
                log.warning("%s: unknown command %d, sent Accept 3", self.where, number)
                self._send(self.owamp.refusal(Accept.NOT_SUPPORTED))
            case _:
                raise TypeError(f"unexpected event {event!r}")

    # Request-Session (RFC 4656 §3.5)

    def _request_session(self, request: RequestSession) -> None:
        refusal = self._refusal(request) or self._budget_refusal(request)
        if self._shutting_down:
            refusal = Accept.TEMPORARY_RESOURCE_LIMITATION, "the server is shutting down"
        if refusal is not None:
            self._refuse_request(*refusal)
            return
        # Taken now, not once the schedule exists: concurrent requests cannot overshoot.
        self.quota.take(self.peer[0], request.num_packets)
        self._request = request
        port = request.receiver_port if request.conf_receiver else 0
        self._bind(self.local[0], port, type_p_dscp(request.type_p) or 0)

    def _bound(self, port: int, now: int) -> None:
        request = self._request
        if request is None:
            raise RuntimeError("a port bound for no request")
        sid = request.sid  # RFC 4656 §3.5: the receiver chooses the SID
        if request.conf_receiver:
            sid = new_sid(self.local[0], ns_to_ntp(now), self._random)
        self._scheduling = sid, port
        # A schedule can be a million timestamps: computed off the event loop (S2).
        self._wait_for(Awaiting.SCHEDULE, ComputeSchedule(request, sid))

    def schedule_ready(self, times: Sequence[int], now: int) -> None:
        """The answer to ``ComputeSchedule``: the session's send times; accept it now."""
        self._resume(Awaiting.SCHEDULE)
        request, self._request = self._request, None
        if request is None or self._scheduling is None or self.closed:
            return
        (sid, port), self._scheduling = self._scheduling, None
        self._open(request, sid, port, times)
        self._advance(now)

    def _open(self, request: RequestSession, sid: bytes, port: int, times: Sequence[int]) -> None:
        """Hand the session's engine to the driver and accept it (RFC 4656 §3.5)."""
        session = _Session(request, sid, times)
        protection = session_protection(self.mode, sid, self.keys)
        peer = self._peer_test_address(request)
        if request.conf_receiver:
            record = OwampSessionRecord(sid, "to", "", "", request.num_packets)
            session.receiver = OwampReceiver(record, times, request.timeout, protection)
            reproduction = replace(request, receiver_port=port, sid=sid)  # RFC 4656 §3.9
            self.received.add(sid, ReceivedSession(self.identity, reproduction, session.receiver))
            self._emit(OpenReceiver(sid, port, peer, session.receiver))
        else:
            # RFC 4656 §4.1.2: the padding is pseudo-random.
            session.sender = OwampSender(self._random(request.padding_length), protection)
            end = ns_to_ntp(session.end)
            self._emit(OpenSender(sid, port, peer, session.sender, times, request.timeout, end))
        self.sessions[sid] = session  # its quota was taken with the request
        role = "receiving from" if request.conf_receiver else "sending to"
        log.info(
            "OWAMP session %s: %s %s, %d packets, port %d",
            sid.hex(),
            role,
            fmt(*peer),
            request.num_packets,
            port,
        )
        self._send(self.owamp.accept_session(AcceptSession(Accept.OK, port, sid)))

    def _drop_request(self) -> None:
        """Forget the request in progress, giving its quota back."""
        if self._request is not None:
            self.quota.give(self.peer[0], self._request.num_packets)
        self._request = self._scheduling = None

    def _budget_refusal(self, request: RequestSession) -> tuple[Accept, str] | None:
        """Beyond this connection's scheduled packets: Accept 4; the server's: 5 (S2, S3)."""
        held = sum(s.request.num_packets for s in self.sessions.values())
        limit = self.policy.max_packets_per_connection
        if held + request.num_packets > limit:
            return (
                Accept.PERMANENT_RESOURCE_LIMITATION,
                f"{held} packets already scheduled on this connection, the limit is {limit}",
            )
        return self._quota_refusal(len(self.sessions), request.num_packets)

    def _refuse_request(self, accept: Accept, reason: str) -> None:
        self._drop_request()
        self._send(self.owamp.accept_session(AcceptSession(self.refused(accept, reason))))

    def _refusal(self, request: RequestSession) -> tuple[Accept, str] | None:
        """Why a request cannot be honoured, with its Accept value (RFC 4656 §3.3, §3.5)."""
        local, peer = self.local[0], self.peer[0]
        if request.conf_sender == request.conf_receiver:
            return Accept.NOT_SUPPORTED, "exactly one of Conf-Sender and Conf-Receiver must be set"
        if request.ipvn != ip_version(local):
            return (
                Accept.NOT_SUPPORTED,
                f"IPv{request.ipvn} session on an IPv{ip_version(local)} connection",
            )
        peer_address = request.sender_address if request.conf_receiver else request.receiver_address
        if not peer_address.is_unspecified and str(peer_address) != peer:
            return Accept.NOT_SUPPORTED, "the test peer is not the control client (no third party)"
        own_address = request.receiver_address if request.conf_receiver else request.sender_address
        if not own_address.is_unspecified and str(own_address) != local:
            return Accept.NOT_SUPPORTED, f"{own_address} is not this server's address here"
        if request.conf_sender and (request.receiver_port == 0 or request.sid == bytes(16)):
            return Accept.NOT_SUPPORTED, "a session we send needs the client's port and SID"
        if not 1 <= request.num_packets <= self.policy.max_packets:
            return (
                Accept.PERMANENT_RESOURCE_LIMITATION,
                f"{request.num_packets} packets, the limit is {self.policy.max_packets}",
            )
        mean = sum(slot.seconds for slot in request.slots) / len(request.slots)
        if mean < MIN_INTERVAL or mean * request.num_packets > MAX_DURATION:
            return (
                Accept.PERMANENT_RESOURCE_LIMITATION,
                f"impossible schedule: mean interval {mean:g} s for {request.num_packets} packets",
            )
        if ntp_to_duration(request.timeout) > MAX_TIMEOUT:
            return Accept.PERMANENT_RESOURCE_LIMITATION, f"Timeout above {MAX_TIMEOUT:g} s"
        if sender_size(protects(self.mode, self.keys), request.padding_length) > MAX_UDP_PAYLOAD:
            return (
                Accept.NOT_SUPPORTED,
                f"Padding Length {request.padding_length} exceeds a UDP datagram",
            )
        if request.conf_sender and type_p_dscp(request.type_p) is None:
            return Accept.NOT_SUPPORTED, f"Type-P Descriptor {request.type_p:#010x} is not a DSCP"
        return None

    # Start-Sessions and Stop-Sessions (RFC 4656 §3.7, §3.8)

    def _start(self, now: int) -> None:
        if self._shutting_down:
            self._send(
                self.owamp.start_ack(
                    self.refused(
                        Accept.TEMPORARY_RESOURCE_LIMITATION, "the server is shutting down"
                    )
                )
            )
            return
        fresh = [s for s in self.sessions.values() if not s.started]
        for session in fresh:
            session.started = True
            if session.receiver is not None:
                self._skip_limits[session.sid] = session.request.num_packets
        self._ever_started = True
        self._emit(StartTest(tuple(s.sid for s in fresh)))
        self._send(self.owamp.start_ack(Accept.OK))
        self._our_stop_sent = self._client_stopped_round = False
        if any(s.sender is not None for s in fresh):
            # Every session of the round, sent or received, must be complete first (§3.8).
            self._round_end = max(s.end for s in fresh)

    def _client_stopped(self, stop: StopSessions, now: int) -> None:
        """The client's Stop-Sessions: finish what we received, answer with ours (§3.8)."""
        self._finish_receivers(stop, now)
        self._client_stopped_round = True
        if self._our_stop_sent:
            self._end_round()
        else:
            self._round_end = None
            self._stop_our_senders()

    def _end_round(self) -> None:
        """Both Stop-Sessions crossed: the round's sockets go; what it received stays kept."""
        if self._client_stopped_round:
            self._release(tuple(sid for sid, s in self.sessions.items() if s.started))

    def _release(self, sids: tuple[bytes, ...]) -> None:
        if not sids:
            return
        self._emit(Release(sids))
        for sid in sids:
            session = self.sessions.pop(sid)
            self._skip_limits.pop(sid, None)
            self.quota.give(self.peer[0], session.request.num_packets)

    def _stop_our_senders(self) -> None:
        """Stop our send sessions before describing them (RFC 4656 §3.8)."""
        self._wait_for(Awaiting.SENDERS, StopSending(self._running_senders()))

    def _running(self) -> list[tuple[_Session, OwampSender]]:
        """Our send sessions started and not yet described in a Stop-Sessions."""
        return [
            (s, sender)
            for s in self.sessions.values()
            if (sender := s.sender) is not None and s.started and not s.stopped
        ]

    def _running_senders(self) -> tuple[bytes, ...]:
        return tuple(session.sid for session, _ in self._running())

    def _our_descriptions(self) -> tuple[SessionDescription, ...]:
        descriptions = []
        for session, sender in self._running():
            session.stopped = True
            next_seqno, skips = sender.stop_description()
            descriptions.append(SessionDescription(session.sid, next_seqno, skips))
        return tuple(descriptions)

    def _finish_receivers(self, stop: StopSessions | None, now: int) -> None:
        """Apply the client's descriptions; without one a session ends abnormally (§3.8)."""
        live = [
            (s, receiver)
            for s in self.sessions.values()
            if (receiver := s.receiver) is not None and s.started and not receiver.finished
        ]
        if not live:
            return
        self._emit(StopReceiving(tuple(s.sid for s, _ in live)))
        described = {} if stop is None else {d.sid: d for d in stop.sessions}
        stopped = Stamp(now, self._clock.sync, self._clock.error)
        for session, receiver in live:
            description = described.get(session.sid)
            if description is None:
                receiver.abandon(stopped)
            else:
                receiver.finish(description.next_seqno, description.skip_ranges, stopped)
            if stop is not None and stop.accept != Accept.OK:
                receiver.record.completed = False  # §3.8: results not to be trusted
            session.stopped = True
            self.received.finished(session.sid, now)

    # Fetch-Session (RFC 4656 §3.9)

    def _fetch(self, fetch: FetchSession, now: int) -> None:
        kept = self._fetchable(fetch, now)
        if kept is not None:
            self._wait_for(Awaiting.STREAM, SendStream(self._fetched(kept, fetch)))

    def stream_sent(self, now: int) -> None:
        """The driver wrote all of a SendStream: read the next command."""
        self._resume(Awaiting.STREAM)
        self._advance(now)

    def _fetchable(self, fetch: FetchSession, now: int) -> ReceivedSession | None:
        """The received session a Fetch-Session may have, or None once it is refused (§3.9)."""
        kept = self.received.find(fetch.sid, self.identity, now)
        if kept is None:
            self._fetch_refused(Accept.FAILURE, f"unknown SID {fetch.sid.hex()}")
            return None
        receiver = kept.receiver
        if fetch.complete and not receiver.finished:
            self._fetch_refused(
                Accept.TEMPORARY_RESOURCE_LIMITATION,
                f"the complete session {fetch.sid.hex()} is still in progress",
            )
            return None
        if fetch.complete and not receiver.record.completed:
            self._fetch_refused(
                Accept.FAILURE, f"the complete session {fetch.sid.hex()} ended abnormally"
            )
            return None
        return kept

    def _fetched(self, kept: ReceivedSession, fetch: FetchSession) -> Iterator[bytes]:
        """Fetch-Ack and the session data, counted and written a piece at a time (S2)."""
        receiver = kept.receiver
        counting = receiver.fetch(fetch.begin_seq, fetch.end_seq)
        while True:
            try:
                next(counting)
            except StopIteration as counted:
                count, records = counted.value
                break
            yield b""
        record = receiver.record
        if not receiver.finished:  # §3.9: Next Seqno and Skip Ranges are known only at the end
            ack = FetchAck(Accept.OK, False, 0, 0, count)
            yield from self.owamp.fetched(ack, FetchedSession(kept.request), records)
            return
        skips = tuple(SkipRange(first, last) for first, last in record.skipped)
        ack = FetchAck(Accept.OK, True, record.next_seqno or 0, len(skips), count)
        yield from self.owamp.fetched(ack, FetchedSession(kept.request, skips), records)

    def _fetch_refused(self, accept: Accept, reason: str) -> None:
        self.refused(accept, f"Fetch-Session: {reason}")
        self._send(self.owamp.fetch_ack(FetchAck(accept, False, 0, 0, 0), None))

    def _peer_test_address(self, request: RequestSession) -> Endpoint:
        port = request.sender_port if request.conf_receiver else request.receiver_port
        return self.peer[0], port
