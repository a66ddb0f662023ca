"""Request-Session and the reused Accept-Session, Start-Sessions, Start-Ack (RFC 4656 §3.5-3.7)."""

import contextlib
import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import ProtocolError
from otwamp.wire.owamp_control import (
    AcceptSession,
    RequestSession,
    Slot,
    SlotType,
    StartAck,
    StartSessions,
)
from otwamp.wire.timestamp import duration_to_ntp
from otwamp.wire.twamp_control import IPAddress
from tests.vectors import ts
from tests.wire.owamp.vectors import HMAC, REPRODUCTION, REQUEST, Message, all_named

V4A = ipaddress.IPv4Address("192.0.2.1")
V4B = ipaddress.IPv4Address("198.51.100.7")
V6A = ipaddress.IPv6Address("2001:db8::1")
V6B = ipaddress.IPv6Address("2001:db8:ffff::2")
SID = bytes(range(0x40, 0x50))
SECTION = "RFC 4656 §3.5"


def be(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


def split_request(m: Message) -> tuple[bytes, bytes]:
    """The two HMAC-terminated parts of a recorded Request-Session, without their HMACs."""
    fixed, rest = m.plaintext[: 96 + HMAC], m.plaintext[96 + HMAC :]
    assert len(m.plaintext) == 112 + 16 * m.fields["num_schedule_slots"] + 16
    return fixed[:96], rest[:-HMAC]


# --- the perfSONAR transcripts ---------------------------------------------------------------


@pytest.mark.parametrize("m", all_named(REQUEST), ids=lambda m: m.id)
def test_request_session_from_vectors(m: Message):
    f = m.fields
    fixed, slots = split_request(m)
    assert RequestSession.num_slots(fixed) == f["num_schedule_slots"]
    request = RequestSession.decode_parts(fixed, slots)
    assert f["command"] == 1
    assert request.ipvn == f["ipvn"] == f["mbz_ipvn_octet"] & 0x0F
    assert request.conf_sender == bool(f["conf_sender"])
    assert request.conf_receiver == bool(f["conf_receiver"])
    assert len(request.slots) == f["num_schedule_slots"]
    assert request.num_packets == f["num_packets"]
    assert request.sender_port == f["sender_port"]
    assert request.receiver_port == f["receiver_port"]
    assert str(request.sender_address) == f["sender_address"]
    assert str(request.receiver_address) == f["receiver_address"]
    assert request.sid.hex() == f["sid"]
    assert request.padding_length == f["padding_length"]
    assert request.start_time == ts(f["start_time"])
    assert request.timeout == ts(f["timeout"])
    assert request.type_p == int(f["type_p_descriptor"], 16)
    for slot, recorded in zip(request.slots, f["slots"], strict=True):
        assert slot.type == recorded["slot_type"]
        assert slot.parameter == ts(recorded["slot_parameter"])
    # Re-encoded from the decoded values: the recorded octets of both parts.
    assert request.encode_parts() == (fixed, slots)
    assert request.wire_size == len(m.plaintext)
    rebuilt = RequestSession(
        sender_address=ipaddress.ip_address(f["sender_address"]),
        receiver_address=ipaddress.ip_address(f["receiver_address"]),
        sender_port=f["sender_port"],
        receiver_port=f["receiver_port"],
        slots=tuple(Slot(SlotType(s["slot_type"]), ts(s["slot_parameter"])) for s in f["slots"]),
        num_packets=f["num_packets"],
        conf_sender=bool(f["conf_sender"]),
        conf_receiver=bool(f["conf_receiver"]),
        padding_length=f["padding_length"],
        start_time=ts(f["start_time"]),
        timeout=ts(f["timeout"]),
        type_p=int(f["type_p_descriptor"], 16),
        sid=bytes.fromhex(f["sid"]),
    )
    assert rebuilt.encode_parts() == (fixed, slots)


@pytest.mark.parametrize("m", all_named(REPRODUCTION), ids=lambda m: m.id)
def test_request_session_reproduction_from_vectors(m: Message):
    f = m.fields
    fixed, slots = split_request(m)
    request = RequestSession.decode_parts(fixed, slots)
    assert len(request.slots) == f["num_schedule_slots"]
    assert request.num_packets == f["num_packets"]
    assert (request.sender_port, request.receiver_port) == (f["sender_port"], f["receiver_port"])
    assert request.sid.hex() == f["sid"]
    assert request.padding_length == f["padding_length"]
    assert request.encode_parts() == (fixed, slots)
    # perfSONAR's reproduction is the "to" request with the real port and the SID filled in.
    original = next(
        RequestSession.decode_parts(*split_request(r))
        for r in all_named(REQUEST)
        if r.vector == m.vector and r.fields["conf_receiver"]
    )
    assert original.receiver_port == 0
    assert original.sid == bytes(16)
    assert request.receiver_port != 0
    assert request.sid != bytes(16)
    assert request.slots == original.slots
    assert request.num_packets == original.num_packets


@pytest.mark.parametrize("m", all_named("Accept-Session"), ids=lambda m: m.id)
def test_accept_session_from_vectors(m: Message):
    accept = AcceptSession.decode(m.body)
    assert (accept.accept, accept.port, accept.sid.hex()) == (
        m.fields["accept"],
        m.fields["port"],
        m.fields["sid"],
    )
    assert accept.encode() == m.body
    assert (
        AcceptSession(m.fields["accept"], m.fields["port"], bytes.fromhex(m.fields["sid"])).encode()
        == m.body
    )


@pytest.mark.parametrize("m", all_named("Start-Sessions"), ids=lambda m: m.id)
def test_start_sessions_from_vectors(m: Message):
    assert m.fields["command"] == 2
    StartSessions.decode(m.body)
    assert StartSessions().encode() == m.body


@pytest.mark.parametrize("m", all_named("Start-Ack"), ids=lambda m: m.id)
def test_start_ack_from_vectors(m: Message):
    assert StartAck.decode(m.body).accept == m.fields["accept"]
    assert StartAck(m.fields["accept"]).encode() == m.body


def test_open_mode_hmacs_are_zero():
    for m in all_named(REQUEST, "Accept-Session", "Start-Sessions", "Start-Ack"):
        if m.vector == "owamp-O":
            assert m.plaintext[-HMAC:] == bytes(HMAC)


# --- layouts built by hand from the RFC 4656 §3.5 figures ------------------------------------


def request_v4() -> RequestSession:
    return RequestSession(
        sender_address=V4A,
        receiver_address=V4B,
        sender_port=9556,
        receiver_port=0,
        slots=(Slot(SlotType.FIXED, 0x028F5C28), Slot(SlotType.EXPONENTIAL, 0x1_8000_0000)),
        num_packets=100,
        conf_sender=False,
        conf_receiver=True,
        padding_length=27,
        start_time=0xEEACD96FF1E69AD2,
        timeout=0x00000002000B2420,
        type_p=0x2E000000,
        sid=SID,
    )


def test_request_session_ipv4_layout():
    fixed = bytearray(96)
    fixed[0] = 1  # Request-Session
    fixed[1] = 4  # MBZ | IPVN
    fixed[2] = 0  # Conf-Sender
    fixed[3] = 1  # Conf-Receiver
    fixed[4:8] = be(2, 4)  # Number of Schedule Slots
    fixed[8:12] = be(100, 4)  # Number of Packets
    fixed[12:14] = be(9556, 2)  # Sender Port
    fixed[14:16] = be(0, 2)  # Receiver Port
    fixed[16:20] = V4A.packed  # Sender Address, then 12 octets MBZ
    fixed[32:36] = V4B.packed  # Receiver Address, then 12 octets MBZ
    fixed[48:64] = SID
    fixed[64:68] = be(27, 4)  # Padding Length
    fixed[68:76] = bytes.fromhex("eeacd96ff1e69ad2")  # Start Time
    fixed[76:84] = bytes.fromhex("00000002000b2420")  # Timeout
    fixed[84:88] = bytes.fromhex("2e000000")  # Type-P Descriptor: 00, DSCP 46
    # 88-95 MBZ; the first HMAC follows at 96-111
    slots = bytearray(32)
    slots[0] = 1  # Slot Type: fixed; 7 octets MBZ
    slots[8:16] = bytes.fromhex("00000000028f5c28")  # Slot Parameter
    slots[16] = 0  # Slot Type: exponential
    slots[24:32] = bytes.fromhex("0000000180000000")  # mean 1.5 s
    request = request_v4()
    assert request.encode_parts() == (bytes(fixed), bytes(slots))
    assert request.encode_fixed() == bytes(fixed)
    assert request.encode_slots() == bytes(slots)
    assert request.wire_size == 96 + 16 + 32 + 16
    assert RequestSession.decode_parts(bytes(fixed), bytes(slots)) == request


def test_request_session_ipv6_layout():
    request = RequestSession(V6A, V6B, 1, 2, (Slot(SlotType.FIXED, 0),), 1, True, False, sid=SID)
    fixed, slots = request.encode_parts()
    assert fixed[1] == 6
    assert fixed[2:4] == b"\x01\x00"
    assert fixed[16:32] == V6A.packed
    assert fixed[32:48] == V6B.packed
    assert slots == b"\x01" + bytes(15)
    decoded = RequestSession.decode_parts(fixed, slots)
    assert decoded == request
    assert decoded.ipvn == 6


def test_accept_start_layouts():
    # RFC 4656 §3.5: Accept, MBZ, Port, SID, MBZ 12; §3.7: 2, MBZ 15 and Accept, MBZ 15.
    accept = bytes([4, 0]) + be(29168, 2) + SID + bytes(12)
    assert AcceptSession(4, 29168, SID).encode() == accept
    assert AcceptSession.decode(accept[:1] + b"\xff" + accept[2:20] + b"\xee" * 12) == (
        AcceptSession(4, 29168, SID)
    )
    assert StartSessions().encode() == bytes([2]) + bytes(15)
    assert StartAck(5).encode() == bytes([5]) + bytes(15)
    assert StartAck.decode(bytes([5]) + b"\xff" * 15) == StartAck(5)


def test_slot_layout_and_seconds():
    slot = Slot.of_seconds(SlotType.EXPONENTIAL, 0.01)
    assert slot.parameter == duration_to_ntp(0.01) == 0x028F5C29
    assert slot.encode() == bytes(8) + be(0x028F5C29, 8)
    assert abs(slot.seconds - 0.01) < 1e-9
    assert Slot.decode(slot.encode()) == slot


@pytest.mark.parametrize("kind", [2, 3, 0x80, 255])
def test_slot_type_other_than_0_or_1_refused(kind: int):
    with pytest.raises(ProtocolError) as info:
        Slot.decode(bytes([kind]) + bytes(15))
    assert info.value.field == "Slot Type"
    assert "RFC 4656 §3.6" in str(info.value)
    fixed, slots = request_v4().encode_parts()
    with pytest.raises(ProtocolError):
        RequestSession.decode_parts(fixed, bytes([kind]) + slots[1:])


def test_request_session_ignores_mbz():
    fixed, slots = request_v4().encode_parts()
    noisy = bytearray(fixed)
    noisy[1] |= 0xF0  # MBZ nibble before IPVN
    noisy[20:32] = b"\xff" * 12  # IPv4: the rest of Sender Address is MBZ
    noisy[36:48] = b"\xee" * 12  # and of Receiver Address
    noisy[88:96] = b"\xaa" * 8  # MBZ
    noisy_slots = bytearray(slots)
    noisy_slots[1:8] = b"\x55" * 7  # MBZ after Slot Type
    noisy_slots[17:24] = b"\x66" * 7
    assert RequestSession.decode_parts(bytes(noisy), bytes(noisy_slots)) == request_v4()


@pytest.mark.parametrize("value", [2, 0x80, 0xFF])
def test_request_session_conf_nonzero_means_one(value: int):
    fixed, slots = request_v4().encode_parts()
    noisy = bytearray(fixed)
    noisy[2] = value
    noisy[3] = value
    request = RequestSession.decode_parts(bytes(noisy), slots)
    assert request.conf_sender is True
    assert request.conf_receiver is True


@pytest.mark.parametrize("ipvn", [0, 1, 5, 7, 15])
def test_request_session_bad_ipvn(ipvn: int):
    fixed, slots = request_v4().encode_parts()
    bad = bytearray(fixed)
    bad[1] = ipvn
    with pytest.raises(ProtocolError) as info:
        RequestSession.decode_parts(bytes(bad), slots)
    assert info.value.field == "IPVN"
    assert SECTION in str(info.value)


@pytest.mark.parametrize("command", [0, 2, 3, 4, 5, 255])
def test_request_session_wrong_command(command: int):
    fixed, slots = request_v4().encode_parts()
    with pytest.raises(ProtocolError) as info:
        RequestSession.decode_parts(bytes([command]) + fixed[1:], slots)
    assert info.value.field == "Request-Session"
    assert SECTION in str(info.value)


@pytest.mark.parametrize("size", [0, 16, 95, 97, 112])
def test_request_session_fixed_part_wrong_length(size: int):
    with pytest.raises(ProtocolError) as info:
        RequestSession.num_slots(b"\x01" + bytes(size - 1) if size else b"")
    assert SECTION in str(info.value)


def test_request_session_zero_slots_refused():
    fixed, _ = request_v4().encode_parts()
    bad = fixed[:4] + be(0, 4) + fixed[8:]
    with pytest.raises(ProtocolError) as info:
        RequestSession.num_slots(bad)
    assert info.value.field == "Number of Schedule Slots"
    with pytest.raises(ProtocolError):
        RequestSession.decode_parts(bad, b"")


@pytest.mark.parametrize("slot_octets", [0, 16, 48, 31, 33])
def test_request_session_slots_must_match_the_count(slot_octets: int):
    fixed, _ = request_v4().encode_parts()  # two slots: 32 octets
    with pytest.raises(ProtocolError) as info:
        RequestSession.decode_parts(
            fixed, bytes([1]) + bytes(slot_octets - 1) if slot_octets else b""
        )
    assert info.value.field == "Number of Schedule Slots"
    assert SECTION in str(info.value)


def test_request_session_huge_slot_count_is_reported_not_allocated():
    fixed, _ = request_v4().encode_parts()
    huge = fixed[:4] + be(0xFFFFFFFF, 4) + fixed[8:]
    assert RequestSession.num_slots(huge) == 0xFFFFFFFF  # the channel checks its limit first
    with pytest.raises(ProtocolError):
        RequestSession.decode_parts(huge, bytes(32))


def test_request_session_encoder_refuses_bad_values():
    with pytest.raises(ValueError):
        RequestSession(V4A, V6B, 1, 2, (Slot(SlotType.FIXED, 0),), 1)
    with pytest.raises(ValueError):
        RequestSession(V4A, V4B, 1, 2, (), 1)
    with pytest.raises(ValueError):
        RequestSession(V4A, V4B, 1, 2, (Slot(SlotType.FIXED, 0),), 1, sid=b"short")
    with pytest.raises(ValueError):
        RequestSession(V4A, V4B, 70000, 2, (Slot(SlotType.FIXED, 0),), 1)
    with pytest.raises(ValueError):
        Slot(SlotType.FIXED, 1 << 64)


# --- properties ------------------------------------------------------------------------------

addresses_v4: st.SearchStrategy[IPAddress] = st.builds(
    ipaddress.IPv4Address, st.integers(0, (1 << 32) - 1)
)
addresses_v6: st.SearchStrategy[IPAddress] = st.builds(
    ipaddress.IPv6Address, st.integers(0, (1 << 128) - 1)
)
slots_st = st.builds(Slot, st.sampled_from(SlotType), st.integers(0, (1 << 64) - 1))
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, (1 << 32) - 1)
u64 = st.integers(0, (1 << 64) - 1)


