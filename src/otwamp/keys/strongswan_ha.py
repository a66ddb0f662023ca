"""strongSwan's HA sync messages as an RFC 7717 key source: codec, SA table, SK_d (sans-I/O).

charon's ``ha`` plugin sends every IKE SA to a passive cluster node over UDP 4510; an IKE_ADD
carries what that node needs to derive the SA's keys itself (nonces, g^ir, for a rekey the old
SK_d). There is no RFC for these messages: the layout is strongSwan 5.9.8's
``src/libcharon/plugins/ha/ha_message.[ch]`` (see docs/STRONGSWAN.md). The key derivation is
RFC 7296 §2.14 and §2.18, and the O/TWAMP secret prf(SK_d, "IPPM") RFC 7717 §5.1.
"""

import enum
import ipaddress
import struct
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar

from otwamp.errors import ProtocolError
from otwamp.ike.crypto.keymat import ippm_key, rekey_skeyseed, skeyseed
from otwamp.ike.crypto.prf import Prf
from otwamp.keys.aes_prf import AesPrf
from otwamp.keys.ikev2 import SaKey
from otwamp.keys.source import KeySourceKind

HA_VERSION = 3  # ha_message.h: HA_MESSAGE_VERSION
HA_PORT = 4510  # ha_socket.c: HA_PORT, on both ends
WHERE = "strongSwan ha_message.c"  # the "section" our errors cite: there is no RFC


