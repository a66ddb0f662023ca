"""A user-space link emulator: bridges two interfaces with AF_PACKET and impairs UDP between them.

Run it in a namespace holding the inner ends of two veth pairs (``namespaces.py`` builds one):

    python -m tests.netem.emulator --a ma --b mb --seed 7 --udp-ports 20000-20099 \
        --a2b delay=5ms,jitter=500us,loss=2% --b2a delay=3ms,duplicate=1%,reorder=1%,gap=2

Frames arrive with the kernel's receive time (SO_TIMESTAMPNS) and their virtio-net header
(PACKET_VNET_HDR), which goes back out unchanged, so GSO frames and partial checksums cross
the link as the kernel left them. UDP datagrams (those with a port in ``--udp-ports``) are
impaired by ``link.Direction``; every other frame (ARP, TCP control, ICMP) crosses at once.
Frames are sent when due: ``select`` with 1 ns timer slack until ``SPIN_US`` before, then a
busy wait. On stdout: one JSON line ``{"event": "ready"}``, then a report (what was done, per
direction and flow, see ``link.Tally``) for each ``report`` line read on stdin (the counts
restart after it), and a last one on EOF, ``quit``, SIGTERM or SIGINT.
"""

import argparse
import contextlib
import ctypes
import gc
import json
import os
import re
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import IO, Any, NoReturn

from otwamp.drivers.udp import SCM_TIMESTAMPNS, SO_TIMESTAMPNS
from tests.netem.link import Direction, Flow, Impairment

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
ETH_P_ALL = 0x0003
SO_TIMESTAMPING = SCM_TIMESTAMPING = 37
# SOF_TIMESTAMPING_TX_SOFTWARE | SOFTWARE | OPT_TSONLY: the driver's transmit time (veth stamps
# in veth_xmit, just before the peer's netif_rx stamps the frame), no copy of the frame.
TX_STAMPS = (1 << 1) | (1 << 4) | (1 << 11)
VNET_HDR_LEN = 10  # struct virtio_net_hdr
ETH_HLEN = 14
ETHERTYPE_IPV4, ETHERTYPE_IPV6 = 0x0800, 0x86DD
IPPROTO_UDP = 17
PR_SET_TIMERSLACK = 29
MAX_FRAME = VNET_HDR_LEN + ETH_HLEN + 65_535
REALTIME_PRIORITY = 10
SPIN_US = 200  # busy-wait the last 200 µs before a frame is due: select wakes up late


def _timespec(payload: bytes) -> int:
    """A struct timespec as nanoseconds."""
    seconds, nanoseconds = struct.unpack("qq", payload[:16])
    return int(seconds) * 1_000_000_000 + int(nanoseconds)


class Port:
    """One interface, read and written whole frames (with their virtio-net header) at a time."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        self.sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)  # not our own sends
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, TX_STAMPS)
        self.sock.bind((name, ETH_P_ALL))
        index = socket.if_nametoindex(name)
        mreq = struct.pack("iHH8s", index, PACKET_MR_PROMISC, 0, b"")
        self.sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        self.sock.setblocking(False)

    def receive(self) -> Iterator[tuple[bytes, int]]:
        """Every frame waiting, with its kernel receive time (ns)."""
        space = socket.CMSG_SPACE(16)
        while True:
            try:
                data, ancillary, _flags, _address = self.sock.recvmsg(MAX_FRAME, space)
            except BlockingIOError:
                return
            stamp = time.time_ns()
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
                    stamp = _timespec(payload)
            yield data, stamp

    def send(self, data: bytes) -> int:
        """Send a frame; return the kernel's transmit time (ns), or ours if it gave none."""
        before = time.time_ns()
        self.sock.send(data)
        try:
            _data, ancillary, _flags, _address = self.sock.recvmsg(
                1, socket.CMSG_SPACE(48) + socket.CMSG_SPACE(64), socket.MSG_ERRQUEUE
            )
        except BlockingIOError:
            return before
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPING:
                return _timespec(payload)  # the first of three: the software stamp
        return before

    def close(self) -> None:
        self.sock.close()


