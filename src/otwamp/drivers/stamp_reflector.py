"""The asyncio STAMP Session-Reflector: one UDP socket per listen address (RFC 8762 §4.1).

The sans-I/O ``StampReflector`` decides everything; this module moves
datagrams. Besides the kernel receive time and TTL of ``drivers.udp`` it
reads, per datagram, the DSCP/ECN octet (IP_RECVTOS / IPV6_RECVTCLASS, for
the Class of Service TLV) and our destination address (IP_PKTINFO /
IPV6_RECVPKTINFO, for the Location TLV), and it asks the kernel for the
software transmit time of every reply (SO_TIMESTAMPING, read from the error
queue) for the Follow-Up Telemetry TLV (RFC 8972 §4.2-§4.7). Nothing a
peer sends can raise out of here: refusals are counted and logged, and the
log is rate-limited per cause (``otwamp.lograte``).
"""

import asyncio
import contextlib
import functools
import ipaddress
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

from otwamp.drivers.clock import clock_state
from otwamp.drivers.udp import (
    IDLE,
    MAX_DATAGRAM,
    MSG_PROBE,
    RECEIVE_BATCH,
    SCM_TIMESTAMPNS,
    SO_RXQ_OVFL,
    SocketCounts,
    open_test_socket,
)
from otwamp.stamp.ike_keys import IkeStampKeys
from otwamp.stamp.reflector import (
    KeyLookup,
    Received,
    ReflectorMode,
    StampReflector,
    peer_address,
)
from otwamp.stamp.tlv import IPAddress
from otwamp.wire.timestamp import ns_to_ntp

log = logging.getLogger("otwamp.server")

STAMP_PORT = 862  # UDP: the TWAMP-Test Receiver Port STAMP uses (RFC 8762 §4.1, RFC 8545)
SO_TIMESTAMPING = getattr(socket, "SO_TIMESTAMPING", 37)
SCM_TIMESTAMPING = SO_TIMESTAMPING
# SOF_TIMESTAMPING_* (linux/net_tstamp.h): software transmit stamps, reported with the
# send counter (OPT_ID) and without the packet (OPT_TSONLY).
_TX_FLAGS = (1 << 1) | (1 << 4) | (1 << 7) | (1 << 11)
_RECVERR = ((socket.IPPROTO_IP, 11), (socket.IPPROTO_IPV6, 25))  # IP_RECVERR, IPV6_RECVERR
_SO_EE_ORIGIN_TIMESTAMPING = 4
_EXTENDED_ERR = struct.Struct("@IBBBBII")  # struct sock_extended_err
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IP_RECVTOS = getattr(socket, "IP_RECVTOS", 13)
IPV6_RECVTCLASS = getattr(socket, "IPV6_RECVTCLASS", 66)
IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", 67)
_TIMESPEC = struct.Struct("@qq")
_INT = struct.Struct("@i")
_U32 = struct.Struct("@I")
_CMSG_SPACE = 512  # timestamps (two kinds), TTL, TOS, PKTINFO, drop counter
_BUFFER = 8 << 20
_CLOCK_PERIOD = 1.0  # seconds between reads of the clock state
_PARKED = 64  # datagrams of one peer held while its IKE SA is looked up


@dataclass(frozen=True, slots=True)
class Datagram:
    """A received datagram with what the kernel said about it."""

    data: bytes
    source: tuple[str, int]
    destination: str | None  # our address it was sent to
    time_ns: int
    ttl: int | None
    tos: int | None


def enable_ancillary(sock: socket.socket, transmit_times: bool = False) -> None:
    """Ask for each datagram's DSCP/ECN and destination, and optionally transmit times."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVTCLASS, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    if transmit_times:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, _TX_FLAGS)


def _parse(
    ancdata: list[tuple[int, int, bytes]], counts: SocketCounts
) -> tuple[int, int | None, int | None, bytes | None]:
    """Receive time, TTL, TOS and destination address octets from one datagram's cmsgs.

    A superset of what ``drivers.udp.receive_all`` reads, with TOS and PKTINFO.
    """
    time_ns, ttl, tos, destination = 0, None, None, None
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET:
            if kind == SCM_TIMESTAMPNS:
                secs, nsecs = _TIMESPEC.unpack_from(payload)
                time_ns = secs * 1_000_000_000 + nsecs
            elif kind == SO_RXQ_OVFL:
                counts.saw_drops(_U32.unpack_from(payload)[0])
        elif level == socket.IPPROTO_IP:
            if kind == socket.IP_TTL:
                ttl = _INT.unpack_from(payload)[0]
            elif kind == socket.IP_TOS:
                tos = payload[0]
            elif kind == IP_PKTINFO:
                destination = payload[8:12]  # in_pktinfo.ipi_addr: the header's destination
        elif level == socket.IPPROTO_IPV6:
            if kind == socket.IPV6_HOPLIMIT:
                ttl = _INT.unpack_from(payload)[0]
            elif kind == IPV6_TCLASS:
                tos = _INT.unpack_from(payload)[0]
            elif kind == IPV6_PKTINFO:
                destination = payload[:16]
    return time_ns, ttl, tos, destination


@functools.lru_cache(maxsize=256)
def _address_text(packed: bytes) -> str:
    """Our address as text from IP_PKTINFO's octets; a host has few, so they are cached."""
    return str(ipaddress.ip_address(packed))


