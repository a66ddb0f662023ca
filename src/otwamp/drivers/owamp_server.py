"""The asyncio OWAMP server: receives "to" sessions, sends "from" sessions (RFC 4656 §3-4).

The ``OwampServerMachine`` decides; this driver receives the sessions it
names on the event loop, sends them from worker threads (docs/DECISIONS.md
R2), and tells the machine when its senders have stopped.
"""

import asyncio
import contextlib
import functools
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from otwamp.control.effects import (
    ComputeSchedule,
    Effect,
    OpenReceiver,
    OpenSender,
    Release,
    SendStream,
    StartTest,
    StopReceiving,
    StopSending,
)
from otwamp.control.owamp_server_machine import OwampServerMachine
from otwamp.control.quota import SessionQuota
from otwamp.control.received_sessions import ReceivedSessions
from otwamp.control.server_policy import NS
from otwamp.drivers.clock import ClockState, clock_state
from otwamp.drivers.control_server import (
    Connection,
    ControlServer,
    Endpoint,
    ServerSettings,
    TestPorts,
)
from otwamp.drivers.owamp_pacer import Receiving, Sending, collect, run_owamp
from otwamp.drivers.udp import connect_peer, send_destination
from otwamp.results.records import Stamp
from otwamp.session.slots import SendTimes, plan_send_times
from otwamp.wire.owamp_control import RequestSession

OWAMP_PORT = 861  # RFC 4656 §3.1 (IANA owamp-control)


async def compute_schedule(request: RequestSession, sid: bytes) -> SendTimes:
    """A session's send times, planned in chunks between other work (S2).

    A million exponential times take about two seconds of Python: in chunks of
    half a millisecond every other connection (and a legitimate client's
    20-packet schedule) is served in between, which a worker thread holding
    the GIL would not allow. What is kept is a checkpoint per chunk (``SendTimes``).
    """
    plan = plan_send_times(request, sid)
    while True:
        try:
            next(plan)
        except StopIteration as planned:
            times: SendTimes = planned.value
            return times
        await asyncio.sleep(0)


@dataclass(slots=True)
class _Sender:
    """A send session: what its thread needs, and the thread once started."""

    sending: Sending
    end: int
    stop: threading.Event = field(default_factory=threading.Event)
    done: asyncio.Future[None] | None = None


@dataclass(slots=True)
class _OwampConnection(Connection[OwampServerMachine]):
    """An OWAMP-Control connection and its test sessions."""

    receivers: dict[bytes, Receiving] = field(default_factory=dict)
    senders: dict[bytes, _Sender] = field(default_factory=dict)
    sockets: dict[bytes, socket.socket] = field(default_factory=dict)


