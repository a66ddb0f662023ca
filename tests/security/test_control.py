"""Control streams: the perfSONAR transcripts decrypted, verified and re-encrypted."""

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import AuthenticationError
from otwamp.security.control import (
    ControlReceiver,
    ControlSender,
    OpenControlReceiver,
    OpenControlSender,
    SecureControlReceiver,
    SecureControlSender,
)
from otwamp.security.primitives import Hmac128
from otwamp.security.sessionkeys import SessionKeys
from tests.security.conftest import OPEN, Direction, Transcript
from tests.vectors import CLIENT_TO_SERVER, SERVER_TO_CLIENT

DIRECTIONS = (CLIENT_TO_SERVER, SERVER_TO_CLIENT)
KEYS = SessionKeys(aes_key=bytes(range(16)), hmac_key=bytes(range(16, 48)))
IV = bytes(range(48, 64))


@dataclass(frozen=True)
class Piece:
    """A run of stream octets handed to the stream in one call."""

    start: int
    end: int  # the HMAC, if any, follows at end..end+16
    sealed: bool


def pieces(direction: Direction) -> list[Piece]:
    """Cut the encrypted part of a stream at message starts and HMACs.

    Asserts the coverage rule on the way (RFC 4656 §3.2, DESIGN D13): each
    recorded HMAC covers exactly the plaintext since the previous HMAC, and
    every octet after encryption starts is covered by exactly one HMAC.
    """
    result: list[Piece] = []
    pos = direction.encryption_start
    for mac in direction.hmacs:
        end = pos + len(mac.covered)
        assert direction.plaintext[pos:end] == mac.covered
        assert direction.plaintext[end : end + 16] == mac.value
        bounds = [pos, *sorted(s for s in direction.message_starts if pos < s < end), end]
        pairs = list(itertools.pairwise(bounds))
        result += [Piece(a, b, sealed=False) for a, b in pairs[:-1]]
        result.append(Piece(*pairs[-1], sealed=True))
        pos = end + 16
    assert pos == len(direction.wire)
    return result


def iv_for(transcript: Transcript, direction: str) -> bytes:
    """Client-IV for the client's stream, Server-IV for the server's (RFC 4656 §3.4)."""
    return transcript.client_iv if direction == CLIENT_TO_SERVER else transcript.server_iv


def receive(receiver: ControlReceiver, direction: Direction, block_by_block: bool) -> bytes:
    """Feed the recorded wire through ``receiver``; return the plaintext it yields."""
    out = []
    for piece in pieces(direction):
        wire = direction.wire[piece.start : piece.end]
        if block_by_block:
            out += [receiver.decrypt(wire[i : i + 16]) for i in range(0, len(wire), 16)]
            if piece.sealed:
                receiver.verify(direction.wire[piece.end : piece.end + 16])
        elif piece.sealed:
            out.append(receiver.open(direction.wire[piece.start : piece.end + 16]))
        else:
            out.append(receiver.decrypt(wire))
    return b"".join(out)


def without_hmacs(direction: Direction) -> bytes:
    """The recorded plaintext after encryption starts, HMAC fields left out."""
    return b"".join(direction.plaintext[p.start : p.end] for p in pieces(direction))


@pytest.mark.parametrize("name", DIRECTIONS)
def test_clear_prefix_and_recorded_plaintext(transcript: Transcript, name: str) -> None:
    direction = transcript.direction(name)
    start = direction.encryption_start
    assert direction.wire[:start] == direction.plaintext[:start]
    assert len(direction.wire) == len(direction.plaintext)


@pytest.mark.parametrize("block_by_block", [False, True])
@pytest.mark.parametrize("name", DIRECTIONS)
def test_receiver_decrypts_and_verifies(
    transcript: Transcript, session_keys: SessionKeys, name: str, block_by_block: bool
) -> None:
    direction = transcript.direction(name)
    receiver = SecureControlReceiver(session_keys, iv_for(transcript, name))
    assert receive(receiver, direction, block_by_block) == without_hmacs(direction)


@pytest.mark.parametrize("name", DIRECTIONS)
def test_sender_reproduces_wire(
    transcript: Transcript, session_keys: SessionKeys, name: str
) -> None:
    direction = transcript.direction(name)
    sender = SecureControlSender(session_keys, iv_for(transcript, name))
    wire = b"".join(
        (sender.seal if p.sealed else sender.encrypt)(direction.plaintext[p.start : p.end])
        for p in pieces(direction)
    )
    assert wire == direction.wire[direction.encryption_start :]


