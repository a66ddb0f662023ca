"""TWAMP-Control command bodies (RFC 5357 §3.4-3.8, RFC 4656 §3.5-3.7), without their HMAC."""

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import ProtocolError
from otwamp.wire.registry import TwampCommand
from otwamp.wire.twamp_control import (
    COMMAND_BODIES,
    HMAC_SIZE,
    AcceptSession,
    RequestTwSession,
    StartAck,
    StartSessions,
    StopSessions,
    dscp_type_p,
    type_p_dscp,
)
from tests.vectors import ts
from tests.wire.conftest import (
    ALL_TWAMP,
    OPEN_TWAMP,
    ControlMessage,
    address,
    all_control_messages,
)

V4A = ipaddress.IPv4Address("192.0.2.1")
V4B = ipaddress.IPv4Address("198.51.100.7")
V6A = ipaddress.IPv6Address("2001:db8::1")
V6B = ipaddress.IPv6Address("2001:db8:ffff::2")
SID = bytes(range(0x40, 0x50))


def be(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def request_v4() -> RequestTwSession:
    return RequestTwSession(
        sender_address=V4A,
        receiver_address=V4B,
        sender_port=9098,
        receiver_port=18792,
        padding_length=27,
        start_time=0xEEACD948A845DC83,
        timeout=0x00000002000A06EA,
        type_p=dscp_type_p(46),
        conf_sender=0,
        conf_receiver=0,
        num_slots=0,
        num_packets=0,
        sid=SID,
    )


def request_v4_by_hand() -> bytes:
    """Request-TW-Session from the RFC 4656 §3.5 figure, offset by offset."""
    wire = bytearray(96)
    wire[0] = 5  # Command Number (RFC 5357 §3.5)
    wire[1] = 4  # MBZ (4 bits) | IPVN (4 bits)
    wire[2] = 0  # Conf-Sender
    wire[3] = 0  # Conf-Receiver
    wire[4:8] = be(0, 4)  # Number of Schedule Slots
    wire[8:12] = be(0, 4)  # Number of Packets
    wire[12:14] = be(9098, 2)  # Sender Port
    wire[14:16] = be(18792, 2)  # Receiver Port
    wire[16:20] = V4A.packed  # Sender Address (+ 12 octets MBZ for IPv4)
    wire[32:36] = V4B.packed  # Receiver Address
    wire[48:64] = SID  # SID
    wire[64:68] = be(27, 4)  # Padding Length
    wire[68:76] = bytes.fromhex("eeacd948a845dc83")  # Start Time
    wire[76:84] = bytes.fromhex("00000002000a06ea")  # Timeout
    wire[84:88] = bytes([46, 0, 0, 0])  # Type-P: bits 00, the 6-bit DSCP 46, then zeros
    # 88-95 MBZ
    return bytes(wire)


def test_request_tw_session_ipv4_layout():
    wire = request_v4().encode()
    assert len(wire) == RequestTwSession.BODY == 96
    assert wire == request_v4_by_hand()
    assert RequestTwSession.decode(wire) == request_v4()


def test_request_tw_session_ipv6_layout():
    request = RequestTwSession(
        V6A, V6B, 862, 863, padding_length=1000, num_slots=0, conf_receiver=0, sid=bytes(16)
    )
    wire = request.encode()
    assert wire[0] == 5
    assert wire[1] == 6
    assert wire[12:14] == be(862, 2)
    assert wire[14:16] == be(863, 2)
    assert wire[16:32] == V6A.packed
    assert wire[32:48] == V6B.packed
    assert wire[64:68] == be(1000, 4)
    assert wire[2:12] == bytes(10)
    assert wire[48:64] == bytes(16)
    assert wire[68:96] == bytes(28)
    assert request.ipvn == 6
    assert RequestTwSession.decode(wire) == request


def test_request_tw_session_counts_and_conf_fields():
    # Octets 2, 3, 4-7 and 8-11 (RFC 4656 §3.5); TWAMP wants them zero but the codec carries them.
    request = RequestTwSession(
        V4A, V4B, 1, 2, conf_sender=1, conf_receiver=1, num_slots=0x01020304, num_packets=7
    )
    wire = request.encode()
    assert wire[2:12] == b"\x01\x01\x01\x02\x03\x04\x00\x00\x00\x07"
    assert RequestTwSession.decode(wire) == request


def test_request_tw_session_mixed_versions_refused():
    with pytest.raises(ValueError):
        RequestTwSession(V4A, V6B, 1, 2)


@pytest.mark.parametrize("ipvn", [0, 1, 5, 7, 15])
def test_request_tw_session_bad_ipvn(ipvn):
    wire = bytearray(request_v4().encode())
    wire[1] = ipvn
    with pytest.raises(ProtocolError) as info:
        RequestTwSession.decode(bytes(wire))
    assert info.value.field == "IPVN"
    assert info.value.section == "RFC 5357 §3.5"


def test_request_tw_session_ignores_mbz():
    # RFC 4656 §3.1: MBZ fields MUST be ignored by the receiver: the high nibble of octet 1,
    # the 12 unused octets after an IPv4 address and octets 88-95.
    wire = bytearray(request_v4().encode())
    wire[1] = 0xF4
    wire[20:32] = b"\xaa" * 12
    wire[36:48] = b"\xbb" * 12
    wire[88:96] = b"\xcc" * 8
    assert RequestTwSession.decode(bytes(wire)) == request_v4()


@pytest.mark.parametrize("command", [0, 1, 2, 3, 4, 6, 255])
def test_request_tw_session_wrong_command(command):
    wire = bytes([command]) + request_v4().encode()[1:]
    with pytest.raises(ProtocolError) as info:
        RequestTwSession.decode(wire)
    assert info.value.field == "Request-TW-Session"
    assert info.value.section == "RFC 5357 §3.5"


@pytest.mark.parametrize("size", [0, 16, 95, 97, 112])
def test_request_tw_session_wrong_length(size):
    with pytest.raises(ProtocolError) as info:
        RequestTwSession.decode(b"\x05\x04" + bytes(size - 2) if size >= 2 else bytes(size))
    assert info.value.field == "Request-TW-Session"


def test_type_p_dscp():
    # RFC 4656 §3.5 / RFC 5357 §3.5: first two bits 00, then the 6-bit DSCP, rest zero.
    assert dscp_type_p(0) == 0
    assert dscp_type_p(46) == 0x2E00_0000
    assert dscp_type_p(63) == 0x3F00_0000
    assert type_p_dscp(0x2E00_0000) == 46
    assert type_p_dscp(0) == 0
    assert type_p_dscp(0x4000_0000) is None  # 01: a PHB ID (RFC 4656 §3.5)
    assert type_p_dscp(0x2E00_0001) is None
    for dscp in range(64):
        assert type_p_dscp(dscp_type_p(dscp)) == dscp


@pytest.mark.parametrize("dscp", [-1, 64])
def test_dscp_range(dscp):
    with pytest.raises(ValueError):
        dscp_type_p(dscp)


# Accept-Session: Accept 0, MBZ 1, Port 2-3, SID 4-19, MBZ 20-31 (then HMAC 32-47).


def test_accept_session_layout():
    accept = AcceptSession(accept=0, port=18792, sid=SID)
    wire = accept.encode()
    assert wire == b"\x00\x00" + be(18792, 2) + SID + bytes(12)
    assert len(wire) == AcceptSession.BODY == 32
    assert AcceptSession.decode(wire) == accept
    assert AcceptSession(accept=3).encode() == b"\x03" + bytes(31)


def test_accept_session_ignores_mbz():
    wire = b"\x05\xff" + be(7, 2) + SID + b"\xff" * 12
    assert AcceptSession.decode(wire) == AcceptSession(5, 7, SID)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 48])
