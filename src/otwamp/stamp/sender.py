"""The STAMP Session-Sender, without sockets or clocks (RFC 8762 §4.2, RFC 8972).

``prepare`` builds a packet ahead of its send time, its TLVs included (the
HMAC TLV covers only the Sequence Number and the TLVs, RFC 8972 §4.8);
``stamp`` writes the Timestamp and, when authenticated, the base HMAC as
the last step before the send call (decision D10); ``on_datagram`` turns a
reflected packet into a ``Reply`` of the shared TWAMP record, so the
metrics and reports of ``otwamp ping`` apply unchanged, and gathers what
the reflected TLVs say in ``StampExtras``.
"""

import secrets
from collections import Counter
from dataclasses import dataclass, field, replace

from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.results.records import Reply, Sent, Stamp, TwampSessionRecord
from otwamp.session.sender import stamp_of
from otwamp.stamp.packets import (
    HMAC_SIZE,
    SENDER_AUTH,
    SENDER_OPEN,
    STAMP,
    ReflectorPacket,
    StampHmac,
    stamp_offset,
)
from otwamp.stamp.tlv import (
    FLAG_I,
    FLAG_M,
    FLAG_U,
    AccessReport,
    ClassOfService,
    DirectMeasurement,
    ExtraPadding,
    FollowUpTelemetry,
    HmacTlv,
    Location,
    SubTlvType,
    TimestampInformation,
    Tlv,
    TlvType,
    Typed,
    decode_location_sub_tlv,
    decode_typed,
    split_tlvs,
    to_tlv,
)
from otwamp.wire.timestamp import ErrorEstimate, ntp_to_ns
from otwamp.wire.twamp_test import CorruptPacket

_PLACEHOLDER_ERROR = 1


@dataclass(frozen=True, slots=True)
class TlvRequest:
    """Which RFC 8972 TLVs each test packet carries."""

    extra_padding: int | None = None  # octets of Extra Padding (§4.1)
    location: bool = False  # with the Source MAC, Destination IP and Source IP sub-TLVs (§4.2)
    timestamp_information: bool = False  # §4.3
    class_of_service: int | None = None  # DSCP1 asked for the reflected packet (§4.4)
    direct_measurement: bool = False  # §4.5
    access_report: tuple[int, int] | None = None  # Access ID and Return Code (§4.6)
    follow_up: bool = False  # §4.7

    @property
    def any(self) -> bool:
        """Whether any TLV is asked for."""
        return self != TlvRequest()


@dataclass(slots=True)
class StampExtras:
    """What the reflected TLVs and headers said over a session (RFC 8972 §4)."""

    ssid: int
    ssid_zero: int = 0  # replies with SSID 0: a reflector without RFC 8972 §3
    unrecognized: int = 0  # TLVs the reflector flagged U
    malformed: int = 0  # ... M
    integrity: int = 0  # ... I, or whose HMAC TLV we could not verify
    cos_forward: Counter[tuple[int, int]] = field(default_factory=Counter)  # (DSCP2, ECN)
    cos_backward: Counter[tuple[int, int]] = field(default_factory=Counter)  # reply's (DSCP, ECN)
    cos_refused: int = 0  # RP = 1: the reflector did not use DSCP1 (§4.4)
    direct: DirectMeasurement | None = None  # the latest counters
    location: dict[str, object] | None = None  # the latest answer
    timestamp_information: TimestampInformation | None = None
    access_report: AccessReport | None = None
    follow_ups: dict[int, int] = field(default_factory=dict)  # reflector seq -> NTP send time


