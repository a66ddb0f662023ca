"""The asyncio TWAMP client: one control connection, one test session (RFC 5357).

The control machine decides what is valid; this module moves octets, opens
the test socket and hands the session to the pacer thread. The optional
modes are used where the server offers them: Individual Session Control
(RFC 5938) with ``start_n``, Reflect Octets (RFC 6038) with
``reflect_octets``, Symmetrical Size (RFC 6038) when the padding is ours to
choose, and DSCP and ECN Monitoring (RFC 7750) always.
"""

import asyncio
import contextlib
import ipaddress
import os
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from otwamp.control.events import SessionAccepted, SessionsAcked, StartAcked
from otwamp.control.twamp_client import TwampClientConnection
from otwamp.drivers.clock import ClockState, clock_state, now_ntp
from otwamp.drivers.control_client import Control, PingSettings, connect, set_up
from otwamp.drivers.pacer import PacerPlan, run_session
from otwamp.drivers.stamp_reflector import enable_ancillary
from otwamp.drivers.udp import connect_peer, open_test_socket
from otwamp.errors import OtwampError, ProtocolError, RefusedError
from otwamp.results.records import TwampSessionRecord
from otwamp.results.twamp_features import FeatureTally
from otwamp.session.protection import session_protection
from otwamp.session.schedule import send_offsets
from otwamp.session.sender import SessionSender
from otwamp.wire.registry import MODE_NAMES, Accept, TwampMode
from otwamp.wire.timestamp import duration_to_ntp
from otwamp.wire.twamp_control import AcceptSession, RequestTwSession, dscp_type_p
from otwamp.wire.twamp_features import PacketFormat
from otwamp.wire.twamp_test import REFLECTOR_AUTH_SIZE

TWAMP_PORT = 862
REFLECT_OCTETS = TwampMode.REFLECT_OCTETS


@dataclass(slots=True)
class PingOutcome:
    """The session's records, and why it ended early if it did."""

    record: TwampSessionRecord
    problem: str | None = None
    clock: ClockState | None = None
    ike_spis: tuple[str, str] | None = None  # the IKE SA keying the session (RFC 7717)
    modes: int = 0  # the optional-mode bits used (RFC 5938, 6038, 7750)
    tally: FeatureTally | None = None  # what the RFC 6038 / RFC 7750 modes showed


async def ping(
    settings: PingSettings, on_start: Callable[[TwampSessionRecord], None] | None = None
) -> PingOutcome:
    """Run one TWAMP measurement against ``settings.host``; ``on_start`` sees the live record."""
    control = await connect(settings, TwampClientConnection)
    try:
        return await _measure(control, settings, on_start)
    finally:
        control.writer.close()
        with contextlib.suppress(OSError):
            await control.writer.wait_closed()


async def _measure(
    control: Control[TwampClientConnection],
    settings: PingSettings,
    on_start: Callable[[TwampSessionRecord], None] | None,
) -> PingOutcome:
    local = control.writer.get_extra_info("sockname")
    peer = control.writer.get_extra_info("peername")
    control.machine.want(_wanted(settings))
    security = await set_up(control, settings, peer[0])
    if settings.reflect_octets is not None and not control.machine.agreed & REFLECT_OCTETS:
        raise RefusedError("the server does not offer Reflect Octets (RFC 6038)")
    protected = security.mode in (TwampMode.AUTHENTICATED, TwampMode.ENCRYPTED)
    form = PacketFormat.of(security.mode_word, protected, settings.reflect_octets or 0)
    padding = form.equal_padding if settings.padding is None else settings.padding
    family = socket.AF_INET6 if ":" in peer[0] else socket.AF_INET
    sock = open_test_socket(
        local[0], 0, family, settings.dscp, _buffer_for(settings.count, padding)
    )
    try:
        if form.dscp_ecn:
            enable_ancillary(sock)  # the replies' DS field: the backward path (RFC 7750)
        accepted = await _request(
            control, settings, form, padding, local[0], peer[0], sock.getsockname()[1]
        )
        sid = accepted.sid
        individual = bool(control.machine.agreed & TwampMode.INDIVIDUAL_SESSION_CONTROL)
        await _start(control, sid, individual)
        clock = clock_state()
        record = TwampSessionRecord(
            sid=sid, mode=MODE_NAMES[security.mode], key_source=security.key_source
        )
        if on_start is not None:
            on_start(record)
        tally = None
        if form.dscp_ecn or form.reflect_length:
            tally = FeatureTally(settings.dscp, form.dscp_ecn, form.reflect_length or 0)
        sender = SessionSender(
            record,
            # RFC 4656 §4.1.2: padding SHOULD be random; RFC 6038 §5.1 places its octets
            form.sender_padding(padding, accepted.server_octets, os.urandom(padding)),
            session_protection(security.mode_word, sid, security.keys),
            form,
            tally,
        )
        # Only the reflector's replies reach us: RFC 5357 §3.5, its port in Accept-Session.
        reflector = connect_peer(sock, (peer[0], accepted.port))
        problem = await _run(control, sock, reflector, sender, settings, clock)
        if problem is None:
            await _stop(control, sid, individual)
        outcome = PingOutcome(record, problem, clock, security.ike_spis)
        outcome.modes, outcome.tally = control.machine.agreed, tally
        return outcome
    finally:
        sock.close()