def test_accept_session_wrong_length(size):
    with pytest.raises(ProtocolError) as info:
        AcceptSession.decode(bytes(size))
    assert info.value.field == "Accept-Session"
    assert info.value.section == "RFC 4656 §3.5"


# Start-Sessions: 2, MBZ 1-15 (then HMAC). Start-Ack: Accept, MBZ 1-15 (then HMAC).


def test_start_sessions_layout():
    assert StartSessions().encode() == b"\x02" + bytes(15)
    assert StartSessions.decode(b"\x02" + b"\xff" * 15) == StartSessions()


@pytest.mark.parametrize("command", [0, 3, 5, 0x82])
def test_start_sessions_wrong_command(command):
    with pytest.raises(ProtocolError) as info:
        StartSessions.decode(bytes([command]) + bytes(15))
    assert info.value.field == "Start-Sessions"
    assert info.value.section == "RFC 4656 §3.7"


def test_start_ack_layout():
    assert StartAck(0).encode() == bytes(16)
    assert StartAck(2).encode() == b"\x02" + bytes(15)
    assert StartAck.decode(b"\x04" + b"\xff" * 15) == StartAck(4)


# Stop-Sessions (RFC 5357 §3.8): 3, Accept 1, MBZ 2-3, Number of Sessions 4-7, MBZ 8-15.


