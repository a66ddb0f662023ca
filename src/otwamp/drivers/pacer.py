"""The Session-Sender's send loop, paced with microsecond timers.

asyncio's selector waits in whole milliseconds, too coarse for schedules of
tens of microseconds, so the test session runs in a worker thread around
select(2), whose timeout has microsecond resolution. The thread owns the test
socket, connected to the reflector (``connect_peer``); the sans-I/O
``SessionSender`` does all packet work.
"""

import select
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from otwamp.drivers.clock import ClockState
from otwamp.drivers.udp import SocketCounts, receive_all, send_datagram
from otwamp.results.records import Stamp
from otwamp.session.packets import SenderPackets
from otwamp.session.sender import SessionSender
from otwamp.wire.timestamp import ns_to_ntp

_POLL = 0.1  # longest wait, so that a stop request is seen promptly


@dataclass(frozen=True, slots=True)
class PacerPlan:
    """When to send and how long to wait for the last replies."""

    offsets: Sequence[float]  # seconds after the start, one per packet
    wait: float  # seconds to wait after the last send for missing replies


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
    try:
        _pace(sock, reflector, sender, plan, clock, stop, kernel)
    finally:
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
) -> None:
    """The send and receive loop of ``run_session``."""
    count = len(plan.offsets)
    estimate = clock.estimate
    error = estimate.to_int()
    start = time.perf_counter()
    seq, deadline = 0, 0.0
    packet = sender.prepare(0) if count else bytearray()
    while not stop.is_set():
        now = time.perf_counter()
        if seq < count and now >= start + plan.offsets[seq]:
            ntp = send_stamped(sock, None, sender, packet, error, kernel)
            sender.mark_sent(seq, ntp, estimate)
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
            _collect(sock, reflector, sender, clock, kernel)


def send_stamped(
    sock: socket.socket,
    destination: tuple[str, int] | None,
    sender: SenderPackets,
    packet: bytearray,
    error: int,
    kernel: SocketCounts,
) -> int:
    """Stamp and send one packet, waiting out a full send buffer; return its timestamp.

    ``destination`` None sends to the peer ``sock`` is connected to.
    """
    while True:
        ntp = ns_to_ntp(time.time_ns())
        wire = sender.stamp(packet, ntp, error)  # the last step before the send (D10)
        try:
            send_datagram(sock, wire, destination, kernel)
            return ntp
        except BlockingIOError:
            select.select([], [sock], [], _POLL)


def _collect(
    sock: socket.socket,
    reflector: tuple[str, int],
    sender: SessionSender,
    clock: ClockState,
    kernel: SocketCounts,
) -> None:
    """Record every queued reply; datagrams from elsewhere are counted and dropped."""
    sync, error = clock.synchronized, clock.error
    for datagram in receive_all(sock, kernel):
        if datagram.source != reflector:
            sender.record.dropped.wrong_source += 1
            continue
        sender.on_datagram(datagram.data, Stamp(datagram.time_ns, sync, error), datagram.ttl)
