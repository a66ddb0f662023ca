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

from otwamp.control.events import (
    NEED_DATA,
    ClientEvent,
    GreetingReceived,
    ServerStarted,
    SessionAccepted,
    StartAcked,
)
from otwamp.control.twamp_client import TwampClientConnection
from otwamp.drivers.clock import ClockState, clock_state, now_ntp
from otwamp.drivers.pacer import PacerPlan, run_session
from otwamp.drivers.udp import open_test_socket
from otwamp.errors import OtwampError, ProtocolError, RefusedError
from otwamp.results.records import TwampSessionRecord
from otwamp.session.schedule import Schedule, send_offsets
from otwamp.session.sender import SessionSender
from otwamp.wire.registry import Accept, TwampMode, mode_names
from otwamp.wire.setup import SetUpResponse
from otwamp.wire.timestamp import duration_to_ntp
from otwamp.wire.twamp_control import RequestTwSession, dscp_type_p

TWAMP_PORT = 862


@dataclass(frozen=True, slots=True)
class PingSettings:
    """One measurement as the operator asked for it."""

    host: str
    port: int = TWAMP_PORT
    family: socket.AddressFamily = socket.AF_UNSPEC
    count: int = 100
    interval: float = 0.1
    schedule: Schedule = Schedule.FIXED
    padding: int = 0
    dscp: int = 0
    wait: float = 2.0  # seconds to wait for replies after the last send (RFC 5357 §3.5 Timeout)
    control_timeout: float = 10.0  # seconds to wait for each control response


@dataclass(slots=True)
class PingOutcome:
    """The session's records, and why it ended early if it did."""

    record: TwampSessionRecord
    problem: str | None = None
    clock: ClockState | None = None


class _Control:
    """A TWAMP-Control client connection over asyncio streams."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float
    ) -> None:
        self.reader, self.writer, self.timeout = reader, writer, timeout
        self.machine = TwampClientConnection()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def receive(self, what: str) -> ClientEvent:
        """The next event; ``what`` names the awaited message in errors."""
        while (event := self.machine.next_event()) is NEED_DATA:
            try:
                data = await asyncio.wait_for(self.reader.read(65536), self.timeout)
            except TimeoutError:
                raise OtwampError(f"the server sent no {what} within {self.timeout:g} s") from None
            if not data:
                raise OtwampError(f"the server closed the control connection before its {what}")
            self.machine.receive_data(data)
        return event


async def ping(
    settings: PingSettings, on_start: Callable[[TwampSessionRecord], None] | None = None
) -> PingOutcome:
    """Run one TWAMP measurement against ``settings.host``; ``on_start`` sees the live record."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(settings.host, settings.port, family=settings.family),
        settings.control_timeout,
    )
    control = _Control(reader, writer, settings.control_timeout)
    try:
        return await _measure(control, settings, on_start)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _measure(
    control: _Control, settings: PingSettings, on_start: Callable[[TwampSessionRecord], None] | None
) -> PingOutcome:
    await _set_up(control)
    local = control.writer.get_extra_info("sockname")
    peer = control.writer.get_extra_info("peername")
    family = socket.AF_INET6 if ":" in peer[0] else socket.AF_INET
    sock = open_test_socket(local[0], 0, family, settings.dscp, _buffer_for(settings))
    try:
        port, sid = await _request(control, settings, local[0], peer[0], sock.getsockname()[1])
        await control.send(control.machine.start_sessions())
        ack = await control.receive("Start-Ack")
        assert isinstance(ack, StartAcked)
        _check_accept(ack.ack.accept, "Start-Sessions")
        clock = clock_state()
        record = TwampSessionRecord(sid=sid, mode="open", key_source="none")
        if on_start is not None:
            on_start(record)
        problem = await _run(control, sock, (peer[0], port), record, settings, clock)
        if problem is None:
            await control.send(control.machine.stop_sessions(Accept.OK, 1))
        return PingOutcome(record, problem, clock)
    finally:
        sock.close()


async def _set_up(control: _Control) -> None:
    event = await control.receive("Server-Greeting")
    assert isinstance(event, GreetingReceived)
    modes = event.greeting.modes
    if modes == 0:
        raise RefusedError("the server refused the connection (Server-Greeting with Modes 0)")
    if not modes & TwampMode.UNAUTHENTICATED:
        offered = ", ".join(mode_names(modes)) or f"{modes:#x}"
        raise RefusedError(f"the server offers no mode this client can use (offered: {offered})")
    await control.send(control.machine.setup(SetUpResponse(int(TwampMode.UNAUTHENTICATED))))
    started = await control.receive("Server-Start")
    assert isinstance(started, ServerStarted)
    _check_accept(started.start.accept, "the connection set-up")


async def _request(
    control: _Control, settings: PingSettings, local: str, peer: str, sender_port: int
) -> tuple[int, bytes]:
    """Request the session (RFC 5357 §3.5); return the reflector's port and the SID."""
    request = RequestTwSession(
        sender_address=ipaddress.ip_address(local.split("%", 1)[0]),
        receiver_address=ipaddress.ip_address(peer.split("%", 1)[0]),
        sender_port=sender_port,
        receiver_port=sender_port,
        padding_length=settings.padding,
        start_time=now_ntp(),
        timeout=duration_to_ntp(settings.wait),
        type_p=dscp_type_p(settings.dscp),
    )
    await control.send(control.machine.request_session(request))
    event = await control.receive("Accept-Session")
    assert isinstance(event, SessionAccepted)
    _check_accept(event.accept.accept, "Request-TW-Session")
    return event.accept.port, event.accept.sid


def _check_accept(value: int, what: str) -> None:
    """Raise RefusedError naming the Accept value's meaning (RFC 4656 §3.3)."""
    if value != Accept.OK:
        accept = Accept.interpret(value)
        raise RefusedError(f"the server refused {what}: Accept {value} ({accept.meaning})")


def _buffer_for(settings: PingSettings) -> int:
    """A receive buffer that holds every reply of the session at once (never lose one arrived)."""
    per_packet = max(settings.padding + 41, 112) + 512  # payload plus kernel overhead
    return min(max(settings.count * per_packet, 4 << 20), 256 << 20)


async def _run(
    control: _Control,
    sock: socket.socket,
    reflector: tuple[str, int],
    record: TwampSessionRecord,
    settings: PingSettings,
    clock: ClockState,
) -> str | None:
    """Run the pacer thread while watching the control connection; return why it ended early."""
    offsets = send_offsets(
        settings.count, settings.interval, settings.schedule, random.SystemRandom()
    )
    plan = PacerPlan(offsets, settings.wait)
    stop = threading.Event()
    sender = SessionSender(record, os.urandom(settings.padding))  # RFC 4656 §4.1.2: random padding
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
    record.completed = problem is None
    return problem


def _control_problem(control: _Control, watcher: "asyncio.Task[bytes]") -> str:
    """Why the control connection spoke or ended while the test ran."""
    if watcher.exception() is not None or not watcher.result():
        return "the server closed the control connection during the test"
    try:
        control.machine.receive_data(watcher.result())
        control.machine.next_event()
    except ProtocolError as exc:
        return f"the server sent an unexpected control message during the test: {exc}"
    return "the server sent an unexpected control message during the test"