def test_stop_sessions_layout():
    stop = StopSessions(accept=0, num_sessions=1)
    assert stop.encode() == b"\x03\x00\x00\x00" + be(1, 4) + bytes(8)
    assert StopSessions(2, 0x01020304).encode() == b"\x03\x02\x00\x00\x01\x02\x03\x04" + bytes(8)
    assert StopSessions.decode(stop.encode()) == stop


def test_stop_sessions_ignores_mbz():
    wire = b"\x03\x01\xff\xff" + be(9, 4) + b"\xff" * 8
    assert StopSessions.decode(wire) == StopSessions(1, 9)


def test_stop_sessions_wrong_command():
    with pytest.raises(ProtocolError) as info:
        StopSessions.decode(b"\x02" + bytes(15))
    assert info.value.field == "Stop-Sessions"
    assert info.value.section == "RFC 5357 §3.8"


@pytest.mark.parametrize(
    ("decode", "field"),
    [
        (StartSessions.decode, "Start-Sessions"),
        (StartAck.decode, "Start-Ack"),
        (StopSessions.decode, "Stop-Sessions"),
    ],
)
@pytest.mark.parametrize("size", [0, 15, 17, 32])
def test_sixteen_octet_bodies_wrong_length(decode, field, size):
    with pytest.raises(ProtocolError) as info:
        decode(b"\x03" * size)
    assert info.value.field == field


def test_command_bodies():
    assert HMAC_SIZE == 16
    assert COMMAND_BODIES == {
        TwampCommand.REQUEST_TW_SESSION: 96,
        TwampCommand.START_SESSIONS: 16,
        TwampCommand.STOP_SESSIONS: 16,
    }


# The perfSONAR transcripts: decode each body, compare with the recorded fields, re-encode.

COMMANDS = [
    m
    for m in all_control_messages(ALL_TWAMP)
    if m.name not in ("Server-Greeting", "Set-Up-Response", "Server-Start")
]


def test_every_command_is_covered():
    names = {m.name for m in COMMANDS}
    assert names == {
        "Request-TW-Session",
        "Accept-Session",
        "Start-Sessions",
        "Start-Ack",
        "Stop-Sessions",
    }
    assert len(COMMANDS) == 5 * len(ALL_TWAMP)


@pytest.mark.parametrize("message", COMMANDS, ids=lambda m: m.id)
def test_perfsonar_commands(message: ControlMessage):
    f = message.fields
    body = message.body
    if message.name == "Request-TW-Session":
        decoded = RequestTwSession.decode(body)
        assert f["command"] == 5
        assert decoded.ipvn == f["ipvn"] == 4
        assert decoded.conf_sender == f["conf_sender"]
        assert decoded.conf_receiver == f["conf_receiver"]
        assert decoded.num_slots == f["num_schedule_slots"]
        assert decoded.num_packets == f["num_packets"]
        assert decoded.sender_port == f["sender_port"]
        assert decoded.receiver_port == f["receiver_port"]
        assert decoded.sender_address == address(f["sender_address"])
        assert decoded.receiver_address == address(f["receiver_address"])
        assert decoded.sid.hex() == f["sid"]
        assert decoded.padding_length == f["padding_length"]
        assert decoded.start_time == ts(f["start_time"])
        assert decoded.timeout == ts(f["timeout"])
        assert decoded.type_p == int(f["type_p_descriptor"], 16)
        again = RequestTwSession(
            sender_address=address(f["sender_address"]),
            receiver_address=address(f["receiver_address"]),
            sender_port=f["sender_port"],
            receiver_port=f["receiver_port"],
            padding_length=f["padding_length"],
            start_time=ts(f["start_time"]),
            timeout=ts(f["timeout"]),
            type_p=int(f["type_p_descriptor"], 16),
            conf_sender=f["conf_sender"],
            conf_receiver=f["conf_receiver"],
            num_slots=f["num_schedule_slots"],
            num_packets=f["num_packets"],
            sid=bytes.fromhex(f["sid"]),
        )
    elif message.name == "Accept-Session":
        decoded = AcceptSession.decode(body)
        assert decoded.accept == f["accept"]
        assert decoded.port == f["port"]
        assert decoded.sid.hex() == f["sid"]
        again = AcceptSession(f["accept"], f["port"], bytes.fromhex(f["sid"]))
    elif message.name == "Start-Sessions":
        decoded = StartSessions.decode(body)
        assert f["command"] == 2
        again = StartSessions()
    elif message.name == "Start-Ack":
        decoded = StartAck.decode(body)
        assert decoded.accept == f["accept"]
        again = StartAck(f["accept"])
    else:
        decoded = StopSessions.decode(body)
        assert f["command"] == 3
        assert decoded.accept == f["accept"]
        assert decoded.num_sessions == f["number_of_sessions"] == 1
        again = StopSessions(f["accept"], f["number_of_sessions"])
    assert again == decoded
    assert again.encode() == body
    assert len(message.plaintext) == len(body) + HMAC_SIZE
    if message.vector in OPEN_TWAMP:
        assert message.hmac == bytes(16)  # open mode: HMAC unused and zero (RFC 4656 §3.2)
        assert message.wire == body + bytes(16)
    else:
        assert message.hmac.hex() == f["hmac"]["value"]