@pytest.mark.parametrize("name", DIRECTIONS)
def test_every_flipped_bit_fails(
    transcript: Transcript, session_keys: SessionKeys, name: str
) -> None:
    direction = transcript.direction(name)
    first = next(p for p in pieces(direction) if p.sealed)
    start = direction.encryption_start
    for offset in range(start, first.end + 16, 7):
        wire = bytearray(direction.wire)
        wire[offset] ^= 0x01
        receiver = SecureControlReceiver(session_keys, iv_for(transcript, name))
        receiver.decrypt(bytes(wire[start : first.start]))
        with pytest.raises(AuthenticationError, match=r"^HMAC: .*\(RFC 4656 §3\.2\)$"):
            receiver.open(bytes(wire[first.start : first.end + 16]))


# Set-up octets that the other readings of RFC 4656 §3.2 / RFC 5357 §3.2 add to
# the first HMAC of each direction: all of Set-Up-Response, all of Server-Start.
OTHER_READING = {CLIENT_TO_SERVER: slice(0, 164), SERVER_TO_CLIENT: slice(64, 96)}


@pytest.mark.parametrize("name", DIRECTIONS)
def test_other_coverage_readings_do_not_match(
    transcript: Transcript, session_keys: SessionKeys, name: str
) -> None:
    """D13: the readings perfSONAR does not follow give other HMACs."""
    direction = transcript.direction(name)
    first = direction.hmacs[0]
    other = direction.plaintext[OTHER_READING[name]] + first.covered
    assert Hmac128(session_keys.hmac_key).digest(other) != first.value
    assert Hmac128(session_keys.hmac_key).digest(first.covered) == first.value


@pytest.mark.parametrize("name", OPEN)
def test_open_mode_round_trip(name: str) -> None:
    """Open mode: messages that end in one HMAC, from the open transcripts."""
    messages = Transcript(name).data["control"]["messages"]
    single = [m for m in messages if "hmac" in m["fields"] and "slots_hmac" not in m["fields"]]
    assert single
    for message in single:
        wire = bytes.fromhex(message["wire_hex"])
        assert OpenControlSender().seal(wire[:-16]) == wire
        assert OpenControlReceiver().open(wire) == wire[:-16]


def test_open_mode_ignores_hmac_value() -> None:
    assert OpenControlReceiver().open(bytes(16) + b"\xff" * 16) == bytes(16)
    assert OpenControlSender().encrypt(IV) == IV


@pytest.mark.parametrize(
    "stream", [SecureControlSender(KEYS, IV), OpenControlSender()], ids=["secure", "open"]
)
def test_sender_needs_whole_blocks(stream: ControlSender) -> None:
    for call in (stream.encrypt, stream.seal):
        with pytest.raises(ValueError, match="whole 16-octet blocks"):
            call(bytes(17))


@pytest.mark.parametrize(
    "stream", [SecureControlReceiver(KEYS, IV), OpenControlReceiver()], ids=["secure", "open"]
)
def test_receiver_needs_whole_blocks(stream: ControlReceiver) -> None:
    with pytest.raises(ValueError, match="whole 16-octet blocks"):
        stream.decrypt(bytes(8))
    with pytest.raises(ValueError, match="16 octets"):
        stream.verify(bytes(15))
    with pytest.raises(ValueError, match="at least 16 octets"):
        stream.open(bytes(8))


def test_round_trip_across_messages() -> None:
    sender, receiver = SecureControlSender(KEYS, IV), SecureControlReceiver(KEYS, IV)
    messages = [bytes(range(32)), b"", b"\x07" * 16, b"\x01" * 96]
    for message in messages:
        assert receiver.open(sender.seal(message)) == message
    assert sender.seal(b"") != sender.seal(b""), "the chain moves on"


def test_repr_hides_keys() -> None:
    for stream in (SecureControlSender(KEYS, IV), SecureControlReceiver(KEYS, IV)):
        assert KEYS.aes_key.hex() not in repr(stream)
        assert repr(KEYS.aes_key) not in repr(stream)


@given(st.integers(1, 8).flatmap(lambda n: st.binary(min_size=16 * n, max_size=16 * n)))
def test_random_wire_is_refused(wire: bytes) -> None:
    with pytest.raises(AuthenticationError):
        SecureControlReceiver(KEYS, IV).open(wire)