class HaMessageError(ProtocolError):
    """An HA datagram that is malformed, of an unknown type, or lacks what its type needs."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message, field=field, section=WHERE)


class MessageType(enum.IntEnum):
    """ha_message_type_t."""

    IKE_ADD = 1
    IKE_UPDATE = 2
    IKE_MID_INITIATOR = 3
    IKE_MID_RESPONDER = 4
    IKE_DELETE = 5
    CHILD_ADD = 6
    CHILD_DELETE = 7
    SEGMENT_DROP = 8
    SEGMENT_TAKE = 9
    STATUS = 10
    RESYNC = 11
    IKE_IV = 12


class AttributeType(enum.IntEnum):
    """ha_message_attribute_t."""

    IKE_ID = 1
    IKE_REKEY_ID = 2
    LOCAL_ID = 3
    REMOTE_ID = 4
    REMOTE_EAP_ID = 5
    LOCAL_ADDR = 6
    REMOTE_ADDR = 7
    CONFIG_NAME = 8
    CONDITIONS = 9
    EXTENSIONS = 10
    LOCAL_VIP = 11
    REMOTE_VIP = 12
    PEER_ADDR = 13
    INITIATOR = 14
    NONCE_I = 15
    NONCE_R = 16
    SECRET = 17
    OLD_SKD = 18
    ALG_PRF = 19
    ALG_OLD_PRF = 20
    ALG_ENCR = 21
    ALG_ENCR_LEN = 22
    ALG_INTEG = 23
    ALG_DH = 24
    IPSEC_MODE = 25
    IPCOMP = 26
    INBOUND_SPI = 27
    OUTBOUND_SPI = 28
    INBOUND_CPI = 29
    OUTBOUND_CPI = 30
    LOCAL_TS = 31
    REMOTE_TS = 32
    MID = 33
    SEGMENT = 34
    ESN = 35
    IKE_VERSION = 36
    LOCAL_DH = 37
    REMOTE_DH = 38
    PSK = 39
    IV = 40
    AUTH_METHOD = 41


@dataclass(frozen=True, slots=True)
class IkeSaId:
    """IKE_ID / IKE_REKEY_ID: IKE version, SPIs in wire order, whether this node initiated."""

    version: int
    spi_i: bytes
    spi_r: bytes
    initiator: bool


@dataclass(frozen=True, slots=True)
class Host:
    """An address attribute: u16 port, u8 family (2 AF_INET, 10 AF_INET6), the address."""

    address: str
    port: int


@dataclass(frozen=True, slots=True)
class Identity:
    """LOCAL_ID, REMOTE_ID, REMOTE_EAP_ID: ID type (RFC 7296 §3.5) and its octets."""

    id_type: int
    data: bytes


@dataclass(frozen=True, slots=True)
class TrafficSelector:
    """LOCAL_TS / REMOTE_TS: type 7 (IPv4) or 8 (IPv6) range, protocol, ports (RFC 7296 §3.13.1)."""

    ts_type: int
    protocol: int
    from_port: int
    to_port: int
    dynamic: bool
    from_address: str
    to_address: str


Value = IkeSaId | Host | Identity | TrafficSelector | str | int | bytes


class _Kind(enum.Enum):
    """How a value is laid out (ha_message.c add_attribute / attribute_enumerate)."""

    SA_ID = enum.auto()
    IDENTITY = enum.auto()
    HOST = enum.auto()
    STRING = enum.auto()
    U8 = enum.auto()
    U16 = enum.auto()
    U32 = enum.auto()
    CHUNK = enum.auto()
    TS = enum.auto()


A = AttributeType
_KINDS: dict[AttributeType, _Kind] = {
    A.IKE_ID: _Kind.SA_ID,
    A.IKE_REKEY_ID: _Kind.SA_ID,
    A.LOCAL_ID: _Kind.IDENTITY,
    A.REMOTE_ID: _Kind.IDENTITY,
    A.REMOTE_EAP_ID: _Kind.IDENTITY,
    A.CONFIG_NAME: _Kind.STRING,
    A.LOCAL_TS: _Kind.TS,
    A.REMOTE_TS: _Kind.TS,
    **dict.fromkeys((A.LOCAL_ADDR, A.REMOTE_ADDR, A.LOCAL_VIP, A.REMOTE_VIP), _Kind.HOST),
    A.PEER_ADDR: _Kind.HOST,
    **dict.fromkeys((A.INITIATOR, A.IPSEC_MODE, A.IPCOMP, A.IKE_VERSION), _Kind.U8),
    **dict.fromkeys((A.CONDITIONS, A.EXTENSIONS, A.INBOUND_SPI, A.OUTBOUND_SPI), _Kind.U32),
    A.MID: _Kind.U32,
    **dict.fromkeys(
        (A.NONCE_I, A.NONCE_R, A.SECRET, A.OLD_SKD, A.LOCAL_DH, A.REMOTE_DH, A.PSK, A.IV),
        _Kind.CHUNK,
    ),
}
_KINDS.update((kind, _Kind.U16) for kind in AttributeType if kind not in _KINDS)
_FAMILIES = {2: 4, 10: 16}  # AF_INET, AF_INET6 (Linux) -> address length
_TS_TYPES = {7: 4, 8: 16}  # TS_IPV4_ADDR_RANGE, TS_IPV6_ADDR_RANGE (RFC 7296 §3.13.1)
_SA_ID = struct.Struct("!B8s8sB")
_TS_HEAD = struct.Struct("!BBHHB")
_INTS = {
    _Kind.U8: struct.Struct("!B"),
    _Kind.U16: struct.Struct("!H"),
    _Kind.U32: struct.Struct("!I"),
}


@dataclass(frozen=True, slots=True, repr=False)
class Attribute:
    """One attribute; octet strings (nonces, g^ir, SK_d, PSK) are never shown in its repr."""

    kind: AttributeType
    value: Value

    def __repr__(self) -> str:
        shown = f"<{len(self.value)} octets>" if isinstance(self.value, bytes) else repr(self.value)
        return f"Attribute({self.kind.name}, {shown})"


@dataclass(frozen=True, slots=True)
class HaMessage:
    """One HA datagram: version 3, a message type, attributes to its end (no length field)."""

    message_type: MessageType
    attributes: tuple[Attribute, ...] = ()

    @classmethod
    def decode(cls, data: bytes) -> "HaMessage":
        """Parse a datagram; anything malformed or unknown raises HaMessageError."""
        if len(data) < 2:
            raise HaMessageError(f"{len(data)} octets, a message has at least 2", field="length")
        if data[0] != HA_VERSION:
            raise HaMessageError(f"version {data[0]}, expected {HA_VERSION}", field="version")
        try:
            message_type = MessageType(data[1])
        except ValueError:
            raise HaMessageError(f"unknown message type {data[1]}", field="type") from None
        attributes: list[Attribute] = []
        offset = 2
        while offset < len(data):
            try:
                kind = AttributeType(data[offset])
            except ValueError:
                raise HaMessageError(
                    f"unknown attribute type {data[offset]} at octet {offset}", field="attribute"
                ) from None
            value, offset = _DECODERS[_KINDS[kind]](_Reader(data, offset + 1, kind))
            attributes.append(Attribute(kind, value))
        return cls(message_type, tuple(attributes))

    def encode(self) -> bytes:
        """The datagram's octets."""
        return bytes([HA_VERSION, self.message_type]) + b"".join(
            bytes([a.kind]) + _encode_value(_KINDS[a.kind], a.value) for a in self.attributes
        )

    def get(self, kind: AttributeType, expected: type["V"]) -> "V | None":
        """The first value of ``kind``, or None when absent."""
        for attribute in self.attributes:
            if attribute.kind is kind and isinstance(attribute.value, expected):
                return attribute.value
        return None

    def require(self, kind: AttributeType, expected: type["V"]) -> "V":
        """The first value of ``kind``; HaMessageError when absent."""
        value = self.get(kind, expected)
        if value is None:
            raise HaMessageError(f"{self.message_type.name} lacks {kind.name}", field=kind.name)
        return value


