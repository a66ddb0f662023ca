"""What the OWAMP and TWAMP servers share: listening, the connection loop, keys, test ports.

A thin asyncio driver over the sans-I/O server machines
(``otwamp.control.server_machine``): it moves octets, keeps the time, and
carries out the machines' effects. A failure on one connection closes only
that one, with one log line naming the peer.
"""

import asyncio
import contextlib
import errno
import logging
import resource
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from otwamp.control.effects import BindTestPort, Close, Effect, LookUpKey, Send
from otwamp.control.quota import SessionQuota
from otwamp.control.server_machine import ServerMachine
from otwamp.control.server_policy import NS, PBKDF2_COUNT, ServerPolicy, fmt
from otwamp.drivers.clock import now_ntp
from otwamp.drivers.udp import open_test_socket
from otwamp.errors import KeySourceError
from otwamp.keys.source import Credentials, KeySource
from otwamp.wire.registry import TwampMode

log = logging.getLogger("otwamp.server")

Endpoint = tuple[str, int]
SERVWAIT = 900.0  # RFC 5357 §3.1: default control inactivity timeout
REFWAIT = 900.0  # RFC 5357 §4.2: default test inactivity timeout
READ_SIZE = 65536
FD_RESERVE = 64  # fds beyond control connections and test sockets: listeners, IKE, logs


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """What an operator configures for ``otwamp server``."""

    listen: tuple[Endpoint, ...] = (("0.0.0.0", 862), ("::", 862))  # TWAMP, RFC 5357 §3.1
    owamp_listen: tuple[Endpoint, ...] = (("0.0.0.0", 861), ("::", 861))  # RFC 4656 §3.1
    test_ports: tuple[int, int] | None = None  # None: any free port
    max_control_sessions: int = 64
    control_timeout: float = SERVWAIT
    refwait: float = REFWAIT
    modes: TwampMode = TwampMode.UNAUTHENTICATED
    twamp_extensions: int = 0  # TWAMP-Modes bits of RFC 5938, 6038, 7750 offered
    count: int = PBKDF2_COUNT
    key_sources: tuple[KeySource, ...] = ()
    max_packets: int = 10_000_000  # per OWAMP session (docs/DECISIONS.md R24)
    max_slots: int = 1024  # per OWAMP Request-Session
    ike_config: Path | None = None  # run an embedded ``otwamp ike`` with this configuration
    ike_check_peer: bool = True  # D7: the IKE SA's peer must be the control client
    keep_sessions_for: float = 300.0  # finished OWAMP receive sessions kept for Fetch (§3.8)
    keep_sessions_bytes: int = 256 << 20  # their records, in octets, across all connections (R24)
    max_connections_per_source: int = 16  # control connections from one address (S4)
    max_sessions_per_connection: int = 64  # test sessions of one control connection (S3)
    max_sessions_per_source: int = 256  # test sessions of one address, all connections (S3)
    max_packets_per_connection: int = 10_000_000  # OWAMP packets scheduled by one connection (S2)
    max_scheduled_packets: int = 16_000_000  # by all: 24 octets of record each received (R24)
    message_timeout: float = 10.0  # seconds for a whole message once begun, or the set-up (S4)
    write_timeout: float = 10.0  # seconds a client may leave our answers unread (S4)