def udp_flow(frame: bytes, ports: tuple[int, int] | None) -> Flow | None:
    """(source, destination) of a UDP datagram with a port in ``ports``; None for anything else."""
    offset = VNET_HDR_LEN + ETH_HLEN
    if len(frame) < offset:
        return None
    (ethertype,) = struct.unpack_from("!H", frame, offset - 2)
    if ethertype == ETHERTYPE_IPV4 and len(frame) >= offset + 20:
        ihl = (frame[offset] & 0x0F) * 4
        fragment = struct.unpack_from("!H", frame, offset + 6)[0] & 0x1FFF
        if frame[offset + 9] != IPPROTO_UDP or fragment:
            return None
        addresses = (
            socket.inet_ntop(socket.AF_INET, frame[offset + 12 : offset + 16]),
            (socket.inet_ntop(socket.AF_INET, frame[offset + 16 : offset + 20])),
        )
        udp = offset + ihl
    elif ethertype == ETHERTYPE_IPV6 and len(frame) >= offset + 40:
        if frame[offset + 6] != IPPROTO_UDP:
            return None
        addresses = (
            socket.inet_ntop(socket.AF_INET6, frame[offset + 8 : offset + 24]),
            (socket.inet_ntop(socket.AF_INET6, frame[offset + 24 : offset + 40])),
        )
        udp = offset + 40
    else:
        return None
    if len(frame) < udp + 4:
        return None
    source_port, destination_port = struct.unpack_from("!HH", frame, udp)
    if ports and not (
        ports[0] <= source_port <= ports[1] or ports[0] <= destination_port <= ports[1]
    ):
        return None
    return f"{addresses[0]}:{source_port}>{addresses[1]}:{destination_port}"


class _Stop(Exception):
    """SIGTERM or SIGINT: write the last report and leave."""


class Emulator:
    """Two ports and a ``Direction`` each way; ``run`` shuttles frames until told to stop."""

    def __init__(
        self,
        a: str,
        b: str,
        a2b: Impairment,
        b2a: Impairment,
        seed: int,
        udp_ports: tuple[int, int] | None = None,
        records: IO[str] | None = None,
    ) -> None:
        self.ports = (Port(a), Port(b))
        self.directions = (Direction("a2b", a2b, seed), Direction("b2a", b2a, seed))
        self.udp_ports = udp_ports
        self.records = records
        self.passed = 0
        self.seed = seed
        self.lead = 0  # ns from calling send to the driver's transmit stamp, a running mean

    def report(self) -> dict[str, Any]:
        """What was done since the last report (``link.Direction.report``), and the settings."""
        document: dict[str, Any] = {"event": "report", "seed": self.seed, "passed": self.passed}
        for direction in self.directions:
            document[direction.name] = direction.report()
            document[direction.name]["impairment"] = asdict(direction.impairment)
            direction.reset()
        self.passed = 0
        return document

    def _ingress(self, side: int) -> None:
        outward = self.ports[1 - side]
        for data, stamp in self.ports[side].receive():
            flow = udp_flow(data, self.udp_ports)
            if flow is None:
                outward.send(data)
                self.passed += 1
            else:
                self.directions[side].arrive(data, flow, stamp)

    def _egress(self, now: int) -> None:
        """Send what is due at ``now``; learn how long it takes from here to the driver."""
        started = time.time_ns()
        for side, direction in enumerate(self.directions):
            for frame in direction.pop_due(now):
                sent = self.ports[1 - side].send(frame.data)
                if started:  # the first frame: send ahead by that much next time (capped)
                    self.lead += (min(sent - started, 50_000) - self.lead) // 16
                    started = 0
                direction.sent(frame, sent)
                if self.records:
                    record = {"dir": direction.name, "flow": frame.flow, "index": frame.index}
                    record |= {"copy": frame.copy, "held": frame.held, "t_in": frame.t_in}
                    record |= {"due": frame.due, "t_out": sent}
                    self.records.write(json.dumps(record) + "\n")

    def _next_due(self) -> int | None:
        return min(
            (d for d in (x.next_due() for x in self.directions) if d is not None), default=None
        )

    def run(self, control: int, out: IO[str]) -> None:
        """Forward frames; answer ``report`` lines on fd ``control``; stop at EOF or ``quit``."""
        readers = [port.sock.fileno() for port in self.ports]
        spin = SPIN_US * 1_000
        try:
            while True:
                due = self._next_due()
                wait = 1.0 if due is None else max(0, due - time.time_ns() - spin) / 1e9
                readable, _, _ = select.select([*readers, control], [], [], wait)
                for side, reader in enumerate(readers):
                    if reader in readable:
                        self._ingress(side)
                if control in readable:
                    commands = os.read(control, 4096).decode(errors="replace").split()
                    if not commands or "quit" in commands:
                        break
                    for _ in range(commands.count("report")):
                        out.write(json.dumps(self.report()) + "\n")
                        out.flush()
                due = self._next_due()
                if due is not None and due - time.time_ns() <= spin:
                    while time.time_ns() < due - self.lead:
                        pass
                    self._egress(max(due, time.time_ns()))
        except _Stop:
            pass
        out.write(json.dumps(self.report()) + "\n")
        out.flush()

    def close(self) -> None:
        for port in self.ports:
            port.close()


