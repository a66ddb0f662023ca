"""UDP test sockets: kernel receive timestamps, TTL, DSCP, drops, peers and buffer sizing.

Receive times come from the kernel (SO_TIMESTAMPNS, decision D10) and the
TTL/Hop Limit of each datagram from IP_RECVTTL / IPV6_RECVHOPLIMIT (RFC 5357
§4.2.1, Sender TTL). Outgoing packets carry TTL 255 (RFC 5357 §4.2.1) and the
session's DSCP (RFC 4656 §3.5 Type-P Descriptor). A test socket is connected
to its peer once the peer's port is known (RFC 5357 §3.5, RFC 4656 §3.5), so
the kernel drops datagrams from anyone else before they cost user-space time;
the datagrams the kernel drops (receive queue full) are counted from
SO_RXQ_OVFL and SO_MEMINFO.
"""

import errno
import ipaddress
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

# Linux values; Python does not export all of them.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
SO_RXQ_OVFL = getattr(socket, "SO_RXQ_OVFL", 40)
SO_MEMINFO = 55
SK_MEMINFO_DROPS = 8  # index of the socket's drop counter in SO_MEMINFO's uint32 array
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)
_TIMESPEC = struct.Struct("@qq")
_INT = struct.Struct("@i")
_U32 = struct.Struct("@I")
_CMSG_SPACE = (
    socket.CMSG_SPACE(_TIMESPEC.size) + socket.CMSG_SPACE(_INT.size) + socket.CMSG_SPACE(_U32.size)
)
_MEMINFO_SIZE = _U32.size * (SK_MEMINFO_DROPS + 1)
_WRAP = 1 << 32
TEST_TTL = 255
MAX_DATAGRAM = 65_535
RECEIVE_BATCH = 64  # datagrams per readable callback: about 1 ms of reflecting
MSG_PROBE = 0x10  # Linux: run the send path up to the route, send nothing
IDLE = 200e-6  # seconds idle before a send after which the send path is warmed first


@dataclass(frozen=True, slots=True)
class Datagram:
    """One received datagram with its kernel receive time and TTL."""

    data: bytes
    source: tuple[str, int]
    time_ns: int
    ttl: int | None


@dataclass(slots=True)
class SocketCounts:
    """What the kernel reported about one test socket since it was opened."""

    kernel_drops: int = 0  # datagrams the kernel dropped, e.g. with the receive queue full
    refused: int = 0  # ICMP errors (port unreachable) reported on the connected socket
    _counter: int = field(default=0, init=False, repr=False)  # the last cumulative uint32

    def saw_drops(self, counter: int) -> None:
        """Take in the kernel's cumulative drop counter (uint32, wraps) of the socket."""
        self.kernel_drops += (counter - self._counter) % _WRAP
        self._counter = counter

    def settle(self, sock: socket.socket) -> None:
        """Read the drop counter now, for drops that no later datagram reported."""
        try:
            meminfo = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, _MEMINFO_SIZE)
        except OSError:  # closed, or a kernel without SO_MEMINFO
            return
        if len(meminfo) == _MEMINFO_SIZE:
            self.saw_drops(_U32.unpack_from(meminfo, _U32.size * SK_MEMINFO_DROPS)[0])


def open_test_socket(
    host: str, port: int, family: socket.AddressFamily, dscp: int = 0, buffer: int = 4 << 20
) -> socket.socket:
    """A non-blocking UDP socket bound to (host, port), ready for TWAMP-Test."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setsockopt(socket.SOL_SOCKET, SO_RXQ_OVFL, 1)
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


def connect_peer(sock: socket.socket, peer: tuple[str, int]) -> tuple[str, int]:
    """Connect ``sock`` to ``peer``; return the peer as received datagrams name it.

    An IPv4 peer of an IPv6 socket is IPv4-mapped and an IPv4-mapped peer of
    an IPv4 socket unmapped; a scoped IPv6 address keeps its zone. The
    kernel then delivers only the peer's datagrams and reports ICMP errors
    as ConnectionRefusedError on the next send or receive. Raises OSError
    when the kernel cannot reach ``peer`` (no route...) or its port is 0.
    """
    host, port = peer
    if port == 0:  # the kernel would take it, then deliver nothing
        raise OSError(errno.EDESTADDRREQ, f"no port to connect to on {host}")
    bare, percent, zone = host.partition("%")
    address = ipaddress.ip_address(bare)
    if sock.family == socket.AF_INET6 and address.version == 4:
        bare = f"::ffff:{address}"
    elif sock.family == socket.AF_INET and isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is None:
            raise OSError(f"an IPv4 socket cannot reach {host}")
        bare = str(address.ipv4_mapped)
    numeric = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
    target = socket.getaddrinfo(
        bare + percent + zone, port, sock.family, socket.SOCK_DGRAM, 0, numeric
    )[0][4]
    sock.connect(target)
    connected = sock.getpeername()
    return connected[0], connected[1]


def _parse_ancillary(
    ancdata: list[tuple[int, int, bytes]], counts: SocketCounts
) -> tuple[int, int | None]:
    time_ns, ttl = 0, None
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS:
            secs, nsecs = _TIMESPEC.unpack_from(payload)
            time_ns = secs * 1_000_000_000 + nsecs
        elif level == socket.SOL_SOCKET and kind == SO_RXQ_OVFL:
            counts.saw_drops(_U32.unpack_from(payload)[0])
        elif (level, kind) in (
            (socket.IPPROTO_IP, socket.IP_TTL),
            (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT),
        ):
            ttl = _INT.unpack_from(payload)[0]
    return time_ns, ttl


def receive_all(sock: socket.socket, counts: SocketCounts) -> Iterator[Datagram]:
    """The datagrams queued on the non-blocking ``sock``, RECEIVE_BATCH at most; ``counts``
    takes the rest. The bound keeps one flooded socket, even flooded by its own peer, from
    holding the event loop: the selector calls again while more are queued (S6)."""
    for _ in range(RECEIVE_BATCH):
        try:
            data, ancdata, _flags, source = sock.recvmsg(MAX_DATAGRAM, _CMSG_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionRefusedError:  # an ICMP error queued for an earlier send
            counts.refused += 1
            continue
        time_ns, ttl = _parse_ancillary(ancdata, counts)
        time_ns = time_ns or time.time_ns()  # the kernel always stamps on Linux
        yield Datagram(data, (source[0], source[1]), time_ns, ttl)


def send_destination(sock: socket.socket, peer: tuple[str, int]) -> tuple[str, int] | None:
    """Where a socket that only sends sends: None once connected to ``peer``, else ``peer``.

    Connected, the kernel keeps the route and each packet goes by send(2)
    (natively stamped: ``drivers/stampsend.py``); a socket that cannot
    connect (``connect_peer`` raised) sends with sendto(2).
    """
    try:
        connect_peer(sock, peer)
    except OSError:
        return peer
    return None


def send_datagram(
    sock: socket.socket,
    data: bytes | bytearray,
    destination: tuple[str, int] | None,
    counts: SocketCounts,
) -> None:
    """Send ``data`` to ``destination``, or to the peer when None (``sock`` is connected).

    A connected socket reports the ICMP error of an earlier datagram on this
    send, which then sent nothing: it is counted and the send tried once
    more; a datagram refused twice is not sent (the peer is unreachable).
    """
    for _ in range(2):
        try:
            if destination is None:
                sock.send(data)
            else:
                sock.sendto(data, destination)
            return
        except ConnectionRefusedError:
            counts.refused += 1