def session_quota(settings: ServerSettings) -> SessionQuota:
    """The server-wide quota both protocols' servers share (S2, S3).

    One address may schedule a quarter of the packets, or one session of
    ``max_packets`` if that is more (docs/DECISIONS.md R24).
    """
    budget = settings.max_scheduled_packets
    per_source_packets = max(budget // 4, settings.max_packets)
    return SessionQuota(settings.max_sessions_per_source, budget, per_source_packets)


def socket_budget(settings: ServerSettings) -> int:
    """Test sockets the process may open: RLIMIT_NOFILE less a reserve (S3).

    The reserve keeps room for every control connection both protocols allow,
    the listeners, the IKE daemon and logs, so that accept() never fails for
    lack of fds.
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 20
    # Each protocol has its own connection table, and may hold one connection more
    # than it while the oldest idle one is being dropped for a newcomer.
    tables = bool(settings.listen) + bool(settings.owamp_listen)
    return max(soft - tables * (settings.max_control_sessions + 1) - FD_RESERVE, 0)


class TestPorts:
    """UDP ports for test sessions, shared by both protocols' servers, at most ``budget`` open."""

    def __init__(self, span: tuple[int, int] | None, budget: int = 1 << 20) -> None:
        self.span = span
        self.budget = budget
        self._in_use: set[int] = set()

    def bind(self, host: str, requested: int, dscp: int) -> socket.socket:
        """A test socket on the requested port if allowed and free, else another (RFC 5357 §3.5)."""
        if len(self._in_use) >= self.budget:
            raise OSError(errno.EMFILE, f"all {self.budget} test sockets of the fd budget in use")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for port in self._candidates(requested):
            try:
                sock = open_test_socket(host, port, family, dscp)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                continue
            self._in_use.add(sock.getsockname()[1])
            return sock
        raise OSError(errno.EADDRINUSE, "no free port in the test port range")

    def release(self, port: int) -> None:
        """Give a port back."""
        self._in_use.discard(port)

    def _candidates(self, requested: int) -> list[int]:
        if self.span is None:
            return ([requested] if requested >= 1024 else []) + [0]
        low, high = self.span
        ports = [p for p in range(low, high + 1) if p not in self._in_use]
        if requested in ports:
            ports.remove(requested)
            ports.insert(0, requested)
        return ports


M = TypeVar("M", bound=ServerMachine)


@dataclass(slots=True)
class Connection(Generic[M]):
    """What the driver keeps for one control connection: its machine and its test sockets."""

    machine: M
    writer: asyncio.StreamWriter
    bound: dict[int, socket.socket] = field(default_factory=dict)  # bound, not yet opened
    evicted: bool = False  # to make room for a new connection (S4)


C = TypeVar("C", bound=Connection[Any])


class ControlServer(Generic[C]):
    """Serves one protocol's control connections on its addresses."""

    NAME = "OWAMP"

    def __init__(
        self,
        settings: ServerSettings,
        listen: tuple[Endpoint, ...],
        ports: TestPorts | None = None,
        quota: SessionQuota | None = None,
    ) -> None:
        self.settings = settings
        self.listen = listen
        self.ports = ports or TestPorts(settings.test_ports, socket_budget(settings))
        self.policy = ServerPolicy(
            modes=settings.modes,
            ikev2_keys=any(source.ikev2_derived for source in settings.key_sources),
            count=settings.count,
            start_time=now_ntp(),  # RFC 4656 §3.1: Start-Time of this instantiation
            servwait_ns=round(settings.control_timeout * NS),
            refwait_ns=round(settings.refwait * NS),
            max_packets=settings.max_packets,
            max_slots=settings.max_slots,
            message_timeout_ns=round(settings.message_timeout * NS),
            max_sessions_per_connection=settings.max_sessions_per_connection,
            max_packets_per_connection=settings.max_packets_per_connection,
            twamp_extensions=settings.twamp_extensions,
        )
        self.quota = quota or session_quota(settings)
        self._servers: list[asyncio.Server] = []
        self._connections: dict[asyncio.Task[None], C] = {}  # oldest first

    async def start(self) -> list[Endpoint]:
        """Listen on every configured address; return the bound (host, port) pairs."""
        bound: list[Endpoint] = []
        for host, port in self.listen:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            server = await asyncio.start_server(
                self._serve, host, port, family=family, reuse_address=True
            )
            self._servers.append(server)
            for sock in server.sockets:
                name = sock.getsockname()
                bound.append((name[0], name[1]))
                log.info("listening for %s-Control on %s", self.NAME, fmt(name[0], name[1]))
        return bound

    async def close(self) -> None:
        """Stop listening, end every connection as the machines say, and wait for both."""
        for server in self._servers:
            server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()  # _serve turns it into the machine's shutdown
        await asyncio.gather(*tasks, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()

    def connection(
        self, peer: Endpoint, local: Endpoint, refuse: str | None, writer: asyncio.StreamWriter
    ) -> C:
        """A new control connection and its machine; ``refuse`` says why it is refused."""
        raise NotImplementedError

    async def carry_out_test(self, conn: C, effect: Effect) -> None:
        """Carry out an effect on test sessions (subclasses know their sessions)."""
        raise NotImplementedError

    def release(self, conn: C) -> None:
        """Free what a connection still holds once its loop has ended."""
        for port, sock in conn.bound.items():
            self.ports.release(port)
            sock.close()
        conn.bound.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        local = writer.get_extra_info("sockname")
        refuse = self._admit(peer[0])
        conn = self.connection((peer[0], peer[1]), (local[0], local[1]), refuse, writer)
        task = asyncio.current_task()
        assert task is not None  # asyncio runs each connection in a task
        self._connections[task] = conn
        try:
            await self._converse(conn, reader)
        except asyncio.CancelledError:  # close(), or _admit made room
            await self._end(conn, reader)
        except TimeoutError:  # a write deadline: the client reads nothing
            limit = self.settings.write_timeout
            conn.machine.connection_lost(time.time_ns(), f"read none of our octets in {limit:g} s")
            await self._carry_out_all(conn, False)
        except OSError as exc:  # ConnectionError included
            conn.machine.connection_lost(time.time_ns(), f"connection failed: {exc}")
            await self._carry_out_all(conn, False)
        except Exception:  # a bug of ours: log it, keep serving everyone else
            log.exception("%s closed: internal error", conn.machine.where)
            conn.machine.connection_lost(time.time_ns(), None)
            await self._carry_out_all(conn, False)
        finally:
            del self._connections[task]
            self.release(conn)
            writer.close()

    def _admit(self, source: str) -> str | None:
        """Why a new connection from ``source`` is refused, or None (S4).

        When the table is full, the oldest connection that never started a test
        is dropped to make room, so idle connections cannot lock everyone out.
        """
        same = sum(c.machine.peer[0] == source for c in self._connections.values())
        if same >= self.settings.max_connections_per_source:
            return f"{same} control connections from {source} already"
        if len(self._connections) < self.settings.max_control_sessions:
            return None
        for task, conn in self._connections.items():
            if not conn.machine.started and not conn.evicted:
                conn.evicted = True
                task.cancel()
                return None
        return f"{len(self._connections)} control connections already, all testing"

    async def _end(self, conn: C, reader: asyncio.StreamReader) -> None:
        """End a cancelled connection as its machine says, within a bounded time."""
        now = time.time_ns()
        if conn.evicted:
            conn.machine.evict(now)
        else:
            conn.machine.shutdown(now)
        # The machine's grace time lets a client finish; this bounds a client that stalls.
        grace = self.policy.shutdown_grace_ns / NS + 1.0
        with contextlib.suppress(OSError):  # TimeoutError included
            await asyncio.wait_for(self._converse(conn, reader), grace)

    async def _converse(self, conn: C, reader: asyncio.StreamReader) -> None:
        """Carry out effects, then read or wait for the machine's timer, until it closes."""
        machine = conn.machine
        while await self._carry_out_all(conn):
            timer = machine.get_timer()
            wait = None if timer is None else max(timer - time.time_ns(), 0) / NS
            try:
                data = await asyncio.wait_for(reader.read(READ_SIZE), wait)
            except TimeoutError:
                machine.handle_timer(time.time_ns())
                continue
            if data:
                machine.receive_data(data, time.time_ns())
            else:
                machine.connection_lost(time.time_ns())

    async def _carry_out_all(self, conn: C, writable: bool = True) -> bool:
        """Carry out every pending effect; False once the connection is closed.

        Once the connection failed (``writable`` False) nothing more is written to it.
        """
        open_ = True
        while effects := conn.machine.effects():
            for effect in effects:
                if writable or not isinstance(effect, Send):
                    open_ = await self._carry_out(conn, effect) and open_
        return open_

    async def _carry_out(self, conn: C, effect: Effect) -> bool:
        machine = conn.machine
        match effect:
            case Send(data=data):
                await self.write(conn, data)
            case Close(reason=reason, level=level):
                if reason is not None:
                    log.log(level, "%s closed: %s", machine.where, reason)
                return False
            case LookUpKey(key_id=key_id, derived=derived):
                credentials, problem = await self._look_up(key_id, derived, machine.peer[0])
                machine.key_found(credentials, problem, time.time_ns())
            case BindTestPort(host=host, port=port, dscp=dscp):
                self._bind(conn, host, port, dscp)
            case _:
                await self.carry_out_test(conn, effect)
        return True

    async def write(self, conn: C, data: bytes) -> None:
        """Write to the control connection; TimeoutError if the client reads none in time (S4)."""
        conn.writer.write(data)
        await asyncio.wait_for(conn.writer.drain(), self.settings.write_timeout)

    async def _look_up(
        self, key_id: bytes, derived: bool, peer: str
    ) -> tuple[Credentials | None, str | None]:
        """The key a KeyID names, from the source the Mode's IKEv2 bit selects (D3)."""
        source = self._key_source(derived)
        if source is None:
            return None, None
        try:
            return await source.server_secret(key_id, peer), None
        except KeySourceError as exc:
            return None, str(exc)

    def _key_source(self, derived: bool) -> KeySource | None:
        for source in self.settings.key_sources:
            if source.ikev2_derived == derived:
                return source
        return None

    def _bind(self, conn: C, host: str, port: int, dscp: int) -> None:
        try:
            sock = self.ports.bind(host, port, dscp)
        except OSError as exc:
            conn.machine.port_failed(exc.errno or 0, exc.strerror or str(exc), time.time_ns())
            return
        bound = sock.getsockname()[1]
        conn.bound[bound] = sock
        conn.machine.port_bound(bound, time.time_ns())

    def take_socket(self, conn: C, port: int) -> socket.socket:
        """The socket bound for ``port``, now owned by a test session."""
        return conn.bound.pop(port)
