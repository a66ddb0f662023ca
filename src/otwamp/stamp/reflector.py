"""The STAMP Session-Reflector, without sockets or clocks (RFC 8762 §4.3, RFC 8972).

``reflect`` turns one received datagram into a reply whose own Timestamp is
still to be written; ``stamp`` writes it (and, when authenticated, the
HMAC) as the last step before the send call (decision D10); ``sent`` and
``transmitted`` tell a stateful session when its reply left, for the
Follow-Up Telemetry TLV of the next one (RFC 8972 §4.7).

Stateless mode copies the sender's Sequence Number; stateful mode numbers
the replies of each session from 0 (RFC 8762 §4). A session is the 4-tuple
and the SSID (RFC 8972 §3), learned from its first packet: the table holds
at most ``max_sessions``, the least recently used going first, and forgets
a session idle for ``idle_ns``. Authenticated mode is chosen per packet: a
peer and SSID with an HMAC key (``KeyLookup``) must send authenticated
packets (RFC 8762 §4.2.2), whose HMAC is checked before anything else is
read (§4.4); the others are reflected unauthenticated, which is also how a
TWAMP-Light Session-Sender is served (RFC 8762 §4.6).
"""

import enum
import functools
import ipaddress
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.stamp.extensions import Context, FollowUp, TlvCounts, answer_tlvs
from otwamp.stamp.packets import (
    AUTH_SIZE,
    BASE_SIZE,
    REFLECTOR_AUTH,
    REFLECTOR_OPEN,
    STAMP,
    SenderPacket,
    StampHmac,
    base_size,
    stamp_offset,
)
from otwamp.stamp.tlv import IPAddress, TimestampMethod
from otwamp.wire.timestamp import ns_to_ntp
from otwamp.wire.twamp_test import CorruptPacket

UNKNOWN_TTL = 255  # Session-Sender TTL when the kernel did not report it (RFC 5357 §4.2)
MAX_SESSIONS = 10_000
IDLE_NS = 900 * 10**9  # as TWAMP's REFWAIT default (RFC 5357 §4.2)
_SSID_AUTH = struct.Struct("!26xH")  # the SSID of an authenticated sender packet
_SSID_OPEN = struct.Struct("!14xH")  # ... of an unauthenticated one (RFC 8972 §3)
_MAX_PENDING = 1024  # replies whose kernel transmit time is awaited
_PLACEHOLDER_ERROR = 1  # a valid Error Estimate until ``stamp`` writes the real one

KeyLookup = Callable[[IPAddress, int], StampHmac | None]


class ReflectorMode(enum.Enum):
    """How the Session-Reflector numbers its replies (RFC 8762 §4)."""

    STATELESS = "stateless"
    STATEFUL = "stateful"


@dataclass(frozen=True, slots=True)
class Received:
    """One datagram as the driver got it.

    ``destination`` is our address the sender used (IP_PKTINFO; None when
    unknown) and our port; ``tos`` the received DSCP/ECN octet.
    """

    data: bytes
    source: tuple[str, int]
    destination: tuple[str | None, int]
    received_ns: int
    ttl: int | None = None
    tos: int | None = None


@dataclass(slots=True)
class ReflectorCounters:
    """What the reflector did with what it got; datagrams refused are counted, never raised."""

    received: int = 0
    reflected: int = 0
    truncated: int = 0  # shorter than any Session-Sender packet, or than its mode's base
    corrupt: int = 0  # Error Estimate Multiplier 0 (RFC 4656 §4.1.2)
    auth_failures: int = 0
    sessions: int = 0  # stateful sessions learned
    evicted: int = 0  # stateful sessions dropped for a new one with the table full
    tlvs: TlvCounts = field(default_factory=TlvCounts)


@dataclass(slots=True)
class _Session:
    """A stateful session's numbering, counters and last reply (RFC 8762 §4, RFC 8972 §4.5)."""

    last_ns: int
    seq: int = 0
    received: int = 0
    transmitted: int = 0
    follow_up: FollowUp | None = None


