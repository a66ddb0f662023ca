"""How a Session-Reflector answers the TLVs of one packet (RFC 8972 §4), without I/O.

``answer_tlvs`` takes the TLV octets after a received base packet and
returns octets of the same length for the reflected packet (symmetric size,
RFC 8762 §4): each TLV it knows filled in with U, M and I cleared; one it
does not know copied with U set; the first malformed one flagged M and
everything from there copied unchanged; on an HMAC failure every TLV copied
with I set (RFC 8972 §4, §4.8). It never raises on peer octets.
"""

import ipaddress
from dataclasses import dataclass, field
from hmac import compare_digest

from otwamp.errors import ProtocolError
from otwamp.stamp.packets import StampHmac
from otwamp.stamp.tlv import (
    FLAG_I,
    FLAG_M,
    FLAG_U,
    HEADER_SIZE,
    HMAC_TLV_SIZE,
    SUB_TLV_LENGTHS,
    AccessReport,
    ClassOfService,
    DirectMeasurement,
    ExtraPadding,
    FollowUpTelemetry,
    HmacTlv,
    IPAddress,
    Location,
    SubTlvType,
    SyncSource,
    TimestampInformation,
    TimestampMethod,
    Tlv,
    TlvType,
    Typed,
    address_sub_tlv,
    decode_location_sub_tlv,
    decode_typed,
    split_tlvs,
)


@dataclass(frozen=True, slots=True)
class FollowUp:
    """The previous reflected packet of a stateful session (RFC 8972 §4.7)."""

    seq: int
    timestamp: int  # NTP, the best send time known: the kernel's, or the packet's own T3
    method: TimestampMethod


@dataclass(frozen=True, slots=True)
class Context:
    """What the reflector knows about one received packet and its session."""

    source: IPAddress
    source_port: int
    destination: IPAddress | None  # None when the kernel did not say (no IP_PKTINFO)
    destination_port: int
    tos: int | None  # the received DSCP and ECN octet, None when unknown
    synchronized: bool  # the clock's state, for the Timestamp Information TLV
    stateful: bool
    received: int = 0  # in-profile packets this session received, this one included
    transmitted: int = 0  # ... and reflected, this reply included
    follow_up: FollowUp | None = None


@dataclass(slots=True)
class TlvCounts:
    """TLVs a reflector could not process, by flag (RFC 8972 §4)."""

    unrecognized: int = 0
    malformed: int = 0
    integrity: int = 0


@dataclass(slots=True)
class Answer:
    """The reflected TLV octets and what they ask of the reply's IP header."""

    octets: bytearray
    dscp: int | None = None  # the DSCP the Class of Service TLV asks for, if any
    counts: TlvCounts = field(default_factory=TlvCounts)


def _flag(octets: bytearray, offset: int, flag: int) -> None:
    """Set ``flag`` in the Flags octet of the TLV at ``offset``, leaving the rest as received."""
    octets[offset] |= flag


def _sync_source(synchronized: bool) -> SyncSource:
    """What disciplines our clock: NTP when the kernel says synchronized, else free-running."""
    return SyncSource.NTP if synchronized else SyncSource.LOCAL_FREE_RUNNING


def _location(value: Location, context: Context, counts: TlvCounts) -> Location:
    """Fill ports and answer each request sub-TLV with the specific one (RFC 8972 §4.2.2)."""
    subs = split_tlvs(value.sub_tlvs)
    out = bytearray(value.sub_tlvs)
    for offset, sub in subs.tlvs:
        try:
            decode_location_sub_tlv(sub)
        except ProtocolError:
            if sub.type in SUB_TLV_LENGTHS:
                _flag(out, offset, FLAG_M)  # a known type with a wrong Length: stop here
                counts.malformed += 1
                return Location(context.destination_port, context.source_port, bytes(out))
            _flag(out, offset, FLAG_U)
            counts.unrecognized += 1
            continue
        answer = _location_answer(sub.type, context)
        out[offset : offset + sub.size] = answer.encode()
    if subs.malformed_at is not None and len(out) - subs.malformed_at >= HEADER_SIZE:
        _flag(out, subs.malformed_at, FLAG_M)
        counts.malformed += 1
    return Location(context.destination_port, context.source_port, bytes(out))


def _location_answer(kind: int, context: Context) -> Tlv:
    """The sub-TLV answering a Location sub-TLV of ``kind`` (RFC 8972 §4.2.2)."""
    if kind in (SubTlvType.SOURCE_MAC, SubTlvType.SOURCE_EUI48, SubTlvType.SOURCE_EUI64):
        # A UDP socket does not see the link layer: the EUI-64 field is zeroed, as the
        # RFC says for a packet without a Source MAC Address.
        return Tlv(0, SubTlvType.SOURCE_EUI64, bytes(8))
    if kind in (SubTlvType.SOURCE_IP, SubTlvType.SOURCE_IPV4, SubTlvType.SOURCE_IPV6):
        return address_sub_tlv(False, context.source)
    destination = context.destination
    if destination is None:  # unknown: the family of the source, the address left zero
        zero: IPAddress = (
            ipaddress.IPv4Address(0) if context.source.version == 4 else ipaddress.IPv6Address(0)
        )
        return address_sub_tlv(True, zero)
    return address_sub_tlv(True, destination)


