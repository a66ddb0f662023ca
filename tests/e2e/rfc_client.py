"""A minimal OWAMP and TWAMP control client written from RFC 4656 §3 and RFC 5357 §3.

Also the TWAMP extensions: Start-N-Sessions / Stop-N-Sessions and their
acknowledgements (RFC 5938 §3.2-3.5), the Reflect Octets fields of
Request-TW-Session and Accept-Session (RFC 6038 §4.2-4.3).

Open mode only (Mode 1, plus any extension bits), blocking sockets and ``struct``; it shares no code
with otwamp, so the server is checked against the RFC text rather than
against our own codecs. Any message can be written in pieces with pauses
between them, as owping and powstream write Request-Session (its fixed part,
then the slots ~50 ms later).
"""

import itertools
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900 to 1970 (RFC 4656 §4.1.2 timestamps)
OPEN_MODE = 1  # unauthenticated (RFC 4656 §3.1)
HMAC = bytes(16)  # open mode: the HMAC fields are unused, MBZ semantics (RFC 4656 §3.2)
BLOCK = 16  # messages are whole AES blocks (RFC 4656 §3.4)
ERROR_ESTIMATE = 0x0001  # S 0, Z 0, Scale 0, Multiplier 1: unsynchronized (RFC 4656 §4.1.2)
ALL_SEQ = 0xFFFF_FFFF  # End Seq of a complete Fetch-Session (RFC 4656 §3.9)
EXPONENTIAL = 0  # Slot Type (RFC 4656 §3.5)

# RFC 4656 §3.5 Request-Session octets 0-95; RFC 5357 §3.5 Request-TW-Session has the same.
REQUEST = struct.Struct("!BBBBIIHH16s16s16sIQQI8x")
SLOT = struct.Struct("!B7xQ")  # Slot Type, MBZ, Slot Parameter (RFC 4656 §3.5)
ACCEPT_SESSION = struct.Struct("!BxH16s12x")  # Accept, MBZ, Port, SID, MBZ (RFC 4656 §3.5)
STOP_HEADER = struct.Struct("!BBxxI8x")  # 3, Accept, MBZ, Number of Sessions (RFC 4656 §3.8)
DESCRIPTION = struct.Struct("!16sII")  # SID, Next Seqno, Number of Skip Ranges (RFC 4656 §3.8)
FETCH = struct.Struct("!B7xII16s")  # 4, MBZ, Begin Seq, End Seq, SID (RFC 4656 §3.9)
FETCH_ACK = struct.Struct("!BBxxIII")  # Accept, Finished, Next Seqno, Skip Ranges, Records
RECORD = struct.Struct("!IHHQQB")  # Seq, Send/Receive Error Estimate, Send/Receive Time, TTL
TEST_OPEN = struct.Struct("!IQH")  # Sequence Number, Timestamp, Error Estimate (RFC 4656 §4.1.2)
SENDER_SEQ = 24  # Sender Sequence Number in a reflected packet (RFC 5357 §4.2.1)
# RFC 5938 §3.2-3.5: Command Number, Accept (MBZ in the commands), MBZ, Number of Sessions.
N_SESSIONS = struct.Struct("!BB10xI")
START_N, START_N_ACK, STOP_N, STOP_N_ACK = 7, 8, 9, 10  # RFC 5938 §6 Command Numbers
REFLECT_FIELDS = struct.Struct("!HH4x")  # Octets to be reflected, Length (RFC 6038 §4.2)


def ntp(seconds_since_1970: float) -> int:
    """A Unix time as a 64-bit NTP timestamp (RFC 4656 §4.1.2)."""
    return round((seconds_since_1970 + NTP_UNIX_OFFSET) * 2**32)


def ntp_interval(seconds: float) -> int:
    """An interval in the timestamp format, as Timeout and slot parameters are (RFC 4656 §3.5)."""
    return round(seconds * 2**32)


