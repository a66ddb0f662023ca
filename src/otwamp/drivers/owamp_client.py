"""The asyncio OWAMP client behind ``otwamp owping`` (RFC 4656).

One control connection asks for a "to" session (we send, the server
receives) and a "from" session (the server sends, we receive), starts them,
runs the test in a worker thread, exchanges Stop-Sessions and fetches the
"to" session's records from the server (RFC 4656 §3.5-3.9).
"""

import asyncio
import contextlib
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from otwamp.control.events import SessionAccepted, StartAcked
from otwamp.control.owamp_client import OwampClientConnection
from otwamp.control.owamp_events import Fetched, SessionsStopped
from otwamp.control.sid import new_sid
from otwamp.drivers.clock import ClockState, clock_state, now_ntp
from otwamp.drivers.control_client import Control, PingSettings, Security, connect, set_up
from otwamp.drivers.owamp_pacer import Receiving, Sending, run_owamp
from otwamp.drivers.udp import connect_peer, open_test_socket, send_destination
from otwamp.errors import OtwampError
from otwamp.results.owamp import fetched_discard_start
from otwamp.results.records import OwampSessionRecord, Stamp
from otwamp.session.owamp_receiver import OwampReceiver
from otwamp.session.owamp_sender import OwampSender
from otwamp.session.protection import session_protection
from otwamp.session.slots import request_send_times, slots_for
from otwamp.wire.owamp_control import RequestSession
from otwamp.wire.owamp_fetch import FetchSession, PacketRecords
from otwamp.wire.owamp_stop import SessionDescription, StopSessions
from otwamp.wire.registry import MODE_NAMES, Accept
from otwamp.wire.timestamp import duration_to_ntp, ntp_add, ntp_diff, ntp_to_duration, ntp_to_ns
from otwamp.wire.twamp_control import dscp_type_p

OWAMP_PORT = 861  # RFC 4656 §3.1
START_DELAY = 0.5  # seconds from the requests to the sessions' Start Time (RFC 4656 §3.5)


@dataclass(slots=True)
class OwpingOutcome:
    """Both directions' records, the mode, and why the measurement ended early if it did."""

    to: OwampSessionRecord | None
    from_: OwampSessionRecord | None
    mode: str
    key_source: str
    problem: str | None = None
    clock: ClockState | None = None
    ike_spis: tuple[str, str] | None = None  # the IKE SA keying the sessions (RFC 7717)


@dataclass(slots=True)
class _Plan:
    """What both sessions share."""

    local: str
    peer: str
    security: Security
    start_time: int
    timeout: int
    padding: int


async def owping(settings: PingSettings) -> OwpingOutcome:
    """Measure one-way delay to and/or from ``settings.host`` with OWAMP."""
    control = await connect(settings, OwampClientConnection)
    try:
        return await _measure(control, settings)
    finally:
        control.writer.close()
        with contextlib.suppress(OSError):
            await control.writer.wait_closed()


async def _measure(
    control: Control[OwampClientConnection], settings: PingSettings
) -> OwpingOutcome:
    local = control.writer.get_extra_info("sockname")[0]
    peer = control.writer.get_extra_info("peername")[0]
    security = await set_up(control, settings, peer)
    start = ntp_add(now_ntp(), duration_to_ntp(START_DELAY))
    plan = _Plan(
        local, peer, security, start, duration_to_ntp(settings.wait), settings.padding or 0
    )
    family = socket.AF_INET6 if ":" in peer else socket.AF_INET
    with contextlib.ExitStack() as sockets:
        to = from_ = None
        if "to" in settings.directions:
            sock = sockets.enter_context(open_test_socket(local, 0, family, settings.dscp))
            to = await _request_to(control, settings, plan, sock)
        if "from" in settings.directions:
            sock = sockets.enter_context(open_test_socket(local, 0, family, settings.dscp))
            from_ = await _request_from(control, settings, plan, sock)
        await control.send(control.machine.start_sessions())
        await control.receive(StartAcked)
        clock = clock_state()
        mode, source = MODE_NAMES[security.mode], security.key_source
        outcome = OwpingOutcome(
            None,
            from_.receiving.receiver.record if from_ else None,
            mode,
            source,
            clock=clock,
            ike_spis=security.ike_spis,
        )
        outcome.problem = await _run(control, plan, to, from_, clock)
        if outcome.problem is None and to is not None:
            outcome.to = await _fetch(control, to, plan)
        return outcome