@st.composite
def requests(draw: st.DrawFn) -> RequestSession:
    pool = draw(st.sampled_from([addresses_v4, addresses_v6]))
    return RequestSession(
        sender_address=draw(pool),
        receiver_address=draw(pool),
        sender_port=draw(u16),
        receiver_port=draw(u16),
        slots=tuple(draw(st.lists(slots_st, min_size=1, max_size=6))),
        num_packets=draw(u32),
        conf_sender=draw(st.booleans()),
        conf_receiver=draw(st.booleans()),
        padding_length=draw(u32),
        start_time=draw(u64),
        timeout=draw(u64),
        type_p=draw(u32),
        sid=draw(st.binary(min_size=16, max_size=16)),
    )


@given(requests())
def test_request_session_round_trip(request: RequestSession):
    fixed, slots = request.encode_parts()
    assert len(fixed) == 96
    assert len(slots) == 16 * len(request.slots)
    assert RequestSession.num_slots(fixed) == len(request.slots)
    assert RequestSession.decode_parts(fixed, slots) == request


@given(st.builds(AcceptSession, st.integers(0, 255), u16, st.binary(min_size=16, max_size=16)))
def test_accept_session_round_trip(accept: AcceptSession):
    assert AcceptSession.decode(accept.encode()) == accept


