"""The Session-Sender's send loop, paced with microsecond timers.

asyncio's selector waits in whole milliseconds, too coarse for schedules of
tens of microseconds, so the test session runs in a worker thread around
select(2), whose timeout has microsecond resolution. The thread owns the test
socket, connected to the reflector (``connect_peer``); the sans-I/O
``SessionSender`` does all packet work.

Each packet is built before it is due; its Timestamp is the last thing
written before the send call (decision D10), by ``Transmitter``, which binds
everything it needs beforehand. Where the kernel reports transmit times
(SO_TIMESTAMPING, ``drivers/txstamp.py``), they become the T1 of the
sender's records; the in-packet T1 is sent all the same (RFC 5357 §4.1.2).
"""

import functools
import itertools
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from otwamp.drivers.clock import ClockState
from otwamp.drivers.stamp_reflector import receive_datagrams, transmit_times
from otwamp.drivers.stampsend import native_stamp_send
from otwamp.drivers.txstamp import enable_transmit_stamps
from otwamp.drivers.udp import IDLE, MSG_PROBE, SocketCounts
from otwamp.results.records import Reply, Stamp, TwampSessionRecord
from otwamp.session.packets import SenderPackets
from otwamp.session.sender import SessionSender
from otwamp.session.txstamps import TransmitStamps
from otwamp.wire.timestamp import NTP_UNIX_OFFSET, ntp_to_ns

_POLL = 0.1  # longest wait, so that a stop request is seen promptly
_NS = 1_000_000_000
_NTP_UNIX_NS = NTP_UNIX_OFFSET * _NS
_NTP_MASK = (1 << 64) - 1  # the seconds wrap into era 1 in 2036 (RFC 5905 §6)


