"""The asyncio TWAMP server: control connections and their reflectors (RFC 5357 §3-4).

The ``TwampServerMachine`` decides; this driver opens, starts, stops and
closes the Session-Reflectors it names.
"""

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from otwamp.control.effects import Effect, OpenReflector, Release, StartTest, StopReflectors
from otwamp.control.quota import SessionQuota
from otwamp.control.twamp_server_machine import TwampServerMachine
from otwamp.drivers.clock import clock_state
from otwamp.drivers.control_server import (
    Connection,
    ControlServer,
    Endpoint,
    ServerSettings,
    TestPorts,
)
from otwamp.drivers.reflector import ReflectorEndpoint
from otwamp.drivers.reflector_thread import reflector_thread

__all__ = ["TWAMP_PORT", "ServerSettings", "TwampServer"]

log = logging.getLogger("otwamp.server")

TWAMP_PORT = 862  # RFC 5357 §3.1 (IANA twamp-control)


@dataclass(slots=True)
class _TwampConnection(Connection[TwampServerMachine]):
    """A TWAMP-Control connection and its reflectors."""

    endpoints: dict[bytes, ReflectorEndpoint] = field(default_factory=dict)


class TwampServer(ControlServer[_TwampConnection]):
    """Serves TWAMP-Control and reflects the sessions it accepts."""

    NAME = "TWAMP"

    def __init__(
        self,
        settings: ServerSettings,
        ports: TestPorts | None = None,
        quota: SessionQuota | None = None,
    ) -> None:
        super().__init__(settings, settings.listen, ports, quota)
        reflector_thread()  # started with the server: its thread and epoll are the idle server's

    def connection(
        self, peer: Endpoint, local: Endpoint, refuse: str | None, writer: asyncio.StreamWriter
    ) -> _TwampConnection:
        """A new TWAMP-Control connection and its machine."""
        now = time.time_ns()
        machine = TwampServerMachine(self.policy, peer, local, now, os.urandom, refuse, self.quota)
        return _TwampConnection(machine, writer)

    async def carry_out_test(self, conn: _TwampConnection, effect: Effect) -> None:
        """Open, start, stop or close reflectors as the machine says."""
        match effect:
            case OpenReflector(sid=sid, port=port, sender=sender, protection=protection):
                sock = self.take_socket(conn, port)
                conn.endpoints[sid] = ReflectorEndpoint(
                    sock,
                    sender,
                    sid,
                    effect.refwait_ns,
                    self._closer(conn),
                    protection,
                    effect.test_format,
                )
            case StartTest(sids=sids):
                clock = clock_state()  # per session: synchronization may change (D9)
                for sid in sids:
                    conn.endpoints[sid].start(clock)
            case StopReflectors(timeouts_ns=timeouts):
                for sid, timeout in timeouts:
                    conn.endpoints[sid].stop(timeout)
            case Release(sids=sids):
                for sid in sids:
                    conn.endpoints[sid].close()
            case _:
                raise TypeError(f"not a TWAMP effect: {effect!r}")

    def _closer(self, conn: _TwampConnection) -> Callable[[ReflectorEndpoint, str], None]:
        def closed(endpoint: ReflectorEndpoint, reason: str) -> None:
            self.ports.release(endpoint.port)
            conn.machine.reflector_closed(endpoint.sid)
            c = endpoint.engine.counters
            log.info(
                "session %s: %s; reflected %d; dropped %d wrong-source, %d short, %d corrupt, "
                "%d failed HMAC, %d before Start-Sessions, %d after the stop; %d by the kernel",
                endpoint.sid.hex(),
                reason,
                c.reflected,
                c.wrong_source,
                c.truncated,
                c.corrupt,
                c.auth_failures,
                c.early,
                c.late,
                endpoint.kernel_drops,
            )

        return closed