@given(st.integers(0, 255))
def test_start_messages_round_trip(accept: int):
    assert StartAck.decode(StartAck(accept).encode()) == StartAck(accept)
    assert StartSessions.decode(StartSessions().encode()) == StartSessions()


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_request_session_random_bytes_raise_only_protocol_error(fixed: bytes, slots: bytes):
    with contextlib.suppress(ProtocolError):
        RequestSession.num_slots(fixed)
    with contextlib.suppress(ProtocolError):
        RequestSession.decode_parts(fixed, slots)


@given(
    st.binary(min_size=96, max_size=96), st.lists(st.binary(min_size=16, max_size=16), max_size=4)
)
def test_request_session_random_parts_raise_only_protocol_error(fixed: bytes, slots: list[bytes]):
    fixed = b"\x01" + fixed[1:4] + len(slots).to_bytes(4, "big") + fixed[8:]
    try:
        request = RequestSession.decode_parts(fixed, b"".join(slots))
    except ProtocolError:
        return
    assert RequestSession.decode_parts(*request.encode_parts()) == request


@given(st.binary(max_size=64))
def test_slot_and_reused_decoders_random_bytes(data: bytes):
    for decode in (Slot.decode, AcceptSession.decode, StartSessions.decode, StartAck.decode):
        with contextlib.suppress(ProtocolError):
            decode(data)