@dataclass(slots=True)
class _To:
    """Our "to" session: we send it; the server chose its SID."""

    sending: Sending
    sid: bytes


@dataclass(slots=True)
class _From:
    """Our "from" session: we receive it and chose its SID."""

    receiving: Receiving
    sid: bytes
    times: Sequence[int]


async def _request(
    control: Control[OwampClientConnection], request: RequestSession
) -> tuple[int, bytes]:
    """Send a Request-Session; return the Accept-Session's Port and SID (RFC 4656 §3.5)."""
    await control.send(control.machine.request_session(request))
    accepted = (await control.receive(SessionAccepted)).accept
    return accepted.port, accepted.sid


def _session_request(settings: PingSettings, plan: _Plan, **addressing: Any) -> RequestSession:
    """A Request-Session with what both directions share (RFC 4656 §3.5)."""
    return RequestSession(
        slots=tuple(slots_for(settings.schedule, settings.interval)),
        num_packets=settings.count,
        padding_length=plan.padding,
        start_time=plan.start_time,
        timeout=plan.timeout,
        type_p=dscp_type_p(settings.dscp),
        **addressing,
    )


async def _request_to(
    control: Control[OwampClientConnection],
    settings: PingSettings,
    plan: _Plan,
    sock: socket.socket,
) -> _To:
    """The "to" session: we send, the server receives and chooses the SID (RFC 4656 §3.5)."""
    request = _session_request(
        settings,
        plan,
        sender_address=_address(plan.local),
        receiver_address=_address(plan.peer),
        sender_port=sock.getsockname()[1],
        receiver_port=0,
        conf_receiver=True,
    )
    port, sid = await _request(control, request)
    protection = session_protection(plan.security.mode_word, sid, plan.security.keys)
    sender = OwampSender(os.urandom(plan.padding), protection)  # RFC 4656 §4.1.2: random padding
    return _To(
        Sending(
            sock,
            send_destination(sock, (plan.peer, port)),
            sender,
            request_send_times(request, sid),
            plan.timeout,
        ),
        sid,
    )


async def _request_from(
    control: Control[OwampClientConnection],
    settings: PingSettings,
    plan: _Plan,
    sock: socket.socket,
) -> _From:
    """The "from" session: the server sends, we receive and choose the SID (RFC 4656 §3.5)."""
    sid = new_sid(plan.local, now_ntp(), os.urandom)
    request = _session_request(
        settings,
        plan,
        sender_address=_address(plan.peer),
        receiver_address=_address(plan.local),
        sender_port=0,
        receiver_port=sock.getsockname()[1],
        conf_sender=True,
        sid=sid,
    )
    port, _ = await _request(control, request)
    security = plan.security
    record = OwampSessionRecord(
        sid, "from", MODE_NAMES[security.mode], security.key_source, settings.count
    )
    times = request_send_times(request, sid)
    protection = session_protection(security.mode_word, sid, security.keys)
    receiver = OwampReceiver(record, times, plan.timeout, protection)
    sock.setblocking(False)
    # Only the server's sender reaches us: its port came in Accept-Session (RFC 4656 §3.5).
    source = connect_peer(sock, (plan.peer, port))
    return _From(Receiving(sock, source, receiver), sid, times)


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(host.split("%", 1)[0])