def _sender_tlvs(request: TlvRequest, seq: int, padding: bytes) -> list[Typed]:
    """The TLVs of packet ``seq`` as the Session-Sender fills them (RFC 8972 §4.1-§4.7)."""
    tlvs: list[Typed] = []
    if request.location:
        subs = b"".join(
            Tlv(0, kind, bytes(length)).encode()
            for kind, length in (
                (SubTlvType.SOURCE_MAC, 8),
                (SubTlvType.DESTINATION_IP, 16),
                (SubTlvType.SOURCE_IP, 16),
            )
        )
        tlvs.append(Location(0, 0, subs))
    if request.timestamp_information:
        tlvs.append(TimestampInformation())
    if request.class_of_service is not None:
        tlvs.append(ClassOfService(request.class_of_service))
    if request.direct_measurement:
        tlvs.append(DirectMeasurement(seq + 1))  # in-profile packets sent, this one included
    if request.access_report is not None:
        tlvs.append(AccessReport(*request.access_report))
    if request.follow_up:
        tlvs.append(FollowUpTelemetry())
    if request.extra_padding is not None:
        tlvs.append(ExtraPadding(padding))
    return tlvs


class StampSender:
    """Builds STAMP test packets and records the reflected ones for one session."""

    def __init__(
        self,
        record: TwampSessionRecord,
        ssid: int,
        request: TlvRequest = TlvRequest(),
        key: StampHmac | None = None,
    ) -> None:
        self.record = record
        self.request = request
        self.extras = StampExtras(ssid)
        self._key = key
        self._layout = SENDER_AUTH if key is not None else SENDER_OPEN
        self._base = self._layout.size + (HMAC_SIZE if key is not None else 0)
        self._stamp_at = stamp_offset(key is not None)
        # RFC 8972 §4.1: the Extra Padding SHOULD be pseudorandom; one draw per session.
        self._padding = secrets.token_bytes(request.extra_padding or 0)
        self._answered: set[int] = set()
        self.size = len(self.prepare(0))

    @property
    def answered(self) -> int:
        """How many distinct sent packets have been reflected back."""
        return len(self._answered)

    def prepare(self, seq: int) -> bytearray:
        """Packet ``seq`` with its TLVs; Timestamp and Error Estimate still to be stamped."""
        packet = bytearray(self._base)
        self._layout.pack_into(packet, 0, seq, 0, _PLACEHOLDER_ERROR, self.extras.ssid)
        typed = _sender_tlvs(self.request, seq, self._padding)
        padding = [tlv for tlv in typed if isinstance(tlv, ExtraPadding)]
        others = [tlv for tlv in typed if not isinstance(tlv, ExtraPadding)]
        # The Session-Sender sets U, the reflector clears it for what it understood (§4).
        tlvs = b"".join(to_tlv(tlv, FLAG_U).encode() for tlv in others)
        if self._key is not None and others:  # §4.8: authenticated TLVs carry an HMAC TLV
            mac = self._key.digest(packet[:4], tlvs)
            tlvs += to_tlv(HmacTlv(mac), FLAG_U).encode()
        tlvs += b"".join(to_tlv(tlv, FLAG_U).encode() for tlv in padding)
        return packet + tlvs

    def stamp(self, packet: bytearray, ntp: int, error: int) -> bytearray:
        """Write the send Timestamp and Error Estimate (and base HMAC); the result is sent."""
        STAMP.pack_into(packet, self._stamp_at, ntp, error)
        if self._key is not None:
            self._key.seal(packet)
        return packet

    def mark_sent(self, seq: int, ntp: int, error: ErrorEstimate) -> None:
        """Record that packet ``seq`` left with timestamp ``ntp``."""
        self.record.sent.append(Sent(seq, Stamp(ntp_to_ns(ntp), error.sync, error.seconds)))

    def on_datagram(
        self, data: bytes, t4: Stamp, ttl: int | None, tos: int | None = None
    ) -> Reply | None:
        """Record a reflected packet; a malformed, forged or foreign one is counted and dropped."""
        dropped = self.record.dropped
        try:
            packet = ReflectorPacket.decode(data, self._key)
        except AuthenticationError:
            dropped.auth_failures += 1
            return None
        except CorruptPacket:
            dropped.corrupt += 1
            return None
        except ProtocolError:
            dropped.truncated += 1
            return None
        extras = self.extras
        if packet.ssid != extras.ssid:
            if packet.ssid != 0:
                dropped.wrong_source += 1  # another session's reply (RFC 8972 §3)
                return None
            extras.ssid_zero += 1
        if packet.sender_seq >= len(self.record.sent):
            dropped.unknown_seq += 1
            return None
        reply = Reply(
            sender_seq=packet.sender_seq,
            reflector_seq=packet.seq,
            t1=stamp_of(packet.sender_timestamp, packet.sender_error),
            t2=stamp_of(packet.receive_timestamp, packet.error),
            t3=stamp_of(packet.timestamp, packet.error),
            t4=t4,
            sender_ttl=packet.sender_ttl,
            ttl=ttl,
        )
        self.record.replies.append(reply)
        self._answered.add(packet.sender_seq)
        if tos is not None:
            extras.cos_backward[(tos >> 2, tos & 3)] += 1
        if packet.tlvs:
            self._read_tlvs(packet.tlvs, bytes(data[:4]))
        return reply

    def _read_tlvs(self, octets: bytes, seq_field: bytes) -> None:
        """Take in the reflected TLVs as RFC 8972 §4 says: U skipped, M and I stop."""
        extras = self.extras
        tlvs = split_tlvs(octets).tlvs
        if any(tlv.flags & FLAG_I for _, tlv in tlvs):
            extras.integrity += 1
            return
        if not self._hmac_ok(octets, tlvs, seq_field):
            extras.integrity += 1
            return
        for _offset, tlv in tlvs:
            if tlv.flags & FLAG_U:
                extras.unrecognized += 1
                continue
            if tlv.flags & FLAG_M:
                extras.malformed += 1
                return
            try:
                typed = decode_typed(tlv)
            except ProtocolError:
                extras.malformed += 1
                return
            self._record(typed)

    def _hmac_ok(self, octets: bytes, tlvs: tuple[tuple[int, Tlv], ...], seq_field: bytes) -> bool:
        """Whether the reply's HMAC TLV, if we keyed one, matches (RFC 8972 §4.8)."""
        if self._key is None:
            return True
        for offset, tlv in tlvs:
            if tlv.type == TlvType.HMAC:
                try:
                    self._key.check(tlv.value, seq_field, octets[:offset])
                except AuthenticationError:
                    return False
        return True

    def _record(self, typed: Typed | None) -> None:
        extras = self.extras
        if isinstance(typed, ClassOfService):
            extras.cos_forward[(typed.dscp2, typed.ecn)] += 1
            extras.cos_refused += typed.rp == 1
        elif isinstance(typed, DirectMeasurement):
            extras.direct = typed
        elif isinstance(typed, TimestampInformation):
            extras.timestamp_information = typed
        elif isinstance(typed, AccessReport):
            extras.access_report = typed
        elif isinstance(typed, FollowUpTelemetry) and typed.timestamp:
            extras.follow_ups[typed.seq] = typed.timestamp
        elif isinstance(typed, Location):
            extras.location = _location_answer(typed)


def _location_answer(location: Location) -> dict[str, object]:
    """The ports and addresses a Location TLV answer reports (RFC 8972 §4.2.2)."""
    answer: dict[str, object] = {
        "destination_port": location.destination_port,
        "source_port": location.source_port,
    }
    for _offset, sub in split_tlvs(location.sub_tlvs).tlvs:
        if sub.flags & (FLAG_U | FLAG_M):
            continue
        try:
            value = decode_location_sub_tlv(sub)
        except ProtocolError:
            continue
        name = SubTlvType(sub.type).name.lower()
        answer[name] = value.hex(":") if isinstance(value, bytes) else str(value)
    return answer


def with_follow_up(record: TwampSessionRecord, follow_ups: dict[int, int]) -> int:
    """Replace each reply's T3 by its Follow-Up Timestamp where one came (RFC 8972 §4.7).

    Returns how many replies got one. The Error Estimate stays the reply's.
    """
    replaced = 0
    for index, reply in enumerate(record.replies):
        ntp = follow_ups.get(reply.reflector_seq)
        if ntp is None:
            continue
        t3 = replace(reply.t3, ns=ntp_to_ns(ntp))
        record.replies[index] = replace(reply, t3=t3)
        replaced += 1
    return replaced
