"""OWAMP-Control commands and responses (RFC 4656 §3.4-3.7): Request-Session and its slots.

Each class encodes its body: the message without its 16-octet HMAC blocks.
Request-Session has two HMACs (after octet 95 and after the slots, RFC 4656
§3.5), so it encodes to two parts, ``encode_parts() -> (fixed, slots)``, and
the control channel seals (``ControlSender.seal``) and opens
(``ControlReceiver.open``) each part separately. Accept-Session,
Start-Sessions and Start-Ack have the same layout in OWAMP and TWAMP and are
reused from ``twamp_control``; Stop-Sessions is in ``owamp_stop``, Fetch-Session
and its answer in ``owamp_fetch``. MBZ fields are sent as zero and ignored
on receipt (RFC 4656 §3.1).
"""

import enum
import struct
from dataclasses import dataclass

from otwamp.errors import ProtocolError
from otwamp.wire._fields import (
    IPAddress,
    check_command,
    decode_addresses,
    encode_address,
    need_length,
)
from otwamp.wire._owamp import SECTION_REQUEST, UINT32, UINT64, check_sid, check_uint
from otwamp.wire.registry import OwampCommand
from otwamp.wire.timestamp import duration_to_ntp, ntp_to_duration
from otwamp.wire.twamp_control import (
    HMAC_SIZE,
    AcceptSession,
    StartAck,
    StartSessions,
)

__all__ = [
    "HMAC_SIZE",
    "AcceptSession",
    "RequestSession",
    "Slot",
    "SlotType",
    "StartAck",
    "StartSessions",
]


class SlotType(enum.IntEnum):
    """Schedule slot types (RFC 4656 §3.5, §3.6)."""

    EXPONENTIAL = 0  # the parameter is the mean wait
    FIXED = 1  # the parameter is the wait itself


@dataclass(frozen=True, slots=True)
class Slot:
    """One Schedule Slot Description: type and a timestamp-format interval (RFC 4656 §3.5)."""

    type: SlotType
    parameter: int

    SIZE = 16
    _S = struct.Struct("!B7xQ")

    def __post_init__(self) -> None:
        check_uint(self.parameter, UINT64, "Slot Parameter")

    @classmethod
    def of_seconds(cls, type_: SlotType, seconds: float) -> "Slot":
        """A slot whose parameter is ``seconds`` (RFC 4656 §3.6)."""
        return cls(type_, duration_to_ntp(seconds))

    @property
    def seconds(self) -> float:
        """The parameter in seconds (RFC 4656 §3.6)."""
        return ntp_to_duration(self.parameter)

    def encode(self) -> bytes:
        """Encode the 16-octet slot description (RFC 4656 §3.5)."""
        return self._S.pack(self.type, self.parameter)

    @classmethod
    def decode(cls, data: bytes) -> "Slot":
        """Decode a 16-octet slot description; types other than 0 and 1 are refused (§3.5)."""
        need_length(data, cls.SIZE, "Schedule Slot", SECTION_REQUEST)
        kind, parameter = cls._S.unpack(data)
        if kind not in (SlotType.EXPONENTIAL, SlotType.FIXED):
            raise ProtocolError(
                f"Slot Type {kind}, not 0 or 1", field="Slot Type", section="RFC 4656 §3.6"
            )
        return cls(SlotType(kind), parameter)