# Hypothesis: round trips, and random octets never raise anything but ProtocolError.

ipv4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1))
ipv6 = st.builds(ipaddress.IPv6Address, st.integers(0, 2**128 - 1))
u8, u16, u32, u64 = (st.integers(0, 2**n - 1) for n in (8, 16, 32, 64))


@st.composite
def requests(draw):
    addresses = draw(st.sampled_from([ipv4, ipv6]))
    return RequestTwSession(
        draw(addresses),
        draw(addresses),
        draw(u16),
        draw(u16),
        draw(u32),
        draw(u64),
        draw(u64),
        draw(u32),
        draw(u8),
        draw(u8),
        draw(u32),
        draw(u32),
        draw(st.binary(min_size=16, max_size=16)),
    )


@given(requests())
def test_request_tw_session_round_trip(request):
    wire = request.encode()
    assert len(wire) == 96
    assert RequestTwSession.decode(wire) == request


@given(u8, u16, st.binary(min_size=16, max_size=16))
def test_accept_session_round_trip(accept, port, sid):
    message = AcceptSession(accept, port, sid)
    assert AcceptSession.decode(message.encode()) == message


@given(u8)
def test_start_ack_round_trip(accept):
    assert StartAck.decode(StartAck(accept).encode()) == StartAck(accept)


@given(u8, u32)
def test_stop_sessions_round_trip(accept, count):
    stop = StopSessions(accept, count)
    assert StopSessions.decode(stop.encode()) == stop


def test_start_sessions_round_trip():
    assert StartSessions.decode(StartSessions().encode()) == StartSessions()


DECODERS = [
    (RequestTwSession.decode, 96, 5),
    (AcceptSession.decode, 32, None),
    (StartSessions.decode, 16, 2),
    (StartAck.decode, 16, None),
    (StopSessions.decode, 16, 3),
]


@pytest.mark.parametrize(
    ("decode", "size", "command"),
    DECODERS,
    ids=["request", "accept", "start", "start-ack", "stop"],
)
@given(data=st.data())
def test_decoders_raise_only_protocol_error(decode, size, command, data):
    exact = st.binary(min_size=size, max_size=size)
    strategies = [st.binary(), exact]
    if command is not None:
        # Also reach past the Command Number check.
        strategies.append(exact.map(lambda b: bytes([command]) + b[1:]))
    for strategy in strategies:
        raw = data.draw(strategy)
        with contextlib.suppress(ProtocolError):
            decode(raw)


@pytest.mark.parametrize(
    "build",
    [
        lambda: AcceptSession(0, 862, sid=b"\x01" * 15),
        lambda: RequestTwSession(V4A, V4B, 1, 2, sid=b"\x01" * 17),
    ],
    ids=["accept", "request"],
)
def test_sid_size_is_checked(build):
    with pytest.raises(ValueError):
        build()
