"""UDP test sockets: kernel receive timestamps, TTL, DSCP and buffer sizing.

Receive times come from the kernel (SO_TIMESTAMPNS, decision D10) and the
TTL/Hop Limit of each datagram from IP_RECVTTL / IPV6_RECVHOPLIMIT (RFC 5357
§4.2.1, Sender TTL). Outgoing packets carry TTL 255 (RFC 5357 §4.2.1) and the
session's DSCP (RFC 4656 §3.5 Type-P Descriptor).
"""

import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

# Linux values; Python does not export all of them.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)
_TIMESPEC = struct.Struct("@qq")
_INT = struct.Struct("@i")
_CMSG_SPACE = socket.CMSG_SPACE(_TIMESPEC.size) + socket.CMSG_SPACE(_INT.size)
TEST_TTL = 255
MAX_DATAGRAM = 65_535


@dataclass(frozen=True, slots=True)
class Datagram:
    """One received datagram with its kernel receive time and TTL."""

    data: bytes
    source: tuple[str, int]
    time_ns: int
    ttl: int | None


def open_test_socket(
    host: str, port: int, family: socket.AddressFamily, dscp: int = 0, buffer: int = 4 << 20
) -> socket.socket:
    """A non-blocking UDP socket bound to (host, port), ready for TWAMP-Test."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        _size_buffers(sock, buffer)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, TEST_TTL)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, dscp << 2)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, TEST_TTL)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, dscp << 2)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _size_buffers(sock: socket.socket, size: int) -> None:
    """Ask for ``size`` octets of buffer, past net.core.rmem_max when we may (root)."""
    for force, plain in (
        (getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF),
        (getattr(socket, "SO_SNDBUFFORCE", 32), socket.SO_SNDBUF),
    ):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, plain, size)


def _parse_ancillary(ancdata: list[tuple[int, int, bytes]]) -> tuple[int, int | None]:
    time_ns, ttl = 0, None
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
            secs, nsecs = _TIMESPEC.unpack_from(payload)
            time_ns = secs * 1_000_000_000 + nsecs
        elif (level, kind) in (
            (socket.IPPROTO_IP, socket.IP_TTL),
            (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT),
        ):
            ttl = _INT.unpack_from(payload)[0]
    return time_ns, ttl


def receive_all(sock: socket.socket) -> Iterator[Datagram]:
    """Every datagram queued on the non-blocking ``sock`` now."""
    while True:
        try:
            data, ancdata, _flags, source = sock.recvmsg(MAX_DATAGRAM, _CMSG_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionRefusedError:  # an ICMP error queued for an earlier send
            continue
        time_ns, ttl = _parse_ancillary(ancdata)
        time_ns = time_ns or time.time_ns()  # the kernel always stamps on Linux
        yield Datagram(data, (source[0], source[1]), time_ns, ttl)
