"""OWAMP-Test in a worker thread: send on the schedule, receive until the end (RFC 4656 §4).

The same loop serves the client (sending its "to" session while receiving
the "from" one) and the server (sending a "from" session). Send times are
the schedule's (RFC 4656 §3.6, §5); a packet too late to be worth sending is
skipped and reported in Stop-Sessions (§4.1.1). select(2) gives the
microsecond waits asyncio cannot (docs/DECISIONS.md R2).
"""

import select
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from otwamp.drivers.clock import ClockState, now_ntp
from otwamp.drivers.pacer import Transmitter
from otwamp.drivers.udp import IDLE, SocketCounts, receive_all
from otwamp.results.records import Stamp
from otwamp.session.owamp_receiver import OwampReceiver
from otwamp.session.owamp_sender import OwampSender, too_late
from otwamp.wire.timestamp import ntp_diff, ntp_to_duration

_POLL = 0.1  # longest wait, so that a stop request is seen promptly


@dataclass(slots=True)
class Sending:
    """One session to send: where, how, and when each packet is due (32.32 timestamps).

    ``destination`` None sends to the peer ``sock`` is connected to.
    """

    sock: socket.socket
    destination: tuple[str, int] | None
    sender: OwampSender
    times: Sequence[int]
    timeout: int
    kernel: SocketCounts = field(default_factory=SocketCounts)


@dataclass(slots=True)
class Receiving:
    """One session to receive, from one source (``sock`` best connected to it: ``connect_peer``)."""

    sock: socket.socket
    source: tuple[str, int]
    receiver: OwampReceiver
    kernel: SocketCounts = field(default_factory=SocketCounts)

    def settle(self) -> None:
        """Bring the record's count of kernel drops up to date (before the socket closes)."""
        self.kernel.settle(self.sock)
        self.receiver.record.dropped.kernel_drops = self.kernel.kernel_drops


def run_owamp(
    sending: Sending | None,
    receiving: Receiving | None,
    end: int,
    clock: ClockState,
    stop: threading.Event,
) -> None:
    """Send and receive until every packet is due and ``end`` (32.32) has passed, or stopped."""
    try:
        _pace(sending, receiving, end, clock, stop)
    finally:
        if receiving is not None:
            receiving.settle()


def _pace(
    sending: Sending | None,
    receiving: Receiving | None,
    end: int,
    clock: ClockState,
    stop: threading.Event,
) -> None:
    """The send and receive loop of ``run_owamp``."""
    estimate = clock.estimate
    error = estimate.to_int()
    seq = 0
    count = len(sending.times) if sending else 0
    packet = sending.sender.prepare(0) if sending and count else bytearray()
    transmitter = (
        None
        if sending is None
        else Transmitter(sending.sock, sending.destination, sending.sender, error, sending.kernel)
    )
    busy = time.perf_counter()
    while not stop.is_set():
        now = now_ntp()
        if sending is not None and seq < count and ntp_diff(now, sending.times[seq]) >= 0:
            if too_late(sending.times[seq], now, sending.timeout):
                sending.sender.skip(seq)
            else:
                assert transmitter is not None
                if time.perf_counter() - busy > IDLE:
                    transmitter.warm(packet)
                ntp = transmitter.send(packet)
                busy = time.perf_counter()
                sending.sender.mark_sent(seq, ntp, estimate)
            seq += 1
            if seq < count:
                packet = sending.sender.prepare(seq)
            continue
        due = sending.times[seq] if sending is not None and seq < count else end
        if seq >= count and ntp_diff(now, end) >= 0:
            return
        wait = min(max(ntp_to_duration(ntp_diff(due, now)), 0.0), _POLL)
        if receiving is None:
            time.sleep(wait)
        elif select.select([receiving.sock], [], [], wait)[0]:
            collect(receiving, clock)


def collect(receiving: Receiving, clock: ClockState) -> None:
    """Record every queued packet; datagrams from elsewhere are counted and dropped."""
    receiver, sync, error = receiving.receiver, clock.synchronized, clock.error
    for datagram in receive_all(receiving.sock, receiving.kernel):
        if datagram.source != receiving.source:
            receiver.record.dropped.wrong_source += 1
            continue
        receiver.on_datagram(datagram.data, Stamp(datagram.time_ns, sync, error), datagram.ttl)
    receiver.record.dropped.kernel_drops = receiving.kernel.kernel_drops
