"""One Session-Reflector's socket: reflected in the reflector thread, timed on the loop.

The sans-I/O ``SessionReflector`` decides what to reflect and when the
session ends (REFWAIT, or its Timeout after Stop-Sessions, RFC 5357 §3.8,
§4.2); this class moves datagrams, in the reflector thread
(``drivers/reflector_thread.py``) so that T3 follows T2 closely, and arms
its timer on the asyncio loop, where start, stop and close come from. The
socket is connected to the Session-Sender's address and Sender Port (RFC
5357 §3.5), so the kernel drops everyone else's datagrams.
"""

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable

from otwamp.drivers.clock import ClockState, now_ntp
from otwamp.drivers.reflector_thread import reflector_thread
from otwamp.drivers.stamp_reflector import enable_ancillary, receive_datagrams
from otwamp.drivers.stampsend import native_stamp_send, send_stamped
from otwamp.drivers.udp import SocketCounts, connect_peer, receive_all, send_datagram
from otwamp.session.protection import SessionProtection
from otwamp.session.reflector import SessionReflector
from otwamp.wire.twamp_features import PacketFormat

log = logging.getLogger("otwamp.server")

_NS = 1e9


def _closed_already(endpoint: "ReflectorEndpoint", reason: str) -> None:
    """The close callback of an endpoint already closed: nothing more to do."""


class ReflectorEndpoint:
    """Reflects one test session's packets from its socket."""

    def __init__(
        self,
        sock: socket.socket,
        sender: tuple[str, int],
        sid: bytes,
        refwait_ns: int,
        on_closed: Callable[["ReflectorEndpoint", str], None],
        protection: SessionProtection | None = None,
        test_format: PacketFormat | None = None,
    ) -> None:
        self.sock = sock
        self.sid = sid
        self.engine = SessionReflector(protection, refwait_ns, test_format)
        self._dscp_ecn = test_format is not None and test_format.dscp_ecn
        if self._dscp_ecn:  # RFC 7750 §2.2.1: the DS field of each packet received
            enable_ancillary(sock)
        self.port: int = sock.getsockname()[1]
        self.kernel = SocketCounts()
        self._sender, self._destination = self._connect(sock, sender)
        self._native = (  # stamp and send in one native call where it can (drivers/stampsend.py)
            None
            if self._destination is not None
            else native_stamp_send(sock, self.engine.plain_stamp_offset)
        )
        self._error = 0
        self._on_closed = on_closed
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False
        self.lock = threading.Lock()  # held by the reflector thread while it reads the socket
        self._thread = reflector_thread()
        self._thread.add(self)

    def fileno(self) -> int:
        """The socket's descriptor, for the reflector thread's epoll."""
        return self.sock.fileno()

    @property
    def kernel_drops(self) -> int:
        """Datagrams the kernel dropped on this session's socket (SO_RXQ_OVFL)."""
        return self.kernel.kernel_drops

    def _connect(
        self, sock: socket.socket, sender: tuple[str, int]
    ) -> tuple[tuple[str, int], tuple[str, int] | None]:
        """The sender as datagrams name it, and where to send (None: to the connected peer)."""
        try:
            return connect_peer(sock, sender), None
        except OSError as exc:  # the replies will fail too; the session runs its course
            log.warning("session %s: cannot connect to the sender: %s", self.sid.hex(), exc)
            return sender, sender

    def start(self, clock: ClockState) -> None:
        """Start reflecting (Start-Sessions, RFC 5357 §3.7) with the clock state read now."""
        self._error = clock.estimate.to_int()
        self.engine.start(time.time_ns())
        self._arm()

    def stop(self, timeout_ns: int) -> None:
        """Stop-Sessions: reflect for ``timeout_ns`` more, then close (RFC 5357 §3.8)."""
        self.engine.stop(time.time_ns(), timeout_ns)
        self._arm()

    def close(self, reason: str = "closed") -> None:
        """Stop reflecting and release the socket (once the reflector thread is done with it)."""
        if self.closed:
            return
        if self._timer is not None:
            self._timer.cancel()
        with self.lock:
            self.closed = True
            self._thread.remove(self)
            self.kernel.settle(self.sock)
            self.sock.close()
        on_closed, self._on_closed = self._on_closed, _closed_already
        on_closed(self, reason)  # and forgotten: the closure refers to the connection holding us

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        deadline = self.engine.get_timer()
        if deadline is not None and not self.closed:
            delay = max(deadline - time.time_ns(), 0) / _NS
            self._timer = self._loop.call_later(delay, self._expired)

    def _expired(self) -> None:
        reason = self.engine.handle_timer(time.time_ns())
        if reason is None:
            self._arm()
        else:
            self.close(reason)

    def readable(self) -> None:
        """Reflect the datagrams queued on the socket (in the reflector thread)."""
        engine, counters, sock, error = self.engine, self.engine.counters, self.sock, self._error
        kernel, destination, native = self.kernel, self._destination, self._native
        # RFC 7750: with DSCP and ECN Monitoring, each datagram's DS field is read too
        receive = receive_datagrams if self._dscp_ecn else receive_all
        for datagram in receive(sock, kernel):
            if datagram.source != self._sender:  # queued before connect()
                counters.wrong_source += 1
                continue
            tos = getattr(datagram, "tos", None)
            reply = engine.reflect(datagram.data, datagram.time_ns, error, datagram.ttl, tos)
            if reply is None:
                continue
            try:
                if native is not None:
                    send_stamped(native, error, reply, kernel)
                else:  # the stamp the last step before the send (D10)
                    send_datagram(sock, engine.stamp(reply, now_ntp(), error), destination, kernel)
            except OSError as exc:  # e.g. ENOBUFS: this reply is lost, the session goes on
                log.debug("session %s: send failed: %s", self.sid.hex(), exc)