async def _run(
    control: Control[OwampClientConnection],
    plan: _Plan,
    to: _To | None,
    from_: _From | None,
    clock: ClockState,
) -> str | None:
    """Run the test, then exchange Stop-Sessions (RFC 4656 §3.8); return why it ended early."""
    lasts = ([to.sending.times[-1]] if to else []) + ([from_.times[-1]] if from_ else [])
    last = max(lasts, key=lambda t: ntp_diff(t, plan.start_time))  # wrap-safe (RFC 5905 §6)
    end = ntp_add(last, plan.timeout)  # RFC 4656 §3.8: Stop-Sessions Timeout past the last packet
    stop = threading.Event()
    sending, receiving = (to.sending if to else None), (from_.receiving if from_ else None)
    pacer = asyncio.create_task(asyncio.to_thread(run_owamp, sending, receiving, end, clock, stop))
    server_stop = asyncio.create_task(control.receive(SessionsStopped, timeout=None))
    await asyncio.wait({pacer, server_stop}, return_when=asyncio.FIRST_COMPLETED)
    if server_stop.done():  # RFC 4656 §3.8: a premature stop ends our send sessions too
        stop.set()
    await pacer
    if server_stop.done() and server_stop.exception() is not None:
        return f"{server_stop.exception()} (during the test)"
    descriptions: tuple[SessionDescription, ...] = ()
    if to is not None:
        next_seqno, skips = to.sending.sender.stop_description()
        descriptions = (SessionDescription(to.sid, next_seqno, skips),)
    try:
        await control.send(control.machine.stop_sessions(StopSessions(Accept.OK, descriptions)))
    except OSError:  # ConnectionError included: the server is gone
        return "the server closed the control connection before our Stop-Sessions"
    try:
        event = await asyncio.wait_for(server_stop, control.timeout + ntp_to_duration(plan.timeout))
    except (OtwampError, TimeoutError) as exc:
        return str(exc) or "the server sent no Stop-Sessions"
    if from_ is not None:
        _finish(from_, event.stop, clock)
        from_.receiving.receiver.record.incomplete = control.machine.incomplete
    return None


def _finish(from_: _From, stop: StopSessions, clock: ClockState) -> None:
    """Apply the server's Stop-Sessions to the session we received (RFC 4656 §3.8)."""
    stopped = Stamp(time.time_ns(), clock.synchronized, clock.error)
    receiver = from_.receiving.receiver
    for description in stop.sessions:
        if description.sid == from_.sid:
            receiver.finish(description.next_seqno, description.skip_ranges, stopped)
            return
    receiver.abandon(stopped)


async def _fetch(
    control: Control[OwampClientConnection], to: _To, plan: _Plan
) -> OwampSessionRecord:
    """The server's records of our "to" session (RFC 4656 §3.9), straight into columns."""
    await control.send(control.machine.fetch_session(FetchSession(to.sid)))
    event = await control.receive(Fetched)
    records = event.data.records
    assert isinstance(records, PacketRecords)  # as decoded
    next_seqno, skips = to.sending.sender.stop_description()
    security = plan.security
    record = OwampSessionRecord(
        to.sid,
        "to",
        MODE_NAMES[security.mode],
        security.key_source,
        len(to.sending.times),
        next_seqno=next_seqno,
        skipped=[(skip.first, skip.last) for skip in skips],
        incomplete=control.machine.incomplete,  # RFC 4656 §3.8: the server's Accept
        # The server's receiver discarded what arrived within Timeout of the stop (§3.8).
        discarded_from=fetched_discard_start((f[0] for f in records.fields()), next_seqno),
    )
    arrivals = record.arrivals
    code = arrivals.estimates.wire_code
    # RFC 4656 §3.9: a Receive Timestamp of zero is a lost packet; TTL 255 means unknown.
    for seq, send_error, receive_error, sent, received, ttl in records.fields():
        if received:
            send_code, receive_code = code(send_error), code(receive_error)
            arrivals.add(seq, sent, send_code, ntp_to_ns(received), receive_code, ttl)
    return record