@dataclass(slots=True)
class Reflection:
    """A reply ready to be stamped and sent, and what its sending needs."""

    packet: bytearray
    seq: int
    dscp: int | None  # DSCP to send it with; None: the socket's
    key: StampHmac | None = field(repr=False)
    session: _Session | None


SessionKey = tuple[IPAddress, int, IPAddress | None, int, int]


@functools.lru_cache(maxsize=4096)
def peer_address(text: str) -> IPAddress:
    """An address as the socket named it: scope dropped, IPv4-mapped IPv6 unmapped.

    Cached: parsing an address costs more than reflecting the packet, and a
    reflector sees the same few peers again and again.
    """
    address = ipaddress.ip_address(text.partition("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class StampReflector:
    """Reflects STAMP and TWAMP-Light test packets; one instance per listening socket."""

    def __init__(
        self,
        mode: ReflectorMode = ReflectorMode.STATEFUL,
        keys: KeyLookup | None = None,
        *,
        max_sessions: int = MAX_SESSIONS,
        idle_ns: int = IDLE_NS,
        synchronized: bool = False,
    ) -> None:
        self.mode = mode
        self.counters = ReflectorCounters()
        self.synchronized = synchronized  # the clock state, refreshed by the driver
        self.last_refusal = ""  # why the last refused datagram was refused, for the log
        self._keys = keys
        self._max_sessions = max_sessions
        self._idle_ns = idle_ns
        self._sessions: OrderedDict[SessionKey, _Session] = OrderedDict()
        self._pending: dict[int, tuple[_Session, int]] = {}  # send id -> session, its seq

    @property
    def session_count(self) -> int:
        """Stateful sessions held now."""
        return len(self._sessions)

    def reflect(self, received: Received) -> Reflection | None:
        """The reply to ``received``, or None when it is refused (and counted)."""
        counters = self.counters
        counters.received += 1
        data = received.data
        try:
            source = peer_address(received.source[0])
            local = received.destination[0]
            destination = None if local is None else peer_address(local)
        except ValueError:  # not an IP address: cannot happen with a UDP socket
            counters.truncated += 1
            self.last_refusal = "source is not an IP address"
            return None
        try:
            key = self._key_for(source, data)
            packet = SenderPacket.decode(data, key)
        except AuthenticationError as exc:
            counters.auth_failures += 1
            self.last_refusal = str(exc)
            return None
        except CorruptPacket as exc:
            counters.corrupt += 1
            self.last_refusal = str(exc)
            return None
        except ProtocolError as exc:
            counters.truncated += 1
            self.last_refusal = str(exc)
            return None
        session = self._session(
            (source, received.source[1], destination, received.destination[1], packet.ssid),
            received.received_ns,
        )
        seq = packet.seq if session is None else session.seq
        if session is not None:
            session.seq += 1
            session.received += 1
            session.transmitted += 1
        authenticated = key is not None
        base = base_size(authenticated)
        reply = bytearray(max(base, len(data)))  # symmetric size (RFC 8762 §4.3, §4.6)
        layout = REFLECTOR_AUTH if authenticated else REFLECTOR_OPEN
        ttl = UNKNOWN_TTL if received.ttl is None else received.ttl
        t2 = ns_to_ntp(received.received_ns)
        layout.pack_into(
            reply,
            0,
            seq,
            0,
            _PLACEHOLDER_ERROR,
            packet.ssid,
            t2,
            packet.seq,
            packet.timestamp,
            packet.error,
            ttl,
        )
        dscp = None if received.tos is None else received.tos >> 2
        if len(data) > base:
            context = Context(
                source=source,
                source_port=received.source[1],
                destination=destination,
                destination_port=received.destination[1],
                tos=received.tos,
                synchronized=self.synchronized,
                stateful=session is not None,
                received=0 if session is None else session.received,
                transmitted=0 if session is None else session.transmitted,
                follow_up=None if session is None else session.follow_up,
            )
            answer = answer_tlvs(
                bytes(data[base:]),
                context,
                seq_field=bytes(data[:4]),
                reply_seq=bytes(reply[:4]),
                key=key,
                authenticated=authenticated,
            )
            reply[base:] = answer.octets
            self._add_counts(answer.counts)
            if answer.dscp is not None:
                dscp = answer.dscp
        counters.reflected += 1
        return Reflection(reply, seq, dscp, key, session)

    def stamp(self, reflection: Reflection, ntp: int, error: int) -> bytearray:
        """Write the reply's Timestamp and Error Estimate (and HMAC); it then goes on the wire."""
        packet = reflection.packet
        STAMP.pack_into(packet, stamp_offset(reflection.key is not None), ntp, error)
        if reflection.key is not None:
            reflection.key.seal(packet)
        return packet

    def sent(self, reflection: Reflection, ntp: int, send_id: int | None) -> None:
        """The reply left with its own Timestamp ``ntp``; ``send_id`` awaits its kernel time."""
        session = reflection.session
        if session is None:
            return
        session.follow_up = FollowUp(reflection.seq, ntp, TimestampMethod.SW_LOCAL)
        if send_id is not None:
            if len(self._pending) >= _MAX_PENDING:
                del self._pending[next(iter(self._pending))]
            self._pending[send_id] = (session, reflection.seq)

    def transmitted(self, send_id: int, time_ns: int) -> None:
        """The kernel's transmit time of reply ``send_id`` (SO_TIMESTAMPING), for Follow-Up."""
        pending = self._pending.pop(send_id, None)
        if pending is None:
            return
        session, seq = pending
        follow = session.follow_up
        if follow is not None and follow.seq == seq:  # still the session's last reply
            # The kernel's software transmit stamp: still "SW Local" (RFC 8972 Table 9),
            # but taken after the stack rather than before the send call.
            session.follow_up = FollowUp(seq, ns_to_ntp(time_ns), TimestampMethod.SW_LOCAL)

    def _key_for(self, source: IPAddress, data: bytes) -> StampHmac | None:
        """The HMAC key of the packet's peer and SSID, if it has one: then it is authenticated.

        Raises AuthenticationError for a packet in the unauthenticated layout
        whose peer and SSID have a key: that session must be authenticated.
        """
        keys = self._keys
        if keys is None:
            return None
        if len(data) >= AUTH_SIZE:
            key = keys(source, _SSID_AUTH.unpack_from(data)[0])
            if key is not None:
                return key
        ssid = _SSID_OPEN.unpack_from(data)[0] if len(data) >= BASE_SIZE else 0
        if keys(source, ssid) is not None:
            raise AuthenticationError(
                "an unauthenticated packet for a session with a key",
                field="HMAC",
                section="RFC 8762 §4.4",
            )
        return None

    def _session(self, key: SessionKey, now_ns: int) -> _Session | None:
        """The stateful session of ``key``, learned if new; None in stateless mode."""
        if self.mode is ReflectorMode.STATELESS:
            return None
        sessions = self._sessions
        session = sessions.get(key)
        if session is not None and now_ns - session.last_ns < self._idle_ns:
            session.last_ns = now_ns
            sessions.move_to_end(key)
            return session
        if session is not None:  # idle too long: a new session with the same 4-tuple
            del sessions[key]
        self._expire(now_ns)
        if len(sessions) >= self._max_sessions:
            sessions.popitem(last=False)
            self.counters.evicted += 1
        session = _Session(now_ns)
        sessions[key] = session
        self.counters.sessions += 1
        return session

    def _expire(self, now_ns: int) -> None:
        """Forget the sessions idle for ``idle_ns``: the least recently used come first."""
        sessions = self._sessions
        while sessions:
            oldest = next(iter(sessions.values()))
            if now_ns - oldest.last_ns < self._idle_ns:
                return
            sessions.popitem(last=False)

    def _add_counts(self, counts: TlvCounts) -> None:
        total = self.counters.tlvs
        total.unrecognized += counts.unrecognized
        total.malformed += counts.malformed
        total.integrity += counts.integrity
