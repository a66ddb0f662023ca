"""The asyncio side of one Session-Reflector: a UDP socket driven by the loop.

RFC 5357 §4.2: reflect each packet from the session's sender as quickly as
possible; after Stop-Sessions keep reflecting for the session's Timeout
(RFC 5357 §3.8); give up after REFWAIT of silence (RFC 5357 §4.2).
"""

import asyncio
import logging
import socket
from collections.abc import Callable

from otwamp.drivers.clock import ClockState, now_ntp
from otwamp.drivers.udp import receive_all
from otwamp.session.protection import SessionProtection
from otwamp.session.reflector import SessionReflector
from otwamp.wire.timestamp import ns_to_ntp

log = logging.getLogger("otwamp.server")


class ReflectorEndpoint:
    """Reflects one test session's packets from its socket."""

    def __init__(
        self,
        sock: socket.socket,
        sender: tuple[str, int],
        sid: bytes,
        clock: ClockState,
        refwait: float,
        on_closed: Callable[["ReflectorEndpoint"], None],
        protection: SessionProtection | None = None,
    ) -> None:
        self.sock = sock
        self.sid = sid
        self.engine = SessionReflector(protection)
        self._sender = sender
        self._error = clock.estimate.to_int()
        self._refwait = refwait
        self._on_closed = on_closed
        self._loop = asyncio.get_running_loop()
        self._idle: asyncio.TimerHandle | None = None
        self._last = 0.0
        self.closed = False
        self.started = False
        self.port: int = sock.getsockname()[1]
        self._loop.add_reader(sock, self._readable)

    def start(self) -> None:
        """Start reflecting (Start-Sessions, RFC 4656 §3.7)."""
        self.started = True
        self._last = self._loop.time()
        self._idle = self._loop.call_later(self._refwait, self._check_idle)

    def stop_after(self, timeout: float) -> None:
        """Stop-Sessions: reflect for ``timeout`` seconds more, then close (RFC 5357 §3.8)."""
        self._loop.call_later(timeout, self.close)

    def close(self) -> None:
        """Stop reflecting and release the socket."""
        if self.closed:
            return
        self.closed = True
        if self._idle is not None:
            self._idle.cancel()
        self._loop.remove_reader(self.sock)
        self.sock.close()
        self._on_closed(self)

    def _check_idle(self) -> None:
        silent = self._loop.time() - self._last
        if silent < self._refwait:
            self._idle = self._loop.call_later(self._refwait - silent, self._check_idle)
            return
        log.info("session %s: no test packet for %.0f s (REFWAIT), closing", self.sid.hex(), silent)
        self.close()

    def _readable(self) -> None:
        engine, counters, sock, error = self.engine, self.engine.counters, self.sock, self._error
        for datagram in receive_all(sock):
            if datagram.source[:2] != self._sender or not self.started:
                counters.wrong_source += 1
                continue
            reply = engine.reflect(datagram.data, ns_to_ntp(datagram.time_ns), error, datagram.ttl)
            if reply is None:
                continue
            wire = engine.stamp(reply, now_ntp(), error)  # the last step before the send (D10)
            try:
                sock.sendto(wire, datagram.source)
            except OSError as exc:  # e.g. ENOBUFS: this reply is lost, the session goes on
                log.debug("session %s: send failed: %s", self.sid.hex(), exc)
        self._last = self._loop.time()
