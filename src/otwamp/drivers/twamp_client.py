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
from dataclasses import dataclass, field

from otwamp.control.events import (
    NEED_DATA,
    ClientEvent,
    GreetingReceived,
    ServerStarted,
    SessionAccepted,
    StartAcked,
)
from otwamp.control.security import DEFAULT_MAX_COUNT, check_count, choose_mode, client_setup
from otwamp.control.twamp_client import TwampClientConnection
from otwamp.drivers.clock import ClockState, clock_state, now_ntp
from otwamp.drivers.pacer import PacerPlan, run_session
from otwamp.drivers.udp import open_test_socket
from otwamp.errors import (
    AuthenticationError,
    KeySourceError,
    OtwampError,
    ProtocolError,
    RefusedError,
)
from otwamp.keys.source import ClientKeySource
from otwamp.results.records import TwampSessionRecord
from otwamp.security.sessionkeys import SessionKeys
from otwamp.session.protection import session_protection
from otwamp.session.schedule import Schedule, send_offsets
from otwamp.session.sender import SessionSender
from otwamp.wire.registry import MODE_NAMES, Accept, TwampMode, mode_names
from otwamp.wire.timestamp import duration_to_ntp
from otwamp.wire.twamp_control import RequestTwSession, dscp_type_p
from otwamp.wire.twamp_test import (
    REFLECTOR_AUTH_SIZE,
    REFLECTOR_OPEN_SIZE,
    SENDER_AUTH_SIZE,
    SENDER_OPEN_SIZE,
)

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
    padding: int | None = None  # None: symmetric packets (27 or 64 octets, RFC 5357 §4.1.2)
    dscp: int = 0
    wait: float = 2.0  # seconds to wait for replies after the last send (RFC 5357 §3.5 Timeout)
    control_timeout: float = 10.0  # seconds to wait for each control response
    modes: tuple[TwampMode, ...] = (TwampMode.UNAUTHENTICATED,)  # the client's acceptable modes
    keys: ClientKeySource | None = None
    max_count: int = DEFAULT_MAX_COUNT  # highest PBKDF2 Count accepted (D11)


@dataclass(frozen=True, slots=True)
class _Security:
    """What connection set-up settled: the mode, keys and where they came from."""

    mode: TwampMode
    mode_word: int
    keys: SessionKeys | None = field(repr=False)
    key_source: str
    label: str


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
        while (event := self._next(what)) is NEED_DATA:
            try:
                data = await asyncio.wait_for(self.reader.read(65536), self.timeout)
            except TimeoutError:
                raise OtwampError(f"the server sent no {what} within {self.timeout:g} s") from None
            if not data:
                raise OtwampError(f"the server closed the control connection before its {what}")
            self.machine.receive_data(data)
        return event

    def _next(self, what: str) -> ClientEvent:
        try:
            return self.machine.next_event()
        except AuthenticationError:
            raise OtwampError(
                f"the server's {what} failed its HMAC check (wrong key, or altered on the path)"
            ) from None


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
    local = control.writer.get_extra_info("sockname")
    peer = control.writer.get_extra_info("peername")
    security = await _set_up(control, settings, peer[0])
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
        ack = await control.receive("Start-Ack")
        assert isinstance(ack, StartAcked)
        _check_accept(ack.ack.accept, "Start-Sessions")
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
        problem = await _run(control, sock, (peer[0], port), sender, settings, clock)
        if problem is None:
            await control.send(control.machine.stop_sessions(Accept.OK, 1))
        return PingOutcome(record, problem, clock)
    finally:
        sock.close()


async def _set_up(control: _Control, settings: PingSettings, server: str) -> _Security:
    """Greeting, Set-Up-Response and Server-Start (RFC 4656 §3.1) in the strongest common mode."""
    event = await control.receive("Server-Greeting")
    assert isinstance(event, GreetingReceived)
    greeting = event.greeting
    if greeting.modes == 0:
        raise RefusedError("the server refused the connection (Server-Greeting with Modes 0)")
    mode = choose_mode(greeting.modes, settings.modes)
    if mode is None:
        offered = ", ".join(mode_names(greeting.modes)) or f"{greeting.modes:#x}"
        wanted = ", ".join(MODE_NAMES[m] for m in settings.modes)
        raise RefusedError(
            f"no common mode: the server offers {offered}; this client allows {wanted}"
        )
    credentials, bits = None, 0
    if mode is not TwampMode.UNAUTHENTICATED:
        if settings.keys is None:
            raise KeySourceError(f"mode {MODE_NAMES[mode]} needs a key: give -u ID and -k FILE")
        try:
            check_count(greeting.count, settings.max_count)
        except ProtocolError as exc:
            raise RefusedError(f"the server's PBKDF2 {exc}") from None
        credentials = settings.keys.credentials_for(server)
        bits = int(TwampMode.IKEV2_DERIVED) if settings.keys.ikev2_derived else 0  # D3
    response, channels = client_setup(greeting, mode, credentials, os.urandom, bits)
    await control.send(control.machine.setup(response, channels.tx, channels.receiver))
    started = await control.receive("Server-Start")
    assert isinstance(started, ServerStarted)
    accept = started.start.accept
    if accept == Accept.FAILURE and credentials is not None:
        raise RefusedError(
            f"the server rejected the authentication (Accept 1): unknown KeyID "
            f"{credentials.label!r} or wrong shared secret"
        )
    _check_accept(accept, "the connection set-up")
    source, label = ("none", "") if credentials is None else (credentials.source, credentials.label)
    return _Security(mode, response.mode, channels.keys, source, label)


async def _request(
    control: _Control, settings: PingSettings, padding: int, local: str, peer: str, sender_port: int
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
    event = await control.receive("Accept-Session")
    assert isinstance(event, SessionAccepted)
    _check_accept(event.accept.accept, "Request-TW-Session")
    return event.accept.port, event.accept.sid


def _check_accept(value: int, what: str) -> None:
    """Raise RefusedError naming the Accept value's meaning (RFC 4656 §3.3)."""
    if value != Accept.OK:
        accept = Accept.interpret(value)
        raise RefusedError(f"the server refused {what}: Accept {value} ({accept.meaning})")


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
    control: _Control,
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