def _wanted(settings: PingSettings) -> int:
    """The optional modes to use where offered (RFC 5938, RFC 6038, RFC 7750)."""
    wanted = TwampMode.REFLECT_DSCP_ECN
    if settings.start_n:
        wanted |= TwampMode.INDIVIDUAL_SESSION_CONTROL
    if settings.reflect_octets is not None:
        wanted |= TwampMode.REFLECT_OCTETS
    if settings.padding is None:  # an explicit --padding is sent as given
        wanted |= TwampMode.SYMMETRICAL_SIZE
    return int(wanted)


async def _start(control: Control[TwampClientConnection], sid: bytes, individual: bool) -> None:
    """Start-Sessions, or Start-N-Sessions for our one SID (RFC 4656 §3.7, RFC 5938 §3.2)."""
    if not individual:
        await control.send(control.machine.start_sessions())
        await control.receive(StartAcked)
        return
    await control.send(control.machine.start_n_sessions((sid,)))
    ack = await control.receive(SessionsAcked)
    if ack.accept != Accept.OK:
        meaning = Accept.interpret(ack.accept).meaning
        raise RefusedError(f"the server refused Start-N-Sessions: Accept {ack.accept} ({meaning})")


async def _stop(control: Control[TwampClientConnection], sid: bytes, individual: bool) -> None:
    """Stop-Sessions, or Stop-N-Sessions and its Stop-N-Ack (RFC 5357 §3.8, RFC 5938 §3.4)."""
    if not individual:
        await control.send(control.machine.stop_sessions(Accept.OK, 1))
        return
    await control.send(control.machine.stop_n_sessions((sid,)))
    await control.receive(SessionsAcked)


async def _request(
    control: Control[TwampClientConnection],
    settings: PingSettings,
    form: PacketFormat,
    padding: int,
    local: str,
    peer: str,
    sender_port: int,
) -> AcceptSession:
    """Request the session (RFC 5357 §3.5); return the Accept-Session (port, SID...)."""
    octets = int.from_bytes(os.urandom(2)) if form.reflect_length is not None else 0
    request = RequestTwSession(
        sender_address=ipaddress.ip_address(local.split("%", 1)[0]),
        receiver_address=ipaddress.ip_address(peer.split("%", 1)[0]),
        sender_port=sender_port,
        receiver_port=sender_port,
        padding_length=padding,
        start_time=now_ntp(),
        timeout=duration_to_ntp(settings.wait),
        type_p=dscp_type_p(settings.dscp),
        reflect_octets=octets,  # RFC 6038 §4.2
        reflect_length=form.reflect_length or 0,
    )
    await control.send(control.machine.request_session(request))
    accepted = (await control.receive(SessionAccepted)).accept
    if accepted.reflected_octets != octets:  # RFC 6038 §4.3: SHALL contain our octets
        raise OtwampError(
            f"the server's Accept-Session reflected octets {accepted.reflected_octets:#06x}, "
            f"not the {octets:#06x} sent (RFC 6038 §4.3)"
        )
    return accepted


def _buffer_for(count: int, padding: int) -> int:
    """A receive buffer that holds every reply of the session at once (never lose one arrived)."""
    per_packet = REFLECTOR_AUTH_SIZE + padding + 512  # payload plus kernel overhead
    return min(max(count * per_packet, 4 << 20), 256 << 20)


async def _run(
    control: Control[TwampClientConnection],
    sock: socket.socket,
    reflector: tuple[str, int],
    sender: SessionSender,
    settings: PingSettings,
    clock: ClockState,
) -> str | None:
    """Run the pacer thread while watching the control connection; return why it ended early."""
    offsets = send_offsets(
        settings.count, settings.interval, settings.schedule, random.SystemRandom()
    )
    plan = PacerPlan(offsets, settings.wait)
    stop = threading.Event()
    pacer = asyncio.create_task(
        asyncio.to_thread(run_session, sock, reflector, sender, plan, clock, stop)
    )
    watcher = asyncio.create_task(control.reader.read(65536))
    await asyncio.wait({pacer, watcher}, return_when=asyncio.FIRST_COMPLETED)
    problem = None
    if watcher.done():
        stop.set()
        problem = _control_problem(control, watcher)
    watcher.cancel()
    await pacer
    sender.record.completed = problem is None
    return problem


def _control_problem(
    control: Control[TwampClientConnection], watcher: "asyncio.Task[bytes]"
) -> str:
    """Why the control connection spoke or ended while the test ran."""
    if watcher.exception() is not None or not watcher.result():
        return "the server closed the control connection during the test"
    try:
        control.machine.receive_data(watcher.result())
        control.machine.next_event()
    except ProtocolError as exc:
        return f"the server sent an unexpected control message during the test: {exc}"
    return "the server sent an unexpected control message during the test"