V = TypeVar("V", IkeSaId, Host, Identity, TrafficSelector, str, int, bytes)

RESYNC_ALL = HaMessage(MessageType.RESYNC, (Attribute(AttributeType.SEGMENT, 1),))
"""Asks charon to replay its cache for segment 1, every SA when ``segment_count`` is 1."""


@dataclass(slots=True)
class _Reader:
    data: bytes
    offset: int
    kind: AttributeType

    def take(self, size: int) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise HaMessageError(
                f"value truncated: needs {size} octets at {self.offset}, "
                f"{len(self.data) - self.offset} left",
                field=self.kind.name,
            )
        chunk, self.offset = self.data[self.offset : end], end
        return chunk

    def unpack(self, layout: struct.Struct) -> tuple[int | bytes, ...]:
        return layout.unpack(self.take(layout.size))

    def address(self, length: int) -> str:
        return str(ipaddress.ip_address(self.take(length)))


def _sa_id(reader: _Reader) -> tuple[Value, int]:
    version, spi_i, spi_r, initiator = reader.unpack(_SA_ID)
    assert isinstance(spi_i, bytes) and isinstance(spi_r, bytes) and isinstance(initiator, int)
    if initiator > 1:
        raise HaMessageError(f"initiator flag {initiator}, expected 0 or 1", field=reader.kind.name)
    return IkeSaId(int(version), spi_i, spi_r, bool(initiator)), reader.offset


def _identity(reader: _Reader) -> tuple[Value, int]:
    id_type, length = reader.take(2)
    return Identity(id_type, reader.take(length)), reader.offset


def _host(reader: _Reader) -> tuple[Value, int]:
    port, family = struct.unpack("!HB", reader.take(3))
    if family not in _FAMILIES:
        raise HaMessageError(f"unknown address family {family}", field=reader.kind.name)
    return Host(reader.address(_FAMILIES[family]), port), reader.offset


def _string(reader: _Reader) -> tuple[Value, int]:
    end = reader.data.find(b"\0", reader.offset)
    if end < 0:
        raise HaMessageError("string without its NUL terminator", field=reader.kind.name)
    try:
        text = reader.take(end - reader.offset).decode("utf-8")
    except UnicodeDecodeError:
        raise HaMessageError("string is not UTF-8", field=reader.kind.name) from None
    return text, end + 1


def _chunk(reader: _Reader) -> tuple[Value, int]:
    (length,) = struct.unpack("!H", reader.take(2))
    return reader.take(length), reader.offset


def _ts(reader: _Reader) -> tuple[Value, int]:
    ts_type, protocol, from_port, to_port, dynamic = reader.unpack(_TS_HEAD)
    assert isinstance(ts_type, int) and isinstance(dynamic, int)
    if ts_type not in _TS_TYPES:
        raise HaMessageError(f"unknown traffic selector type {ts_type}", field=reader.kind.name)
    if dynamic > 1:
        raise HaMessageError(f"dynamic flag {dynamic}, expected 0 or 1", field=reader.kind.name)
    low, high = reader.address(_TS_TYPES[ts_type]), reader.address(_TS_TYPES[ts_type])
    ports = (int(protocol), int(from_port), int(to_port))
    return TrafficSelector(ts_type, *ports, bool(dynamic), low, high), reader.offset


