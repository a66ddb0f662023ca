"""The baseline: a trivial Python UDP echo and a plain paced sender on loopback.

``python -m bench.echo plain|stamped`` is the echo process. It binds
127.0.0.1 on a free port, prints the port on stdout and echoes until it is
terminated:

* ``plain`` is recvfrom/sendto and nothing else, the least a Python
  reflector can do. The sender times each round trip in user space with
  ``time.perf_counter_ns`` (send call to receive return).
* ``stamped`` also appends the kernel receive time (SO_TIMESTAMPNS, T2) and
  ``time.time_ns()`` just before its send (T3), while the sender takes T1
  with ``time.time_ns()`` before its send and T4 from the kernel. Its
  (T4 - T1) - (T3 - T2) is the same quantity, from the same clocks, as the
  RTT of TWAMP (RFC 5357 §4.2.1) that ``otwamp ping`` reports.

This module imports nothing of otwamp: the echo stays as small as it can be.
"""

import contextlib
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@qq")
_CMSG_SPACE = socket.CMSG_SPACE(_TIMESPEC.size)
_SEQ = struct.Struct("!I")
_STAMPS = struct.Struct("!QQ")  # T2, T3 appended by the stamped echo
PACKET_SIZE = 14  # octets, as an unauthenticated TWAMP-Test sender packet without padding
MODES = ("plain", "stamped")


def _kernel_time(ancdata: list[tuple[int, int, bytes]]) -> int:
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            secs, nsecs = _TIMESPEC.unpack_from(payload)
            return int(secs) * 1_000_000_000 + int(nsecs)
    return time.time_ns()


def serve(mode: str) -> None:
    """Echo datagrams on 127.0.0.1 until killed; the port goes to stdout first."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    if mode == "plain":
        while True:
            data, source = sock.recvfrom(65_535)
            sock.sendto(data, source)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    while True:
        data, ancdata, _flags, source = sock.recvmsg(65_535, _CMSG_SPACE)
        t2 = _kernel_time(ancdata)
        t3 = time.time_ns()
        sock.sendto(data + _STAMPS.pack(t2, t3), source)


@dataclass(slots=True)
class EchoRun:
    """One paced session against the echo: per-packet times in nanoseconds."""

    mode: str
    count: int
    interval: float
    received: int = 0
    lost: int = 0
    user_rtt_ns: list[int] = field(default_factory=list)  # perf_counter, send to receive
    rtt_ns: list[int] = field(default_factory=list)  # stamped: (T4 - T1) - (T3 - T2)
    wall_ns: list[int] = field(default_factory=list)  # stamped: T4 - T1
    processing_ns: list[int] = field(default_factory=list)  # stamped: T3 - T2
    elapsed_s: float = 0.0


def send_paced(port: int, mode: str, count: int, interval: float) -> EchoRun:
    """Send ``count`` packets every ``interval`` s, one at a time, and time each echo."""
    run = EchoRun(mode, count, interval)
    stamped = mode == "stamped"
    destination = ("127.0.0.1", port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", 0))
        if stamped:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.settimeout(1.0)
        packet = bytearray(PACKET_SIZE)
        start = time.perf_counter()
        for seq in range(count):
            delay = start + seq * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            _SEQ.pack_into(packet, 0, seq)
            t1 = time.time_ns()
            u1 = time.perf_counter_ns()
            sock.sendto(packet, destination)
            while True:
                try:
                    if stamped:
                        data, ancdata, _flags, _source = sock.recvmsg(256, _CMSG_SPACE)
                    else:
                        data, _source = sock.recvfrom(256)
                except TimeoutError:
                    run.lost += 1
                    break
                u4 = time.perf_counter_ns()
                if _SEQ.unpack_from(data)[0] != seq:  # a late echo of an earlier packet
                    continue
                run.received += 1
                run.user_rtt_ns.append(u4 - u1)
                if stamped:
                    t4 = _kernel_time(ancdata)
                    t2, t3 = _STAMPS.unpack_from(data, PACKET_SIZE)
                    run.rtt_ns.append((t4 - t1) - (t3 - t2))
                    run.wall_ns.append(t4 - t1)
                    run.processing_ns.append(t3 - t2)
                break
        run.elapsed_s = time.perf_counter() - start
    finally:
        sock.close()
    return run


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in MODES:
        sys.exit(f"usage: python -m bench.echo {'|'.join(MODES)}")
    with contextlib.suppress(KeyboardInterrupt):
        serve(sys.argv[1])
