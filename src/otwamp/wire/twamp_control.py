"""TWAMP-Control commands and responses (RFC 5357 §3.4-3.8).

Each class encodes its body: the message without its trailing 16-octet HMAC
block. The control channel (``otwamp.security.control``) appends the HMAC and
encrypts as the mode requires, so one codec serves every mode. MBZ fields
are sent as zero and ignored on receipt (RFC 4656 §3.1).
"""

import struct
from dataclasses import dataclass

from otwamp.wire._fields import (
    IPAddress,
    check_command,
    decode_addresses,
    encode_address,
    need_length,
)
from otwamp.wire.registry import TwampCommand

HMAC_SIZE = 16


@dataclass(frozen=True, slots=True)
class RequestTwSession:
    """Request-TW-Session (RFC 5357 §3.5): one two-way test session.

    An unspecified address (0.0.0.0 or ::) means "the control connection's
    address" (RFC 5357 §3.5). ``type_p`` is the 32-bit Type-P Descriptor of
    RFC 4656 §3.5; see ``dscp_type_p``.
    """

    sender_address: IPAddress
    receiver_address: IPAddress
    sender_port: int
    receiver_port: int
    padding_length: int = 0
    start_time: int = 0
    timeout: int = 0
    type_p: int = 0
    conf_sender: int = 0
    conf_receiver: int = 0
    num_slots: int = 0
    num_packets: int = 0
    sid: bytes = bytes(16)
    reflect_octets: int = 0  # RFC 6038 §4.2: Octets to be reflected (MBZ without the mode)
    reflect_length: int = 0  # RFC 6038 §4.2: Length of padding to reflect

    SECTION = "RFC 5357 §3.5"
    BODY = 96
    _S = struct.Struct("!BBBBIIHH16s16s16sIQQIHH4x")

    @property
    def ipvn(self) -> int:
        """The IP version of both addresses."""
        return self.sender_address.version

    def __post_init__(self) -> None:
        if self.sender_address.version != self.receiver_address.version:
            raise ValueError("sender and receiver addresses must be of one IP version")
        if len(self.sid) != 16:
            raise ValueError("a SID is 16 octets")

    def encode(self) -> bytes:
        """Encode the 96-octet body."""
        return self._S.pack(
            TwampCommand.REQUEST_TW_SESSION,
            self.ipvn,
            self.conf_sender,
            self.conf_receiver,
            self.num_slots,
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
            self.reflect_octets,
            self.reflect_length,
        )

    @classmethod
    def decode(cls, data: bytes, reflect_octets: bool = False) -> "RequestTwSession":
        """Decode the 96-octet body; the RFC 6038 fields only in the Reflect Octets mode."""
        need_length(data, cls.BODY, "Request-TW-Session", cls.SECTION)
        check_command(data, TwampCommand.REQUEST_TW_SESSION, "Request-TW-Session", cls.SECTION)
        (
            _,
            ipvn,
            c_send,
            c_recv,
            slots,
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
            octets,
            length,
        ) = cls._S.unpack(data)
        sender, receiver = decode_addresses(ipvn, s_addr, r_addr, cls.SECTION)
        return cls(
            sender,
            receiver,
            s_port,
            r_port,
            pad,
            start,
            timeout,
            type_p,
            c_send,
            c_recv,
            slots,
            packets,
            sid,
            octets if reflect_octets else 0,  # MBZ without the mode (RFC 4656 §3.1)
            length if reflect_octets else 0,
        )


def dscp_type_p(dscp: int) -> int:
    """Type-P Descriptor for a DSCP: first two bits 00, then 6 bits DSCP (RFC 4656 §3.5)."""
    if not 0 <= dscp < 64:
        raise ValueError("a DSCP is 6 bits")
    return dscp << 24


def type_p_dscp(type_p: int) -> int | None:
    """The DSCP a Type-P Descriptor asks for, or None for a PHB ID or unknown form."""
    if type_p >> 30 != 0 or type_p & 0x00FFFFFF:
        return None
    return (type_p >> 24) & 0x3F