def _integer(layout: struct.Struct) -> Callable[[_Reader], tuple[Value, int]]:
    def decode(reader: _Reader) -> tuple[Value, int]:
        (value,) = reader.unpack(layout)
        assert isinstance(value, int)
        return value, reader.offset

    return decode


_DECODERS: dict[_Kind, Callable[[_Reader], tuple[Value, int]]] = {
    _Kind.SA_ID: _sa_id,
    _Kind.IDENTITY: _identity,
    _Kind.HOST: _host,
    _Kind.STRING: _string,
    _Kind.CHUNK: _chunk,
    _Kind.TS: _ts,
    **{kind: _integer(layout) for kind, layout in _INTS.items()},
}


def _encode_value(kind: _Kind, value: Value) -> bytes:
    """The octets of one value; the inverse of the decoders (used for RESYNC and in tests)."""
    match kind, value:
        case _Kind.SA_ID, IkeSaId():
            return _SA_ID.pack(value.version, value.spi_i, value.spi_r, value.initiator)
        case _Kind.IDENTITY, Identity():
            return bytes([value.id_type, len(value.data)]) + value.data
        case _Kind.HOST, Host():
            packed = ipaddress.ip_address(value.address).packed
            return struct.pack("!HB", value.port, 2 if len(packed) == 4 else 10) + packed
        case _Kind.STRING, str():
            return value.encode("utf-8") + b"\0"
        case _Kind.CHUNK, bytes():
            return struct.pack("!H", len(value)) + value
        case _Kind.TS, TrafficSelector():
            head = _TS_HEAD.pack(
                value.ts_type, value.protocol, value.from_port, value.to_port, value.dynamic
            )
            addresses = (
                ipaddress.ip_address(a).packed for a in (value.from_address, value.to_address)
            )
            return head + b"".join(addresses)
        case ((_Kind.U8 | _Kind.U16 | _Kind.U32), int()):
            return _INTS[kind].pack(value)
    raise TypeError(f"{type(value).__name__} is not a {kind.name} value")


def prf_for(prf_id: int, field_name: str) -> Prf:
    """The PRF of an IKEv2 transform ID (RFC 7296 §3.3.2): HMAC (RFC 4868), XCBC or CMAC."""
    if prf_id in AesPrf.IDS:
        return AesPrf(prf_id)
    try:
        return Prf.from_id(prf_id)
    except ProtocolError:
        raise HaMessageError(f"unsupported PRF {prf_id}", field=field_name) from None


def derive_sk_d(message: HaMessage) -> bytes:
    """SK_d of the IKE SA an IKE_ADD describes (RFC 7296 §2.14, §2.18).

    SKEYSEED = prf(Ni | Nr, g^ir), for AES-XCBC/CMAC keyed with Ni[0:8] | Nr[0:8] (§2.14);
    a rekey's is prf_old(SK_d old, g^ir | Ni | Nr) (§2.18). SK_d is the first PRF-key-length
    octets of prf+(SKEYSEED, Ni | Nr | SPIi | SPIr). charon 5.9.8 (keymat_v2.c) runs a rekey's
    prf+ with the old SA's PRF, so we do too: it differs from §2.18 only if a rekey changes the
    PRF.
    """
    sa_id = message.require(A.IKE_ID, IkeSaId)
    prf = prf_for(message.require(A.ALG_PRF, int), "ALG_PRF")
    ni, nr = message.require(A.NONCE_I, bytes), message.require(A.NONCE_R, bytes)
    g_ir = message.require(A.SECRET, bytes)
    old_sk_d = message.get(A.OLD_SKD, bytes)
    if old_sk_d is None:
        half = 8 if isinstance(prf, AesPrf) else None  # fixed 16-octet key: half of each nonce
        seed, expand = skeyseed(prf, ni[:half], nr[:half], g_ir), prf
    else:
        expand = prf_for(message.require(A.ALG_OLD_PRF, int), "ALG_OLD_PRF")
        seed = rekey_skeyseed(expand, old_sk_d, g_ir, ni, nr)
    return expand.plus(seed, ni + nr + sa_id.spi_i + sa_id.spi_r, prf.size)


