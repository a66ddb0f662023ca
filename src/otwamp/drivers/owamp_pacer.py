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
from dataclasses import dataclass

from otwamp.drivers.clock import ClockState, now_ntp
from otwamp.drivers.pacer import send_stamped
from otwamp.drivers.udp import receive_all
from otwamp.results.records import Stamp
from otwamp.session.owamp_receiver import OwampReceiver
from otwamp.session.owamp_sender import OwampSender, too_late
from otwamp.wire.timestamp import ntp_to_duration

_POLL = 0.1  # longest wait, so that a stop request is seen promptly


@dataclass(slots=True)
class Sending:
    """One session to send: where, how, and when each packet is due (32.32 timestamps)."""

    sock: socket.socket
    destination: tuple[str, int]
    sender: OwampSender
    times: list[int]
    timeout: int


@dataclass(slots=True)
class Receiving:
    """One session to receive, from one source."""

    sock: socket.socket
    source: tuple[str, int]
    receiver: OwampReceiver


def run_owamp(
    sending: Sending | None,
    receiving: Receiving | None,
    end: int,
    clock: ClockState,
    stop: threading.Event,
) -> None:
    """Send and receive until every packet is due and ``end`` (32.32) has passed, or stopped."""
    estimate = clock.estimate
    error = estimate.to_int()
    seq = 0
    count = len(sending.times) if sending else 0
    packet = sending.sender.prepare(0) if sending and count else bytearray()
    while not stop.is_set():
        now = now_ntp()
        if sending is not None and seq < count and now >= sending.times[seq]:
            if too_late(sending.times[seq], now, sending.timeout):
                sending.sender.skip(seq)
            else:
                ntp = send_stamped(sending.sock, sending.destination, sending.sender, packet, error)
                sending.sender.mark_sent(seq, ntp, estimate)
            seq += 1
            if seq < count:
                packet = sending.sender.prepare(seq)
            continue
        due = sending.times[seq] if sending is not None and seq < count else end
        if seq >= count and now >= end:
            return
        wait = min(max(ntp_to_duration(due - now), 0.0), _POLL)
        if receiving is None:
            time.sleep(wait)
        elif select.select([receiving.sock], [], [], wait)[0]:
            collect(receiving, clock)


def collect(receiving: Receiving, clock: ClockState) -> None:
    """Record every queued packet; datagrams from elsewhere are counted and dropped."""
    receiver, sync, error = receiving.receiver, clock.synchronized, clock.error
    for datagram in receive_all(receiving.sock):
        if datagram.source != receiving.source:
            receiver.record.dropped.wrong_source += 1
            continue
        receiver.on_datagram(datagram.data, Stamp(datagram.time_ns, sync, error), datagram.ttl)