class OwampServer(ControlServer[_OwampConnection]):
    """Serves OWAMP-Control, receiving and sending the sessions it accepts."""

    NAME = "OWAMP"

    def __init__(
        self,
        settings: ServerSettings,
        ports: TestPorts | None = None,
        quota: SessionQuota | None = None,
    ) -> None:
        super().__init__(settings, settings.owamp_listen, ports, quota)
        # One thread per send session (R2): asyncio's default pool has min(32, cores + 4)
        # threads, and a 7th sender would wait there for one, past its schedule.
        self._sender_threads = ThreadPoolExecutor(
            settings.max_sessions_per_source, thread_name_prefix="owamp-sender"
        )
        self.received = ReceivedSessions(
            round(settings.keep_sessions_for * NS), settings.keep_sessions_bytes
        )

    def connection(
        self, peer: Endpoint, local: Endpoint, refuse: str | None, writer: asyncio.StreamWriter
    ) -> _OwampConnection:
        """A new OWAMP-Control connection and its machine."""
        machine = OwampServerMachine(
            self.policy, peer, local, time.time_ns(), os.urandom, self.received, refuse, self.quota
        )
        return _OwampConnection(machine, writer)

    async def carry_out_test(self, conn: _OwampConnection, effect: Effect) -> None:
        """Open, start, stop and free test sessions as the machine says."""
        match effect:
            case ComputeSchedule(request=request, sid=sid):
                times = await compute_schedule(request, sid)
                conn.machine.schedule_ready(times, time.time_ns())
            case OpenReceiver(sid=sid, port=port, sender=sender, receiver=receiver):
                sock = self._own(conn, sid, port)
                source = sender
                with contextlib.suppress(OSError):  # e.g. Sender Port 0: stays unconnected
                    source = connect_peer(sock, sender)  # strangers dropped by the kernel (S6)
                conn.receivers[sid] = Receiving(sock, source, receiver)
            case OpenSender(sid=sid, port=port, receiver=peer, sender=sender, end=end):
                sock = self._own(conn, sid, port)
                destination = send_destination(sock, peer)
                sending = Sending(sock, destination, sender, effect.times, effect.timeout)
                conn.senders[sid] = _Sender(sending, end)
            case StartTest(sids=sids):
                clock = clock_state()  # per round of sessions: synchronization may change (D9)
                conn.machine.test_started(Stamp(time.time_ns(), clock.synchronized, clock.error))
                for sid in sids:
                    self._start(conn, sid, clock)
            case StopReceiving(sids=sids):
                for sid in sids:
                    self._stop_receiving(conn, sid)
            case StopSending(sids=sids, reply=reply):
                await self._stop_senders(conn, sids)
                if reply:
                    conn.machine.senders_stopped(time.time_ns())
            case Release(sids=sids):
                for sid in sids:
                    self._release(conn, sid)
            case SendStream(chunks=chunks):
                for chunk in chunks:  # each a bounded piece of work (S2)
                    if chunk:
                        await self.write(conn, chunk)
                    await asyncio.sleep(0)
                conn.machine.stream_sent(time.time_ns())
            case _:
                raise TypeError(f"not an OWAMP effect: {effect!r}")

    async def close(self) -> None:
        """Stop serving, then let the sender threads go."""
        await super().close()
        self._sender_threads.shutdown(wait=False, cancel_futures=True)

    def release(self, conn: _OwampConnection) -> None:
        """Stop every sender and free every socket the connection still holds."""
        for sid in list(conn.sockets):
            self._release(conn, sid)
        super().release(conn)

    def _own(self, conn: _OwampConnection, sid: bytes, port: int) -> socket.socket:
        sock = self.take_socket(conn, port)
        conn.sockets[sid] = sock
        return sock

    def _start(self, conn: _OwampConnection, sid: bytes, clock: ClockState) -> None:
        receiving = conn.receivers.get(sid)
        if receiving is not None:
            receiving.sock.setblocking(False)
            asyncio.get_running_loop().add_reader(receiving.sock, collect, receiving, clock)
            return
        sender = conn.senders[sid]
        run = functools.partial(run_owamp, sender.sending, None, sender.end, clock, sender.stop)
        sender.done = asyncio.get_running_loop().run_in_executor(self._sender_threads, run)

    def _stop_receiving(self, conn: _OwampConnection, sid: bytes) -> None:
        receiving = conn.receivers.pop(sid, None)
        if receiving is not None:
            receiving.settle()  # the kernel's last drop count
            with contextlib.suppress(RuntimeError):  # the loop is gone at shutdown
                asyncio.get_running_loop().remove_reader(receiving.sock)

    async def _stop_senders(self, conn: _OwampConnection, sids: tuple[bytes, ...]) -> None:
        """Stop these senders and wait for their threads (RFC 4656 §3.8: before describing)."""
        running = [conn.senders[sid] for sid in sids if sid in conn.senders]
        for sender in running:
            sender.stop.set()
        done = [sender.done for sender in running if sender.done is not None]
        await asyncio.gather(*done, return_exceptions=True)

    def _release(self, conn: _OwampConnection, sid: bytes) -> None:
        self._stop_receiving(conn, sid)
        sender = conn.senders.pop(sid, None)
        if sender is not None:
            sender.stop.set()
        sock = conn.sockets.pop(sid, None)
        if sock is not None:
            self.ports.release(sock.getsockname()[1])
            sock.close()