def ntp_now() -> int:
    """``ns_to_ntp(time.time_ns())`` in one expression, as ``Transmitter`` computes it."""
    return (((time.time_ns() + _NTP_UNIX_NS) << 32) // _NS) & _NTP_MASK


@dataclass(frozen=True, slots=True)
class PacerPlan:
    """When to send and how long to wait for the last replies."""

    offsets: Sequence[float]  # seconds after the start, one per packet
    wait: float  # seconds to wait after the last send for missing replies


class Transmitter:
    """Stamps and sends one session's packets, the stamp the last step before the send call.

    ``destination`` None sends to the peer ``sock`` is connected to. A full
    send buffer is waited out and the packet restamped; an ICMP error queued
    for an earlier datagram is counted and the send tried once more (as
    ``udp.send_datagram``). On a connected socket, in open and authenticated
    modes, the clock read, the stamp and the send are one native call
    (``drivers/stampsend.py``); otherwise they are three Python steps.

    After an idle spell the kernel's send path is cold: a system call that
    goes through it with MSG_PROBE, sending nothing, brings it into the
    caches before the stamp (``warm``), so the stamp stays close to the
    wire when packets are sparse, the common case; in encrypted mode, whose
    CBC chain and HMAC run after the stamp, so does a run of them on a
    scratch copy (``SenderPackets.warm``).
    """

    __slots__ = ("_counts", "_probe", "_sock", "_stamp_send", "_warm")

    def __init__(
        self,
        sock: socket.socket,
        destination: tuple[str, int] | None,
        sender: SenderPackets,
        error: int,
        counts: SocketCounts,
    ) -> None:
        self._sock = sock
        self._warm = sender.warm
        self._counts = counts
        self._probe: Callable[[bytearray], int]
        sendmsg = sock.sendmsg
        send: Callable[[bytes | bytearray], int]
        if destination is None:
            send = sock.send
            self._probe = lambda data: sendmsg((data,), (), MSG_PROBE)
        else:
            sendto = sock.sendto
            send = lambda data: sendto(data, destination)  # noqa: E731
            self._probe = lambda data: sendmsg((data,), (), MSG_PROBE, destination)
        offset = sender.plain_stamp_offset
        native = None if destination is not None else native_stamp_send(sock, offset)
        self._stamp_send = (
            _python_stamp_send(sender.stamp, send, error)
            if native is None
            else functools.partial(native, error)
        )

    def warm(self, packet: bytearray) -> None:
        """Run the after-stamp crypto and the kernel's send path (MSG_PROBE) for ``packet``."""
        self._warm()
        try:
            self._probe(packet)
        except ConnectionRefusedError:  # an ICMP error queued for an earlier datagram
            self._counts.refused += 1
        except OSError:  # the send will say what is wrong
            return

    def send(self, packet: bytearray) -> int:
        """Stamp ``packet`` and send it; return its Timestamp."""
        stamp_send = self._stamp_send
        refused = 0
        while True:
            try:
                return stamp_send(packet)
            except BlockingIOError:
                select.select([], [self._sock], [], _POLL)
            except ConnectionRefusedError:  # an ICMP error queued for an earlier datagram
                self._counts.refused += 1
                refused += 1
                if refused == 2:  # the peer is unreachable: not sent
                    return ntp_now()


def _python_stamp_send(
    stamp: Callable[[bytearray, int, int], bytes | bytearray],
    send: Callable[[bytes | bytearray], int],
    error: int,
) -> Callable[[bytearray], int]:
    """Stamp and send from Python: the clock read, the stamp, then straight to the send call."""
    time_ns = time.time_ns

    def stamp_send(packet: bytearray) -> int:
        ntp = (((time_ns() + _NTP_UNIX_NS) << 32) // _NS) & _NTP_MASK
        send(stamp(packet, ntp, error))
        return ntp

    return stamp_send


def run_session(
    sock: socket.socket,
    reflector: tuple[str, int],
    sender: SessionSender,
    plan: PacerPlan,
    clock: ClockState,
    stop: threading.Event,
) -> None:
    """Send every packet on schedule and collect replies until done or stopped.

    ``sock`` is connected to ``reflector``, the address its replies come from.
    """
    kernel = SocketCounts()
    stamps = TransmitStamps() if enable_transmit_stamps(sock) else None
    try:
        _pace(sock, reflector, sender, plan, clock, stop, kernel, stamps)
    finally:
        if stamps is not None:
            _take_stamps(sock, sender, stamps)
            sender.settle()
        kernel.settle(sock)
        sender.record.dropped.kernel_drops = kernel.kernel_drops


def _pace(
    sock: socket.socket,
    reflector: tuple[str, int],
    sender: SessionSender,
    plan: PacerPlan,
    clock: ClockState,
    stop: threading.Event,
    kernel: SocketCounts,
    stamps: TransmitStamps | None,
) -> None:
    """The send and receive loop of ``run_session``."""
    count = len(plan.offsets)
    estimate = clock.estimate
    transmitter = Transmitter(sock, None, sender, estimate.to_int(), kernel)
    transmit = transmitter.send
    start = time.perf_counter()
    seq, deadline, busy = 0, 0.0, start
    packet = sender.prepare(0) if count else bytearray()
    while not stop.is_set():
        now = time.perf_counter()
        if seq < count and now >= start + plan.offsets[seq]:
            if now - busy > IDLE:
                transmitter.warm(packet)
            ntp = transmit(packet)
            busy = time.perf_counter()
            sender.mark_sent(seq, ntp, estimate)
            if stamps is not None:
                stamps.sent(seq, ntp_to_ns(ntp))
            seq += 1
            if seq < count:
                packet = sender.prepare(seq)
            else:
                deadline = time.perf_counter() + plan.wait
            continue
        if seq == count and (sender.answered >= count or now >= deadline):
            return
        due = start + plan.offsets[seq] if seq < count else deadline
        if select.select([sock], [], [], min(max(due - now, 0.0), _POLL))[0]:
            if stamps is not None:
                _take_stamps(sock, sender, stamps)
            collect_replies(sock, reflector, sender, clock, kernel)


def _take_stamps(sock: socket.socket, sender: SessionSender, stamps: TransmitStamps) -> None:
    """Record the kernel transmit times queued on ``sock``.

    No more reads than reports awaited: the read that finds the queue empty
    is a system call per packet saved at high rates.
    """
    for ordinal, ns in itertools.islice(transmit_times(sock), stamps.awaited or 1):
        seq = stamps.stamped(ordinal, ns)
        if seq is not None:
            sender.kernel_sent(seq, ns)


class ReplySink(Protocol):
    """What collects reflected packets: a TWAMP or a STAMP Session-Sender."""

    record: TwampSessionRecord

    def on_datagram(
        self, data: bytes, t4: Stamp, ttl: int | None, tos: int | None = None
    ) -> Reply | None: ...


def collect_replies(
    sock: socket.socket,
    reflector: tuple[str, int],
    sender: ReplySink,
    clock: ClockState,
    kernel: SocketCounts,
) -> None:
    """Record the queued replies; datagrams from elsewhere are counted and dropped."""
    sync, error = clock.synchronized, clock.error
    # receive_datagrams: with the DS field too, when RFC 7750 asked the socket for it
    for datagram in receive_datagrams(sock, kernel):
        if datagram.source != reflector:
            sender.record.dropped.wrong_source += 1
            continue
        stamp = Stamp(datagram.time_ns, sync, error)
        sender.on_datagram(datagram.data, stamp, datagram.ttl, datagram.tos)