def _answer(typed: Typed, context: Context, counts: TlvCounts, answer: Answer) -> Typed:
    """The reflector's version of one well-formed TLV."""
    if isinstance(typed, ExtraPadding | HmacTlv):
        return typed  # padding is copied; the HMAC is computed once all TLVs are done
    if isinstance(typed, Location):
        return _location(typed, context, counts)
    if isinstance(typed, TimestampInformation):
        sync = _sync_source(context.synchronized)
        # T2 is the kernel's receive stamp and T3 a user-space clock read: both are
        # software stamps of the local clock, "SW Local" (RFC 8972 Table 9).
        method = TimestampMethod.SW_LOCAL
        return TimestampInformation(sync, method, sync, method, typed.sub_tlvs)
    if isinstance(typed, ClassOfService):
        tos = context.tos or 0
        answer.dscp = typed.dscp1  # every DSCP is permitted here (local policy, §4.4)
        return ClassOfService(typed.dscp1, tos >> 2, tos & 3, 0)
    if isinstance(typed, DirectMeasurement):
        return DirectMeasurement(typed.sender_tx, context.received, context.transmitted)
    if isinstance(typed, AccessReport):
        return AccessReport(typed.access_id, typed.return_code)
    # Follow-Up Telemetry: zero in stateless mode or before a first reply (RFC 8972 §4.7).
    follow = context.follow_up if context.stateful else None
    if follow is None:
        return FollowUpTelemetry()
    return FollowUpTelemetry(follow.seq, follow.timestamp, follow.method)


def _integrity_ok(
    tlvs: list[tuple[int, Tlv]], octets: bytes, seq_field: bytes, key: StampHmac | None, auth: bool
) -> bool | None:
    """Whether the TLVs pass the HMAC TLV rules (RFC 8972 §4.8); None: not checked (no key).

    In authenticated mode TLVs other than one lone Extra Padding need an
    HMAC TLV; it must be the last TLV but for Extra Padding ones.
    """
    hmacs = [index for index, (_, tlv) in enumerate(tlvs) if tlv.type == TlvType.HMAC]
    lone_padding = len(tlvs) == 1 and tlvs[0][1].type == TlvType.EXTRA_PADDING
    if not hmacs:
        return not (auth and tlvs and not lone_padding)
    if key is None:
        return None
    last = hmacs[-1]
    after = tlvs[last + 1 :]
    offset, tlv = tlvs[last]
    if len(hmacs) > 1 or any(other.type != TlvType.EXTRA_PADDING for _, other in after):
        return False
    return compare_digest(key.digest(seq_field, octets[:offset]), tlv.value)


def _seal_hmac_tlv(
    out: bytearray, tlvs: list[tuple[int, Tlv]], reply_seq: bytes, key: StampHmac
) -> None:
    """Write the reply's HMAC TLV: its Sequence Number and the TLVs before it (§4.8)."""
    for offset, tlv in tlvs:
        if tlv.type == TlvType.HMAC and len(tlv.value) == HMAC_TLV_SIZE:
            start = offset + HEADER_SIZE
            out[start : start + HMAC_TLV_SIZE] = key.digest(reply_seq, out[:offset])


def answer_tlvs(
    octets: bytes,
    context: Context,
    *,
    seq_field: bytes,
    reply_seq: bytes,
    key: StampHmac | None,
    authenticated: bool,
) -> Answer:
    """The reflected TLV octets for received TLV ``octets``; same length, never raises.

    ``seq_field`` is the received Sequence Number field and ``reply_seq`` the
    reply's, over which the HMAC TLVs are checked and made (RFC 8972 §4.8);
    ``key`` is the session's HMAC key, if any.
    """
    split = split_tlvs(octets)
    answer = Answer(bytearray(octets))
    out, counts = answer.octets, answer.counts
    tlvs = list(split.tlvs)
    integrity = _integrity_ok(tlvs, octets, seq_field, key, authenticated)
    if integrity is False:
        for offset, _tlv in tlvs:
            _flag(out, offset, FLAG_I)
        counts.integrity += len(tlvs)
        return answer
    for offset, tlv in tlvs:
        if tlv.type == TlvType.HMAC and integrity is None:  # no key: cannot check or make it
            _flag(out, offset, FLAG_U)
            counts.unrecognized += 1
            continue
        try:
            typed = decode_typed(tlv)
        except ProtocolError:
            _flag(out, offset, FLAG_M)  # stop: the rest is copied as received (§4)
            counts.malformed += 1
            return answer
        if typed is None:
            _flag(out, offset, FLAG_U)
            counts.unrecognized += 1
            continue
        value = _answer(typed, context, counts, answer).encode_value()
        out[offset : offset + tlv.size] = Tlv(0, tlv.type, value).encode()
    if split.malformed_at is not None and len(out) - split.malformed_at >= HEADER_SIZE:
        _flag(out, split.malformed_at, FLAG_M)
        counts.malformed += 1
    if key is not None and integrity is True:
        _seal_hmac_tlv(out, tlvs, reply_seq, key)
    return answer