@dataclass(frozen=True, slots=True)
class HaSa:
    """An IKE SA as the table keeps it: SPIs, peer, PRF and prf(SK_d, "IPPM"), never SK_d."""

    spi_i: bytes
    spi_r: bytes
    peer: str
    prf_id: int
    key: bytes = field(repr=False)
    established: int = 0  # order of establishment, 0 while pending: the newest is highest

    def sa_key(self) -> SaKey:
        """The record the RFC 7717 key source hands out (keys/ikev2.py)."""
        return SaKey(self.spi_i, self.spi_r, self.peer, self.key, KeySourceKind.STRONGSWAN)

    @property
    def label(self) -> str:
        """SPIi/SPIr in hex, for logs (never the key)."""
        return f"SPIi={self.spi_i.hex()} SPIr={self.spi_r.hex()}"


class Change(enum.Enum):
    """What a message did to the table, for the driver's log."""

    ADDED = "added (not yet authenticated)"
    ESTABLISHED = "established"
    DELETED = "deleted"
    MISSED = "established, but its IKE_ADD was missed (RESYNC replays it)"
    IGNORED = "ignored: not IKEv2"


@dataclass(slots=True)
class HaSaTable:
    """The IKE SAs charon reported: pending after IKE_ADD, usable after IKE_UPDATE."""

    _sas: dict[tuple[bytes, bytes], HaSa] = field(default_factory=dict)
    _counter: int = 0

    def receive(self, message: HaMessage) -> tuple[Change, str] | None:
        """Apply one message; returns what changed and the SA's label, or None for no change."""
        match message.message_type:
            case MessageType.IKE_ADD:
                return self._add(message)
            case MessageType.IKE_UPDATE:
                return self._update(message)
            case MessageType.IKE_DELETE:
                sa_id = message.require(A.IKE_ID, IkeSaId)
                gone = self._sas.pop((sa_id.spi_i, sa_id.spi_r), None)
                return None if gone is None else (Change.DELETED, gone.label)
        return None  # MID, IV, CHILD_*, segments, STATUS: nothing RFC 7717 needs

    def established(self, spi_i: bytes, spi_r: bytes) -> HaSa | None:
        """The authenticated SA with these SPIs, or None."""
        sa = self._sas.get((spi_i, spi_r))
        return sa if sa is not None and sa.established else None

    def newest_with(self, matches: Callable[[str], bool]) -> HaSa | None:
        """The most recently established SA whose peer address ``matches``."""
        candidates = [sa for sa in self._sas.values() if sa.established and matches(sa.peer)]
        return max(candidates, key=lambda sa: sa.established, default=None)

    def __len__(self) -> int:
        return len(self._sas)

    def _add(self, message: HaMessage) -> tuple[Change, str] | None:
        sa_id = message.require(A.IKE_ID, IkeSaId)
        if sa_id.version != 2 or message.get(A.IKE_VERSION, int) not in (None, 2):
            return Change.IGNORED, f"SPIi={sa_id.spi_i.hex()} SPIr={sa_id.spi_r.hex()}"
        prf = prf_for(message.require(A.ALG_PRF, int), "ALG_PRF")
        peer = message.require(A.REMOTE_ADDR, Host).address
        sa = HaSa(sa_id.spi_i, sa_id.spi_r, peer, prf.prf_id, ippm_key(derive_sk_d(message), prf))
        self._sas[(sa.spi_i, sa.spi_r)] = sa
        return Change.ADDED, sa.label

    def _update(self, message: HaMessage) -> tuple[Change, str] | None:
        sa_id = message.require(A.IKE_ID, IkeSaId)
        sa = self._sas.get((sa_id.spi_i, sa_id.spi_r))
        if sa is None:
            return Change.MISSED, f"SPIi={sa_id.spi_i.hex()} SPIr={sa_id.spi_r.hex()}"
        remote = message.get(A.REMOTE_ADDR, Host)  # moves with MOBIKE
        peer = sa.peer if remote is None else remote.address
        if sa.established:
            self._sas[(sa.spi_i, sa.spi_r)] = replace(sa, peer=peer)
            return None
        self._counter += 1
        self._sas[(sa.spi_i, sa.spi_r)] = replace(sa, peer=peer, established=self._counter)
        return Change.ESTABLISHED, sa.label
