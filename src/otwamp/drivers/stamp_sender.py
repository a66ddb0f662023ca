"""The STAMP Session-Sender's driver: one UDP socket, paced in a worker thread (R2).

The sans-I/O ``StampSender`` builds, stamps and reads packets; this module
resolves the reflector, opens the socket (connected to the reflector, so
the kernel drops strangers' datagrams) and runs the send and receive loop
in a thread around select(2), as ``drivers.pacer`` does for TWAMP. It reads
replies with ``receive_datagrams`` rather than ``udp.receive_all`` for the
DSCP/ECN of each reply (the Class of Service measured backwards).
"""

import asyncio
import random
import select
import socket
import threading
import time
from dataclasses import dataclass, field

from otwamp.drivers.clock import ClockState, clock_state
from otwamp.drivers.pacer import PacerPlan, collect_replies
from otwamp.drivers.stamp_reflector import enable_ancillary
from otwamp.drivers.udp import SocketCounts, connect_peer, open_test_socket, send_datagram
from otwamp.keys.source import ClientKeySource
from otwamp.results.records import TwampSessionRecord
from otwamp.session.schedule import Schedule, send_offsets
from otwamp.stamp.packets import StampHmac
from otwamp.stamp.sender import StampSender, TlvRequest
from otwamp.wire.timestamp import ns_to_ntp

_POLL = 0.1  # longest wait, so that a stop request is seen promptly


@dataclass(frozen=True, slots=True)
class StampSettings:
    """One STAMP measurement as the operator asked for it."""

    host: str
    port: int
    family: socket.AddressFamily = socket.AF_UNSPEC
    count: int = 100
    interval: float = 0.1
    schedule: Schedule = Schedule.FIXED
    dscp: int = 0
    wait: float = 2.0
    ssid: int = 1
    request: TlvRequest = field(default_factory=TlvRequest)
    key: StampHmac | None = field(default=None, repr=False)
    key_source: ClientKeySource | None = field(default=None, repr=False)  # IKEv2 SAs (ours)


@dataclass(slots=True)
class StampOutcome:
    """The session's records and what the TLVs said."""

    sender: StampSender
    clock: ClockState
    refused: int = 0  # ICMP errors (port unreachable) for our packets

    @property
    def record(self) -> TwampSessionRecord:
        """The per-packet records, as TWAMP's."""
        return self.sender.record


async def resolve(settings: StampSettings) -> tuple[socket.AddressFamily, str]:
    """The reflector's family and address (the first the resolver gives)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(
        settings.host, settings.port, family=settings.family, type=socket.SOCK_DGRAM
    )
    family, _kind, _proto, _name, address = infos[0]
    return socket.AddressFamily(family), str(address[0])


async def measure(settings: StampSettings, record: TwampSessionRecord) -> StampOutcome:
    """Run one STAMP session against ``settings.host`` into ``record``."""
    family, address = await resolve(settings)
    key = settings.key
    sender = StampSender(record, settings.ssid, settings.request, key)
    buffer = min(max(settings.count * (sender.size + 512), 4 << 20), 256 << 20)
    sock = open_test_socket(
        "::" if family == socket.AF_INET6 else "0.0.0.0", 0, family, settings.dscp, buffer
    )
    try:
        enable_ancillary(sock)
        reflector = connect_peer(sock, (address, settings.port))
        clock = clock_state()
        offsets = send_offsets(
            settings.count, settings.interval, settings.schedule, random.SystemRandom()
        )
        kernel = SocketCounts()
        stop = threading.Event()
        try:
            await asyncio.to_thread(
                _pace,
                sock,
                reflector,
                sender,
                PacerPlan(offsets, settings.wait),
                clock,
                stop,
                kernel,
            )
        finally:
            stop.set()
        kernel.settle(sock)
        record.dropped.kernel_drops = kernel.kernel_drops
        return StampOutcome(sender, clock, kernel.refused)
    finally:
        sock.close()


def _pace(
    sock: socket.socket,
    reflector: tuple[str, int],
    sender: StampSender,
    plan: PacerPlan,
    clock: ClockState,
    stop: threading.Event,
    kernel: SocketCounts,
) -> None:
    """Send every packet on schedule and collect replies until done or stopped."""
    count = len(plan.offsets)
    estimate = clock.estimate
    error = estimate.to_int()
    start = time.perf_counter()
    seq, deadline = 0, 0.0
    packet = sender.prepare(0) if count else bytearray()
    while not stop.is_set():
        now = time.perf_counter()
        if seq < count and now >= start + plan.offsets[seq]:
            ntp = _send(sock, sender, packet, error, kernel)
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
            collect_replies(sock, reflector, sender, clock, kernel)


def _send(
    sock: socket.socket, sender: StampSender, packet: bytearray, error: int, kernel: SocketCounts
) -> int:
    """Stamp and send one packet, waiting out a full send buffer; return its timestamp."""
    while True:
        ntp = ns_to_ntp(time.time_ns())
        wire = sender.stamp(packet, ntp, error)  # the last step before the send (D10)
        try:
            send_datagram(sock, wire, None, kernel)
            return ntp
        except BlockingIOError:
            select.select([], [sock], [], _POLL)