@dataclass(frozen=True, slots=True)
class RequestSession:
    """Request-Session (RFC 4656 §3.5): one one-way test session and its schedule.

    Two parts, each followed by an HMAC: the 96-octet fixed part and the
    16-octet slot descriptions. Conf-Sender/Conf-Receiver are booleans: any
    non-zero value received means 1 (RFC 4656 §3.5).
    """

    sender_address: IPAddress
    receiver_address: IPAddress
    sender_port: int
    receiver_port: int
    slots: tuple[Slot, ...]
    num_packets: int
    conf_sender: bool = False
    conf_receiver: bool = False
    padding_length: int = 0
    start_time: int = 0
    timeout: int = 0
    type_p: int = 0
    sid: bytes = bytes(16)

    SECTION = SECTION_REQUEST
    FIXED = 96
    _S = struct.Struct("!BBBBIIHH16s16s16sIQQI8x")

    def __post_init__(self) -> None:
        if self.sender_address.version != self.receiver_address.version:
            raise ValueError("sender and receiver addresses must be of one IP version")
        if not self.slots:
            raise ValueError("a Request-Session has one or more schedule slots")
        check_sid(self.sid)
        for value, what in ((self.sender_port, "Sender Port"), (self.receiver_port, "Port")):
            check_uint(value, 0xFFFF, what)
        for value, what in (
            (self.num_packets, "Number of Packets"),
            (self.padding_length, "Padding Length"),
            (self.type_p, "Type-P Descriptor"),
        ):
            check_uint(value, UINT32, what)
        check_uint(self.start_time, UINT64, "Start Time")
        check_uint(self.timeout, UINT64, "Timeout")

    @property
    def ipvn(self) -> int:
        """The IP version of both addresses."""
        return self.sender_address.version

    @property
    def wire_size(self) -> int:
        """Octets on the wire, both HMACs included: 112 + 16 per slot + 16 (RFC 4656 §3.5)."""
        return self.FIXED + HMAC_SIZE + Slot.SIZE * len(self.slots) + HMAC_SIZE

    def encode_fixed(self) -> bytes:
        """Encode octets 0-95, which the first HMAC covers (RFC 4656 §3.5)."""
        return self._S.pack(
            OwampCommand.REQUEST_SESSION,
            self.ipvn,
            int(self.conf_sender),
            int(self.conf_receiver),
            len(self.slots),
            self.num_packets,
            self.sender_port,
            self.receiver_port,
            encode_address(self.sender_address),
            encode_address(self.receiver_address),
            self.sid,
            self.padding_length,
            self.start_time,
            self.timeout,
            self.type_p,
        )

    def encode_slots(self) -> bytes:
        """Encode the slot descriptions, which the second HMAC covers (RFC 4656 §3.5)."""
        return b"".join(slot.encode() for slot in self.slots)

    def encode_parts(self) -> tuple[bytes, bytes]:
        """The two parts the channel seals, each followed by its own HMAC (RFC 4656 §3.5)."""
        return self.encode_fixed(), self.encode_slots()

    @classmethod
    def num_slots(cls, fixed: bytes) -> int:
        """Number of Schedule Slots of a received fixed part, to frame the slots part."""
        need_length(fixed, cls.FIXED, "Request-Session", cls.SECTION)
        check_command(fixed, OwampCommand.REQUEST_SESSION, "Request-Session", cls.SECTION)
        count: int = struct.unpack_from("!I", fixed, 4)[0]
        if count == 0:
            raise ProtocolError(
                "there must be one or more slots",
                field="Number of Schedule Slots",
                section=cls.SECTION,
            )
        return count

    @classmethod
    def decode_parts(cls, fixed: bytes, slots: bytes) -> "RequestSession":
        """Decode the 96-octet fixed part and the slots part (both without HMACs)."""
        count = cls.num_slots(fixed)
        if len(slots) != Slot.SIZE * count:
            raise ProtocolError(
                f"{count} slots need {Slot.SIZE * count} octets, got {len(slots)}",
                field="Number of Schedule Slots",
                section=cls.SECTION,
            )
        (
            _,
            ipvn,
            c_send,
            c_recv,
            _,
            packets,
            s_port,
            r_port,
            s_addr,
            r_addr,
            sid,
            pad,
            start,
            timeout,
            type_p,
        ) = cls._S.unpack(fixed)
        sender, receiver = decode_addresses(ipvn, s_addr, r_addr, cls.SECTION)
        return cls(
            sender,
            receiver,
            s_port,
            r_port,
            tuple(Slot.decode(slots[i : i + Slot.SIZE]) for i in range(0, len(slots), Slot.SIZE)),
            packets,
            c_send != 0,
            c_recv != 0,
            pad,
            start,
            timeout,
            type_p,
            sid,
        )