@functools.lru_cache(maxsize=128)
def _tos_cmsg(family: int, mapped: bool, dscp: int) -> list[tuple[int, int, bytes]]:
    if family == socket.AF_INET6 and not mapped:
        return [(socket.IPPROTO_IPV6, IPV6_TCLASS, _INT.pack(dscp << 2))]
    return [(socket.IPPROTO_IP, socket.IP_TOS, _INT.pack(dscp << 2))]


def receive_datagrams(sock: socket.socket, counts: SocketCounts) -> Iterator[Datagram]:
    """The datagrams queued on ``sock`` with TTL, TOS and destination, RECEIVE_BATCH at most."""
    for _ in range(RECEIVE_BATCH):  # a flood of this open socket cannot hold the loop
        try:
            data, ancdata, _flags, source = sock.recvmsg(MAX_DATAGRAM, _CMSG_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionRefusedError:  # an ICMP error queued for an earlier send
            counts.refused += 1
            continue
        time_ns, ttl, tos, destination = _parse(ancdata, counts)
        local = None if destination is None else _address_text(destination)
        yield Datagram(data, (source[0], source[1]), local, time_ns or time.time_ns(), ttl, tos)


def transmit_times(sock: socket.socket) -> Iterator[tuple[int, int]]:
    """(send counter, kernel transmit ns) of each reply stamped since the last call."""
    while True:
        try:
            _data, ancdata, _flags, _addr = sock.recvmsg(0, _CMSG_SPACE, socket.MSG_ERRQUEUE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        time_ns, counter = 0, -1
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPING:
                secs, nsecs = _TIMESPEC.unpack_from(payload)  # [0]: the software stamp
                time_ns = secs * 1_000_000_000 + nsecs
            elif (level, kind) in _RECVERR:
                _errno, origin, _t, _c, _p, _info, data = _EXTENDED_ERR.unpack_from(payload)
                if origin == _SO_EE_ORIGIN_TIMESTAMPING:
                    counter = data
        if time_ns and counter >= 0:
            yield counter, time_ns


def tos_cmsg(sock: socket.socket, destination: str, dscp: int) -> list[tuple[int, int, bytes]]:
    """The ancillary data that sends one datagram with ``dscp`` (ECN Not-ECT)."""
    return _tos_cmsg(sock.family, destination.startswith("::ffff:"), dscp)


class StampReflectorEndpoint:
    """Reflects STAMP (and TWAMP-Light) packets arriving on one UDP socket."""

    def __init__(
        self, sock: socket.socket, engine: StampReflector, ike: IkeStampKeys | None = None
    ) -> None:
        self.sock = sock
        self.engine = engine
        self._ike = ike  # keys looked up per peer before its packets are reflected
        self._parked: dict[IPAddress, list[Datagram]] = {}  # by peer, awaiting its IKE SA
        self._fetches: set[asyncio.Task[None]] = set()  # referenced until done
        self.kernel = SocketCounts()
        self.port: int = sock.getsockname()[1]
        self._sends = 0  # the kernel's OPT_ID counter: one per datagram sent
        self._busy = 0.0  # perf_counter of the last send: after an idle spell the route is warmed
        self._loop = asyncio.get_running_loop()
        self._error = 0
        self._clock: asyncio.TimerHandle | None = None
        self.closed = False
        self._read_clock()
        self._loop.add_reader(sock, self._readable)

    @classmethod
    async def open(
        cls, host: str, port: int, mode: ReflectorMode, keys: KeyLookup | None = None
    ) -> "StampReflectorEndpoint":
        """Bind ``host``:``port`` and start reflecting; OSError when it cannot bind."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = open_test_socket(host, port, family, 0, _BUFFER)
        try:
            enable_ancillary(sock, transmit_times=mode is ReflectorMode.STATEFUL)
        except OSError:
            sock.close()
            raise
        ike = keys if isinstance(keys, IkeStampKeys) else None
        return cls(sock, StampReflector(mode, keys), ike)

    def close(self) -> None:
        """Stop reflecting and release the socket."""
        if self.closed:
            return
        self.closed = True
        if self._clock is not None:
            self._clock.cancel()
        self._loop.remove_reader(self.sock)
        self.kernel.settle(self.sock)
        self.sock.close()
        counters = self.engine.counters
        log.info(
            "STAMP reflector on port %d closed: %d received, %d reflected, %d refused",
            self.port,
            counters.received,
            counters.reflected,
            counters.received - counters.reflected,
        )

    def _read_clock(self) -> None:
        """The clock state for the Error Estimate and Timestamp Information, once a second."""
        state = clock_state()
        self._error = state.estimate.to_int()
        self.engine.synchronized = state.synchronized
        self._clock = self._loop.call_later(_CLOCK_PERIOD, self._read_clock)

    def _readable(self) -> None:
        engine, sock, kernel = self.engine, self.sock, self.kernel
        if engine.mode is ReflectorMode.STATEFUL:  # only stateful sessions ask for them
            for counter, time_ns in transmit_times(sock):
                engine.transmitted(counter, time_ns)
        for datagram in receive_datagrams(sock, kernel):
            if self._ike is not None and self._park(datagram):
                continue
            self._reflect(datagram)

    def _park(self, datagram: Datagram) -> bool:
        """Hold the datagram while its peer's IKE SA is looked up; True if held (or dropped)."""
        ike, peer, now = self._ike, peer_address(datagram.source[0]), time.monotonic()
        if ike is None or (peer not in self._parked and ike.known(peer, now)):
            return False
        parked = self._parked.get(peer)
        if parked is None:
            self._parked[peer] = [datagram]
            task = self._loop.create_task(self._fetch(ike, peer, now))
            self._fetches.add(task)
            task.add_done_callback(self._fetches.discard)
        elif len(parked) < _PARKED:
            parked.append(datagram)
        return True

    async def _fetch(self, ike: IkeStampKeys, peer: IPAddress, now: float) -> None:
        """Learn ``peer``'s key, then reflect what it sent meanwhile (kernel receive times kept)."""
        try:
            await ike.fetch(peer, now)
        finally:
            parked = self._parked.pop(peer, [])
        if not self.closed:
            for datagram in parked:
                self._reflect(datagram)

    def _reflect(self, datagram: Datagram) -> None:
        """Reflect one datagram, or log why not."""
        sock, engine = self.sock, self.engine
        received = Received(
            datagram.data,
            datagram.source,
            (datagram.destination, self.port),
            datagram.time_ns,
            datagram.ttl,
            datagram.tos,
        )
        reflection = engine.reflect(received)
        if reflection is None:
            log.info(
                "STAMP: dropped %d octets from %s port %d: %s",
                len(datagram.data),
                datagram.source[0],
                datagram.source[1],
                engine.last_refusal,
            )
            return
        dscp = reflection.dscp
        ancillary = [] if dscp is None else tos_cmsg(sock, datagram.source[0], dscp)
        if time.perf_counter() - self._busy > IDLE:  # this unconnected socket's route: warm it
            with contextlib.suppress(OSError):  # the send reports what is wrong
                sock.sendmsg([b""], ancillary, MSG_PROBE, datagram.source)
        ntp = ns_to_ntp(time.time_ns())
        wire = engine.stamp(reflection, ntp, self._error)  # the last step before the send
        try:
            sock.sendmsg([wire], ancillary, 0, datagram.source)
        except OSError as exc:  # e.g. ENOBUFS, or an ICMP error of an earlier reply
            log.info("STAMP: reply to %s not sent: %s", datagram.source[0], exc)
            return
        finally:
            self._busy = time.perf_counter()
        engine.sent(reflection, ntp, self._sends)
        self._sends += 1


@dataclass(frozen=True, slots=True)
class StampReflectorSettings:
    """Where and how ``otwamp server`` reflects STAMP; no endpoint: not at all (the default)."""

    endpoints: tuple[tuple[str, int], ...] = ()
    mode: ReflectorMode = ReflectorMode.STATEFUL
    keys: KeyLookup | None = field(default=None, repr=False)
    ike_keys: bool = False  # keys from the server's IKEv2 key source (``stamp.ike_keys``)


@contextlib.asynccontextmanager
async def serving_stamp(
    settings: StampReflectorSettings,
) -> AsyncIterator[list[StampReflectorEndpoint]]:
    """Reflect on every endpoint while in the context; OSError naming one that cannot bind."""
    opened: list[StampReflectorEndpoint] = []
    try:
        for host, port in settings.endpoints:
            try:
                opened.append(
                    await StampReflectorEndpoint.open(host, port, settings.mode, settings.keys)
                )
            except OSError as exc:
                where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                raise OSError(exc.errno, f"STAMP on UDP {where}: {exc.strerror or exc}") from None
            log.info("STAMP reflector (%s) on UDP %s port %d", settings.mode.value, host, port)
        yield opened
    finally:
        for endpoint in opened:
            endpoint.close()