_DURATION = re.compile(r"^([0-9.]+)(ns|us|µs|ms|s)$")
_UNIT_US = {"ns": 1e-3, "us": 1.0, "µs": 1.0, "ms": 1e3, "s": 1e6}
_KEYS = {
    "delay": "delay_us",
    "jitter": "jitter_us",
    "shape": "jitter",
    "loss": "loss",
    "duplicate": "duplicate",
    "reorder": "reorder",
    "gap": "reorder_gap",
    "timeout": "reorder_timeout_us",
}


def parse_impairment(text: str) -> Impairment:
    """``delay=5ms,jitter=500us,shape=normal,loss=2%,duplicate=1%,reorder=1%,gap=2,timeout=100ms``."""
    values: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in _KEYS:
            raise ValueError(f"unknown impairment {key!r} (known: {', '.join(_KEYS)})")
        name = _KEYS[key]
        if name.endswith("_us"):
            match = _DURATION.match(value)
            if not match:
                raise ValueError(f"{key}: {value!r} is not a duration such as 500us or 5ms")
            values[name] = float(match[1]) * _UNIT_US[match[2]]
        elif name == "jitter":
            values[name] = value
        elif name == "reorder_gap":
            values[name] = int(value)
        else:
            values[name] = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    return Impairment(**values)


def parse_ports(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high or low)


@dataclass(frozen=True)
class Arguments:
    a: str
    b: str
    a2b: Impairment
    b2a: Impairment
    seed: int
    udp_ports: tuple[int, int] | None
    records: str | None
    realtime: int


def parse_arguments(argv: list[str]) -> Arguments:
    parser = argparse.ArgumentParser(
        prog="python -m tests.netem.emulator", description=__doc__.split("\n", 1)[0]
    )
    parser.add_argument("--a", default="ma", help="interface of side A (default ma)")
    parser.add_argument("--b", default="mb", help="interface of side B (default mb)")
    parser.add_argument(
        "--a2b", default="", help="impairments from A to B, e.g. delay=5ms,loss=1%%"
    )
    parser.add_argument("--b2a", default="", help="impairments from B to A")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--udp-ports", help="impair only UDP with a port in LOW-HIGH")
    parser.add_argument("--records", help="append one JSON line per frame sent to this file")
    parser.add_argument(
        "--realtime",
        type=int,
        default=REALTIME_PRIORITY,
        metavar="PRIORITY",
        help=f"SCHED_FIFO priority, 0 for none (default {REALTIME_PRIORITY})",
    )
    args = parser.parse_args(argv)
    try:
        return Arguments(
            args.a,
            args.b,
            parse_impairment(args.a2b),
            parse_impairment(args.b2a),
            args.seed,
            parse_ports(args.udp_ports) if args.udp_ports else None,
            args.records,
            args.realtime,
        )
    except ValueError as exc:
        parser.error(str(exc))


def _stop(_signum: int, _frame: object) -> NoReturn:
    raise _Stop


def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    with contextlib.suppress(OSError):  # 1 ns timer slack: select wakes when asked
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)
    if args.realtime:
        # Real-time so that a loaded machine cannot make it send late; it spins SPIN_US at most.
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(args.realtime))
        except OSError as exc:
            print(f"python -m tests.netem.emulator: not real-time: {exc.strerror}", file=sys.stderr)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with contextlib.ExitStack() as stack:
        records = stack.enter_context(open(args.records, "a")) if args.records else None
        try:
            emulator = Emulator(
                args.a, args.b, args.a2b, args.b2a, args.seed, args.udp_ports, records
            )
        except OSError as exc:  # no such interface, not root
            sys.exit(f"python -m tests.netem.emulator: {args.a}, {args.b}: {exc.strerror or exc}")
        stack.callback(emulator.close)
        # A collection of the interpreter's objects takes milliseconds: none while forwarding.
        gc.collect()
        gc.freeze()
        gc.disable()
        print(json.dumps({"event": "ready", "pid": os.getpid()}), flush=True)
        emulator.run(sys.stdin.fileno(), sys.stdout)


if __name__ == "__main__":
    main()
