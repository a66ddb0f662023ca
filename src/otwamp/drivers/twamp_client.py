"""The asyncio TWAMP client: one control connection, one test session (RFC 5357).

The control machine decides what is valid; this module moves octets, opens
the test socket and hands the session to the pacer thread.
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

from otwamp.control.events import SessionAccepted, StartAcked
from otwamp.control.twamp_client import TwampClientConnection
from otwamp.drivers.clock import ClockState, clock_state, now_ntp
from otwamp.drivers.control_client import Control, PingSettings, connect, set_up
from otwamp.drivers.pacer import PacerPlan, run_session
from otwamp.drivers.udp import connect_peer, open_test_socket
from otwamp.errors import ProtocolError
from otwamp.results.records import TwampSessionRecord
from otwamp.session.protection import session_protection
from otwamp.session.schedule import send_offsets
from otwamp.session.sender import SessionSender
from otwamp.wire.registry import MODE_NAMES, Accept, TwampMode
from otwamp.wire.timestamp import duration_to_ntp
from otwamp.wire.twamp_control import RequestTwSession, dscp_type_p
from otwamp.wire.twamp_test import (
    REFLECTOR_AUTH_SIZE,
    REFLECTOR_OPEN_SIZE,
    SENDER_AUTH_SIZE,
    SENDER_OPEN_SIZE,
)

TWAMP_PORT = 862


@dataclass(slots=True)
class PingOutcome:
    """The session's records, and why it ended early if it did."""

    record: TwampSessionRecord
    problem: str | None = None
    clock: ClockState | None = None
    ike_spis: tuple[str, str] | None = None  # the IKE SA keying the session (RFC 7717)


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
    security = await set_up(control, settings, peer[0])
    protected = security.mode in (TwampMode.AUTHENTICATED, TwampMode.ENCRYPTED)
    padding = _padding(settings, protected)
    family = socket.AF_INET6 if ":" in peer[0] else socket.AF_INET
    sock = open_test_socket(
        local[0], 0, family, settings.dscp, _buffer_for(settings.count, padding)
    )
    try:
        port, sid = await _request(
            control, settings, padding, local[0], peer[0], sock.getsockname()[1]
        )
        await control.send(control.machine.start_sessions())
        await control.receive(StartAcked)
        clock = clock_state()
        record = TwampSessionRecord(
            sid=sid, mode=MODE_NAMES[security.mode], key_source=security.key_source
        )
        if on_start is not None:
            on_start(record)
        sender = SessionSender(
            record,
            os.urandom(padding),  # RFC 4656 §4.1.2: padding SHOULD be random
            session_protection(security.mode_word, sid, security.keys),
        )
        # Only the reflector's replies reach us: RFC 5357 §3.5, its port in Accept-Session.
        reflector = connect_peer(sock, (peer[0], port))
        problem = await _run(control, sock, reflector, sender, settings, clock)
        if problem is None:
            await control.send(control.machine.stop_sessions(Accept.OK, 1))
        return PingOutcome(record, problem, clock, security.ike_spis)
    finally:
        sock.close()


async def _request(
    control: Control[TwampClientConnection],
    settings: PingSettings,
    padding: int,
    local: str,
    peer: str,
    sender_port: int,
) -> tuple[int, bytes]:
    """Request the session (RFC 5357 §3.5); return the reflector's port and the SID."""
    request = RequestTwSession(
        sender_address=ipaddress.ip_address(local.split("%", 1)[0]),
        receiver_address=ipaddress.ip_address(peer.split("%", 1)[0]),
        sender_port=sender_port,
        receiver_port=sender_port,
        padding_length=padding,
        start_time=now_ntp(),
        timeout=duration_to_ntp(settings.wait),
        type_p=dscp_type_p(settings.dscp),
    )
    await control.send(control.machine.request_session(request))
    accepted = (await control.receive(SessionAccepted)).accept
    return accepted.port, accepted.sid


def _padding(settings: PingSettings, protected: bool) -> int:
    """Packet Padding: as asked, or enough for equal sizes both ways (RFC 5357 §4.1.2, D14)."""
    if settings.padding is not None:
        return settings.padding
    if protected:
        return REFLECTOR_AUTH_SIZE - SENDER_AUTH_SIZE
    return REFLECTOR_OPEN_SIZE - SENDER_OPEN_SIZE


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