def padded(size: int) -> int:
    """``size`` rounded up to whole 16-octet blocks (RFC 4656 §3.8, §3.9)."""
    return -(-size // BLOCK) * BLOCK


def address(host: str) -> tuple[int, bytes]:
    """IPVN and the 16-octet address field: IPv4 then 12 zero octets (RFC 4656 §3.5)."""
    packed = socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    return (4 if len(packed) == 4 else 6), packed.ljust(16, b"\0")


@dataclass(frozen=True)
class Writes:
    """How a message is written: cut at ``at`` (or at every octet), ``pause`` seconds apart."""

    at: tuple[int, ...] = ()
    pause: float = 0.0
    each_octet: bool = False

    def pieces(self, message: bytes) -> list[bytes]:
        """The message cut into the pieces to write."""
        cuts = range(1, len(message)) if self.each_octet else sorted(self.at)
        bounds = [0, *(c for c in cuts if 0 < c < len(message)), len(message)]
        return [message[a:b] for a, b in itertools.pairwise(bounds)]


WHOLE = Writes()


@dataclass(frozen=True)
class Accepted:
    """An Accept-Session (RFC 4656 §3.5)."""

    accept: int
    port: int
    sid: bytes


@dataclass(frozen=True)
class Record:
    """A packet record of the Fetch-Session data (RFC 4656 §3.9)."""

    seq: int
    send_error: int
    receive_error: int
    send_time: int
    receive_time: int  # all zeros for a lost packet
    ttl: int


@dataclass(frozen=True)
class Fetched:
    """A Fetch-Ack and, when it accepts, the session's packet records (RFC 4656 §3.9)."""

    accept: int
    next_seqno: int
    records: list[Record]


class ControlClient:
    """One open-mode control connection; each message written as ``writes`` says."""

    def __init__(self, host: str, port: int, writes: Writes = WHOLE, timeout: float = 5.0) -> None:
        self.host = host
        self.writes = writes
        self.offered = 0  # the Server-Greeting's Modes
        self.reflected = (0, 0)  # the last Accept-Session's Reflected and Server octets
        self.sock = socket.create_connection((host, port), timeout)
        # Each write leaves as its own segment, so the server sees the pieces we cut.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.sock.close()

    def send(self, message: bytes, writes: Writes | None = None) -> None:
        """Write ``message`` in the pieces ``writes`` (or the connection's default) cuts."""
        how = writes or self.writes
        for i, piece in enumerate(how.pieces(message)):
            if i:
                time.sleep(how.pause)
            self.sock.sendall(piece)

    def receive(self, size: int) -> bytes:
        """Exactly ``size`` octets from the server."""
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError(f"server closed after {len(data)} of {size} octets")
            data += chunk
        return data

    def set_up(self, writes: Writes | None = None, extensions: int = 0) -> int:
        """Server-Greeting, open-mode Set-Up-Response; the Server-Start's Accept (RFC 4656 §3.1).

        ``extensions``: mode bits set besides open mode (RFC 5938 §3.1, RFC 6038 §4.1).
        """
        greeting = self.receive(64)
        modes = struct.unpack_from("!I", greeting, 12)[0]
        self.offered = modes
        if not modes & OPEN_MODE:
            raise ConnectionError(f"the server does not offer open mode (Modes {modes:#x})")
        # Mode, KeyID (80), Token (64), Client-IV (16): all unused in open mode.
        self.send(struct.pack("!I", OPEN_MODE | extensions) + bytes(80 + 64 + 16), writes)
        return self.receive(48)[15]  # Server-Start: MBZ (15), Accept, Server-IV, Start-Time, MBZ

    def start_sessions(self, writes: Writes | None = None) -> int:
        """Start-Sessions; the Start-Ack's Accept (RFC 4656 §3.7)."""
        self.send(bytes([2]) + bytes(15) + HMAC, writes)
        return self.receive(32)[0]

    def request_fixed_part(
        self,
        command: int,
        sender_port: int,
        receiver_port: int,
        start: int,
        timeout: float,
        conf_receiver: int = 0,
        slots: int = 0,
        packets: int = 0,
        sid: bytes = bytes(16),
    ) -> bytes:
        """Octets 0-95 of Request-Session (RFC 4656 §3.5) or Request-TW-Session (RFC 5357 §3.5).

        The test runs between this client and the server, both at the ends of this connection.
        """
        ipvn, client = address(self.sock.getsockname()[0])
        _, server = address(self.sock.getpeername()[0])
        sender, receiver = (client, server) if conf_receiver or command == 5 else (server, client)
        return REQUEST.pack(
            command,
            ipvn,  # the high four bits are MBZ
            int(command == 1 and not conf_receiver),  # Conf-Sender: the server sends
            conf_receiver,
            slots,
            packets,
            sender_port,
            receiver_port,
            sender,
            receiver,
            sid,  # chosen by the receiver: the server for its own, this client otherwise
            0,  # Padding Length
            start,
            ntp_interval(timeout),
            0,  # Type-P Descriptor: best effort
        )

    def accept_session(self) -> Accepted:
        """Read an Accept-Session (RFC 4656 §3.5), keeping its octets 20-23 (RFC 6038 §4.3)."""
        body = self.receive(48)[:32]
        accept, port, sid = ACCEPT_SESSION.unpack(body)
        self.reflected = struct.unpack_from("!HH", body, 20)  # Reflected, Server octets
        return Accepted(accept, port, sid)


class OwampClient(ControlClient):
    """OWAMP-Control (RFC 4656 §3): sessions from this client to the server."""

    def request_session(
        self,
        sender_port: int,
        packets: int,
        slots: Sequence[tuple[int, float]],
        start: int,
        timeout: float,
        writes: Writes | None = None,
    ) -> Accepted:
        """Request-Session with Conf-Receiver set: the server receives (RFC 4656 §3.5)."""
        fixed = self.request_fixed_part(
            1, sender_port, 0, start, timeout, conf_receiver=1, slots=len(slots), packets=packets
        )
        schedule = b"".join(SLOT.pack(kind, ntp_interval(mean)) for kind, mean in slots)
        self.send(fixed + HMAC + schedule + HMAC, writes)
        return self.accept_session()

    def request_from(
        self,
        receiver_port: int,
        packets: int,
        slots: Sequence[tuple[int, float]],
        start: int,
        timeout: float,
        sid: bytes,
    ) -> Accepted:
        """Request-Session with Conf-Sender set: the server sends to us (RFC 4656 §3.5)."""
        fixed = self.request_fixed_part(
            1, 0, receiver_port, start, timeout, slots=len(slots), packets=packets, sid=sid
        )
        schedule = b"".join(SLOT.pack(kind, ntp_interval(mean)) for kind, mean in slots)
        self.send(fixed + HMAC + schedule + HMAC)
        return self.accept_session()

    def stop_sessions(
        self,
        sid: bytes,
        next_seqno: int,
        writes: Writes | None = None,
        answered: bool = False,
        accept: int = 0,
    ) -> int:
        """Stop-Sessions for our one send session; the server's Number of Sessions (§3.8).

        ``answered``: the server's Stop-Sessions came first, so none follows.
        """
        description = DESCRIPTION.pack(sid, next_seqno, 0)
        message = STOP_HEADER.pack(3, accept, 1) + description.ljust(
            padded(len(description)), b"\0"
        )
        self.send(message + HMAC, writes)
        return 0 if answered else self.server_stop()

    def server_stop(self) -> int:
        """Read the server's Stop-Sessions, skipping its descriptions (RFC 4656 §3.8)."""
        command, _accept, sessions = STOP_HEADER.unpack(self.receive(BLOCK))
        if command != 3:
            raise ConnectionError(f"expected the server's Stop-Sessions, got command {command}")
        for _ in range(sessions):
            head = self.receive(2 * BLOCK)
            skips = DESCRIPTION.unpack_from(head)[2]
            self.receive(padded(DESCRIPTION.size + 8 * skips) - len(head))
        self.receive(len(HMAC))
        return int(sessions)

    def fetch_session(
        self, sid: bytes, writes: Writes | None = None, begin: int = 0, end: int = ALL_SEQ
    ) -> Fetched:
        """Fetch-Session for ``sid``, by default complete, and its answer (RFC 4656 §3.9)."""
        self.send(FETCH.pack(4, begin, end, sid) + HMAC, writes)
        accept, _finished, next_seqno, skips, count = FETCH_ACK.unpack(self.receive(32)[:16])
        if accept:
            return Fetched(accept, next_seqno, [])
        fixed = self.receive(REQUEST.size + len(HMAC))  # the Request-Session reproduction
        slots = struct.unpack_from("!I", fixed, 4)[0]
        self.receive(SLOT.size * slots + len(HMAC))
        self.receive(padded(8 * skips) + len(HMAC))
        data = self.receive(padded(RECORD.size * count) + len(HMAC))
        records = [Record(*fields) for fields in RECORD.iter_unpack(data[: RECORD.size * count])]
        return Fetched(accept, next_seqno, records)


class TwampClient(ControlClient):
    """TWAMP-Control (RFC 5357 §3)."""

    def request_tw_session(
        self,
        sender_port: int,
        start: int,
        timeout: float,
        writes: Writes | None = None,
        reflect: tuple[int, int] = (0, 0),
        padding: int = 0,
    ) -> Accepted:
        """Request-TW-Session; the server picks the reflector's port (RFC 5357 §3.5).

        ``reflect``: Octets to be reflected and Length of padding to reflect (RFC 6038 §4.2);
        ``padding``: the Padding Length, octets 64-67 (RFC 4656 §3.5).
        """
        fixed = self.request_fixed_part(5, sender_port, 0, start, timeout)
        fixed = fixed[:64] + struct.pack("!I", padding) + fixed[68:]
        fixed = fixed[: REQUEST.size - REFLECT_FIELDS.size] + REFLECT_FIELDS.pack(*reflect)
        self.send(fixed + HMAC, writes)
        return self.accept_session()

    def n_sessions(self, command: int, sids: Sequence[bytes], writes: Writes | None = None) -> None:
        """Start-N-Sessions (7) or Stop-N-Sessions (9) naming ``sids`` (RFC 5938 §3.2, §3.4)."""
        self.send(N_SESSIONS.pack(command, 0, len(sids)) + b"".join(sids) + HMAC, writes)

    def n_ack(self, expected: int) -> tuple[int, list[bytes]]:
        """One Start-N-Ack (8) or Stop-N-Ack (10): its Accept and SIDs (RFC 5938 §3.3, §3.5)."""
        command, accept, count = N_SESSIONS.unpack(self.receive(BLOCK))
        if command != expected:
            raise ConnectionError(f"expected command {expected}, got {command}")
        sids = [self.receive(16) for _ in range(count)]
        self.receive(len(HMAC))
        return accept, sids

    def stop_sessions(self, sessions: int, writes: Writes | None = None) -> None:
        """Stop-Sessions, Accept 0; no answer follows (RFC 5357 §3.8)."""
        self.send(STOP_HEADER.pack(3, 0, sessions) + HMAC, writes)


def sender_packet(seq: int) -> bytes:
    """An open-mode OWAMP-Test (or TWAMP-Test sender) packet sent now (RFC 4656 §4.1.2)."""
    return TEST_OPEN.pack(seq, ntp(time.time()), ERROR_ESTIMATE)


def reflected_seq(sock: socket.socket, reflector: tuple[str, int], seq: int) -> int:
    """Send TWAMP-Test packet ``seq``; the Sender Sequence Number reflected (RFC 5357 §4.2.1)."""
    sock.sendto(sender_packet(seq), reflector)
    data, _ = sock.recvfrom(2048)
    return int(struct.unpack_from("!I", data, SENDER_SEQ)[0])