@dataclass(frozen=True, slots=True)
class AcceptSession:
    """Accept-Session (RFC 4656 §3.5, RFC 5357 §3.5): Accept, Port and SID.

    With Reflect Octets (RFC 6038 §4.3) it also carries the Reflected octets
    and the Server octets; without, those octets are MBZ.
    """

    accept: int
    port: int = 0
    sid: bytes = bytes(16)
    reflected_octets: int = 0
    server_octets: int = 0

    SECTION = "RFC 4656 §3.5"
    BODY = 32
    _S = struct.Struct("!BxH16sHH8x")

    def __post_init__(self) -> None:
        if len(self.sid) != 16:
            raise ValueError("a SID is 16 octets")

    def encode(self) -> bytes:
        """Encode the 32-octet body."""
        return self._S.pack(
            self.accept, self.port, self.sid, self.reflected_octets, self.server_octets
        )

    @classmethod
    def decode(cls, data: bytes, reflect_octets: bool = False) -> "AcceptSession":
        """Decode the 32-octet body; the RFC 6038 fields only in the Reflect Octets mode."""
        need_length(data, cls.BODY, "Accept-Session", cls.SECTION)
        accept, port, sid, reflected, server = cls._S.unpack(data)
        if not reflect_octets:
            return cls(accept, port, sid)
        return cls(accept, port, sid, reflected, server)


@dataclass(frozen=True, slots=True)
class StartSessions:
    """Start-Sessions (RFC 4656 §3.7, RFC 5357 §3.7): command 2."""

    SECTION = "RFC 4656 §3.7"
    BODY = 16

    def encode(self) -> bytes:
        """Encode the 16-octet body."""
        return bytes([TwampCommand.START_SESSIONS]) + bytes(15)

    @classmethod
    def decode(cls, data: bytes) -> "StartSessions":
        """Decode the 16-octet body."""
        need_length(data, cls.BODY, "Start-Sessions", cls.SECTION)
        check_command(data, TwampCommand.START_SESSIONS, "Start-Sessions", cls.SECTION)
        return cls()


@dataclass(frozen=True, slots=True)
class StartAck:
    """Start-Ack (RFC 4656 §3.7): the Accept for Start-Sessions."""

    accept: int

    SECTION = "RFC 4656 §3.7"
    BODY = 16

    def encode(self) -> bytes:
        """Encode the 16-octet body."""
        return bytes([self.accept]) + bytes(15)

    @classmethod
    def decode(cls, data: bytes) -> "StartAck":
        """Decode the 16-octet body."""
        need_length(data, cls.BODY, "Start-Ack", cls.SECTION)
        return cls(data[0])


@dataclass(frozen=True, slots=True)
class StopSessions:
    """TWAMP Stop-Sessions (RFC 5357 §3.8): Accept and Number of Sessions."""

    accept: int
    num_sessions: int

    SECTION = "RFC 5357 §3.8"
    BODY = 16
    _S = struct.Struct("!BB2xI8x")

    def encode(self) -> bytes:
        """Encode the 16-octet body."""
        return self._S.pack(TwampCommand.STOP_SESSIONS, self.accept, self.num_sessions)

    @classmethod
    def decode(cls, data: bytes) -> "StopSessions":
        """Decode the 16-octet body."""
        need_length(data, cls.BODY, "Stop-Sessions", cls.SECTION)
        check_command(data, TwampCommand.STOP_SESSIONS, "Stop-Sessions", cls.SECTION)
        _, accept, count = cls._S.unpack(data)
        return cls(accept, count)


COMMAND_BODIES: dict[int, int] = {
    TwampCommand.REQUEST_TW_SESSION: RequestTwSession.BODY,
    TwampCommand.START_SESSIONS: StartSessions.BODY,
    TwampCommand.STOP_SESSIONS: StopSessions.BODY,
}
"""Body length by Command Number, for framing the client's command stream."""
