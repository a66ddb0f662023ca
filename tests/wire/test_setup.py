"""Server-Greeting, Set-Up-Response and Server-Start (RFC 4656 §3.1, RFC 5357 §3.1)."""

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import ProtocolError
from otwamp.wire.setup import (
    KEY_ID_SIZE,
    ServerGreeting,
    ServerStart,
    SetUpResponse,
    decode_key_id,
    encode_key_id,
)
from tests.vectors import ts
from tests.wire.conftest import ALL_TWAMP, ControlMessage, all_control_messages

SECTION = "RFC 4656 §3.1"
CHALLENGE = bytes(range(0x10, 0x20))
SALT = bytes(range(0x20, 0x30))
IV = bytes(range(0xA0, 0xB0))
TOKEN = bytes(range(64))
u16 = st.binary(min_size=16, max_size=16)


def be(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")


# Server-Greeting: Unused 0-11, Modes 12-15, Challenge 16-31, Salt 32-47, Count 48-51, MBZ 52-63.


def test_server_greeting_layout():
    greeting = ServerGreeting(modes=0x8F, challenge=CHALLENGE, salt=SALT, count=2048)
    wire = greeting.encode()
    expected = bytes(12) + be(0x8F, 4) + CHALLENGE + SALT + be(2048, 4) + bytes(12)
    assert wire == expected
    assert len(wire) == ServerGreeting.SIZE == 64
    assert wire[12:16] == b"\x00\x00\x00\x8f"
    assert wire[48:52] == b"\x00\x00\x08\x00"
    assert ServerGreeting.decode(wire) == greeting


def test_server_greeting_ignores_unused_and_mbz():
    # RFC 4656 §3.1: "the party that interprets the message MUST ignore the value" of MBZ/Unused.
    wire = b"\xff" * 12 + be(1, 4) + CHALLENGE + SALT + be(1024, 4) + b"\xee" * 12
    assert ServerGreeting.decode(wire) == ServerGreeting(1, CHALLENGE, SALT, 1024)


@pytest.mark.parametrize("size", [0, 63, 65, 164])
def test_server_greeting_rejects_wrong_length(size):
    with pytest.raises(ProtocolError) as info:
        ServerGreeting.decode(bytes(size))
    assert info.value.field == "Server-Greeting"
    assert info.value.section == SECTION


# Set-Up-Response: Mode 0-3, KeyID 4-83, Token 84-147, Client-IV 148-163.


def test_set_up_response_layout():
    key_id = encode_key_id("test")
    response = SetUpResponse(mode=2, key_id=key_id, token=TOKEN, client_iv=IV)
    wire = response.encode()
    assert wire == be(2, 4) + b"test" + bytes(76) + TOKEN + IV
    assert len(wire) == SetUpResponse.SIZE == 164
    assert wire[84:148] == TOKEN
    assert wire[148:164] == IV
    assert SetUpResponse.decode(wire) == response


def test_set_up_response_open_defaults_are_zero():
    assert SetUpResponse(mode=1).encode() == be(1, 4) + bytes(160)


@pytest.mark.parametrize(
    ("key_id", "token", "iv"),
    [
        (bytes(79), bytes(64), bytes(16)),
        (bytes(80), bytes(16), bytes(16)),
        (bytes(80), bytes(64), bytes(12)),
    ],
)
def test_set_up_response_checks_field_sizes(key_id, token, iv):
    with pytest.raises(ValueError):
        SetUpResponse(1, key_id, token, iv)


@pytest.mark.parametrize("size", [0, 163, 165])
def test_set_up_response_rejects_wrong_length(size):
    with pytest.raises(ProtocolError) as info:
        SetUpResponse.decode(bytes(size))
    assert info.value.field == "Set-Up-Response"
    assert info.value.section == SECTION


def test_key_id_encoding():
    assert encode_key_id("test") == b"test" + bytes(76)
    assert encode_key_id(b"\x01\x02") == b"\x01\x02" + bytes(78)
    assert encode_key_id("x" * 80) == b"x" * 80
    assert encode_key_id("é" * 40) == "é".encode() * 40  # 80 octets of UTF-8
    assert len(encode_key_id("a")) == KEY_ID_SIZE == 80


@pytest.mark.parametrize("identity", ["", b"", "x" * 81, "é" * 41])
def test_key_id_length_limits(identity):
    with pytest.raises(ValueError):
        encode_key_id(identity)


def test_key_id_decoding():
    assert decode_key_id(b"test" + bytes(76)) == "test"
    assert decode_key_id("é".encode() * 40) == "é" * 40
    assert decode_key_id(bytes(80)) == ""


def test_key_id_not_utf8():
    with pytest.raises(ProtocolError) as info:
        decode_key_id(b"\xff\xfe" + bytes(78))
    assert info.value.field == "KeyID"
    assert info.value.section == SECTION


def test_key_id_ends_at_first_zero_octet():
    assert decode_key_id(b"ab\x00cd".ljust(80, b"\x00")) == "ab"


@given(st.text(min_size=1, max_size=20).filter(lambda s: "\0" not in s))
def test_key_id_round_trip(identity):
    assert decode_key_id(encode_key_id(identity)) == identity


# Server-Start: MBZ 0-14, Accept 15, Server-IV 16-31, Start-Time 32-39, MBZ 40-47.


def test_server_start_layout():
    start = ServerStart(accept=0, server_iv=IV, start_time=0xEEACD8EB232FCAC8)
    wire = start.encode()
    assert wire == bytes(15) + b"\x00" + IV + bytes.fromhex("eeacd8eb232fcac8") + bytes(8)
    assert len(wire) == ServerStart.SIZE == 48
    assert ServerStart.CLEAR_SIZE == 32
    assert ServerStart.decode(wire) == start


def test_server_start_accept_octet():
    assert ServerStart(accept=4).encode() == bytes(15) + b"\x04" + bytes(32)
    assert ServerStart.decode(bytes(15) + b"\x06" + bytes(32)).accept == 6


def test_server_start_ignores_mbz():
    # RFC 4656 §3.1: MBZ fields MUST be ignored by the receiver.
    wire = b"\xff" * 15 + b"\x00" + IV + be(7, 8) + b"\xff" * 8
    assert ServerStart.decode(wire) == ServerStart(0, IV, 7)


@pytest.mark.parametrize("size", [0, 32, 47, 49])
def test_server_start_rejects_wrong_length(size):
    with pytest.raises(ProtocolError) as info:
        ServerStart.decode(bytes(size))
    assert info.value.field == "Server-Start"
    assert info.value.section == SECTION


# The perfSONAR transcripts: decode, compare with the recorded fields, re-encode byte for byte.

SETUP_MESSAGES = [
    m
    for m in all_control_messages(ALL_TWAMP)
    if m.name in ("Server-Greeting", "Set-Up-Response", "Server-Start")
]


@pytest.mark.parametrize("message", SETUP_MESSAGES, ids=lambda m: m.id)
def test_perfsonar_setup_messages(message: ControlMessage):
    f = message.fields
    if message.name == "Server-Greeting":
        decoded = ServerGreeting.decode(message.plaintext)
        assert decoded.modes == f["modes"]
        assert decoded.challenge.hex() == f["challenge"]
        assert decoded.salt.hex() == f["salt"]
        assert decoded.count == f["count"] == 2048
        again = ServerGreeting(
            f["modes"], bytes.fromhex(f["challenge"]), bytes.fromhex(f["salt"]), f["count"]
        )
    elif message.name == "Set-Up-Response":
        decoded = SetUpResponse.decode(message.plaintext)
        assert decoded.mode == f["mode"]
        assert decoded.key_id.hex() == f["keyid_hex"]
        assert decode_key_id(decoded.key_id) == f["keyid_text"]
        assert decoded.token.hex() == f["token"]
        assert decoded.client_iv.hex() == f["client_iv"]
        key_id = encode_key_id(f["keyid_text"]) if f["keyid_text"] else bytes(80)
        again = SetUpResponse(
            f["mode"], key_id, bytes.fromhex(f["token"]), bytes.fromhex(f["client_iv"])
        )
    else:
        decoded = ServerStart.decode(message.plaintext)
        assert decoded.accept == f["accept"] == 0
        assert decoded.server_iv.hex() == f["server_iv"]
        assert decoded.start_time == ts(f["start_time"])
        again = ServerStart(f["accept"], bytes.fromhex(f["server_iv"]), ts(f["start_time"]))
        # Octets 0-31 are sent in clear in every mode (RFC 4656 §3.1).
        assert message.wire[: ServerStart.CLEAR_SIZE] == message.plaintext[:32]
    assert again == decoded
    assert again.encode() == message.plaintext


# Hypothesis: round trips, and random octets never raise anything but ProtocolError.


@given(st.integers(0, 2**32 - 1), u16, u16, st.integers(0, 2**32 - 1))
def test_server_greeting_round_trip(modes, challenge, salt, count):
    greeting = ServerGreeting(modes, challenge, salt, count)
    assert ServerGreeting.decode(greeting.encode()) == greeting


@given(
    st.integers(0, 2**32 - 1),
    st.binary(min_size=80, max_size=80),
    st.binary(min_size=64, max_size=64),
    u16,
)
def test_set_up_response_round_trip(mode, key_id, token, iv):
    response = SetUpResponse(mode, key_id, token, iv)
    assert SetUpResponse.decode(response.encode()) == response


@given(st.integers(0, 255), u16, st.integers(0, 2**64 - 1))
def test_server_start_round_trip(accept, iv, start_time):
    start = ServerStart(accept, iv, start_time)
    assert ServerStart.decode(start.encode()) == start


DECODERS = [
    (ServerGreeting.decode, 64),
    (SetUpResponse.decode, 164),
    (ServerStart.decode, 48),
    (decode_key_id, 80),
]


@pytest.mark.parametrize(("decode", "size"), DECODERS, ids=lambda x: getattr(x, "__qualname__", x))
@given(data=st.data())
def test_decoders_raise_only_protocol_error(decode, size, data):
    for strategy in (st.binary(), st.binary(min_size=size, max_size=size)):
        raw = data.draw(strategy)
        with contextlib.suppress(ProtocolError):
            decode(raw)


@pytest.mark.parametrize(("decode", "size"), DECODERS[:3], ids=["greeting", "setup", "start"])
@given(data=st.data())
def test_decoders_accept_any_octets_of_the_right_length(decode, size, data):
    raw = data.draw(st.binary(min_size=size, max_size=size))
    assert decode(raw) is not None


@pytest.mark.parametrize(
    "build",
    [
        lambda: ServerGreeting(1, b"short", SALT, 1024),
        lambda: ServerGreeting(1, CHALLENGE, SALT + b"x", 1024),
        lambda: ServerStart(0, server_iv=b"\x01" * 17),
    ],
    ids=["greeting-challenge", "greeting-salt", "start-iv"],
)
def test_fixed_size_fields_are_checked(build):
    with pytest.raises(ValueError):
        build()
