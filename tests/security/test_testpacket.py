"""Test-packet protection against every recorded perfSONAR A/E test packet."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.security.sessionkeys import SessionKeys
from otwamp.security.testkeys import derive_test_session_keys
from otwamp.security.testpacket import PacketLayout, PacketMode, PacketProtection
from tests.security.conftest import PROTECTED_TEST, PacketRecord, Transcript

KEYS = SessionKeys(aes_key=bytes(range(16)), hmac_key=bytes(range(16, 48)))
ALL = [(mode, layout) for mode in PacketMode for layout in PacketLayout]


def layout_of(packet: PacketRecord) -> PacketLayout:
    """TWAMP reflector packets have their own layout; all others are sender packets."""
    return (
        PacketLayout.REFLECTOR if packet.direction == "reflector->sender" else PacketLayout.SENDER
    )


def protection_for(
    transcript: Transcript, session_keys: SessionKeys, packet: PacketRecord
) -> PacketProtection:
    keys = derive_test_session_keys(packet.sid, session_keys)
    return PacketProtection(keys, PacketMode(transcript.mode_name), layout_of(packet))


def covered_len(mode: PacketMode, layout: PacketLayout) -> int:
    return 16 if mode is PacketMode.AUTHENTICATED else layout.hmac_offset


@pytest.mark.parametrize("transcript", PROTECTED_TEST, indirect=True)
def test_recorded_packets(transcript: Transcript, session_keys: SessionKeys) -> None:
    packets = transcript.protected_packets()
    assert len(packets) == transcript.data["checks"]["test_hmacs_checked"] == 10
    for packet in packets:
        protection = protection_for(transcript, session_keys, packet)
        offset = layout_of(packet).hmac_offset
        assert packet.plaintext[offset : offset + 16] == packet.hmac
        assert protection.unprotect(packet.payload) == packet.plaintext
        assert protection.protect(packet.plaintext) == packet.payload


@pytest.mark.parametrize("transcript", PROTECTED_TEST, indirect=True)
def test_recorded_packets_coverage(transcript: Transcript, session_keys: SessionKeys) -> None:
    """A flipped bit fails exactly where the HMAC or its value lies; padding is free."""
    mode = PacketMode(transcript.mode_name)
    for packet in transcript.protected_packets()[:4]:
        protection = protection_for(transcript, session_keys, packet)
        layout = layout_of(packet)
        protected = set(range(covered_len(mode, layout))) | set(
            range(layout.hmac_offset, layout.min_length)
        )
        for offset in range(len(packet.payload)):
            wire = bytearray(packet.payload)
            wire[offset] ^= 0x80
            if offset in protected:
                with pytest.raises(AuthenticationError, match=r"^HMAC: "):
                    protection.unprotect(bytes(wire))
            else:
                protection.unprotect(bytes(wire))


@pytest.mark.parametrize(("mode", "layout"), ALL)
def test_truncated_is_protocol_error(mode: PacketMode, layout: PacketLayout) -> None:
    protection = PacketProtection(KEYS, mode, layout)
    short = bytes(layout.min_length - 1)
    with pytest.raises(ProtocolError, match=f"{len(short)} octets, at least") as caught:
        protection.unprotect(short)
    assert not isinstance(caught.value, AuthenticationError)
    assert caught.value.section == layout.section
    with pytest.raises(ValueError, match="at least"):
        protection.protect(short)


@pytest.mark.parametrize(("mode", "layout"), ALL)
def test_minimum_sizes(mode: PacketMode, layout: PacketLayout) -> None:
    """48 octets for sender packets, 112 for reflector packets (erratum 5045)."""
    expected = {PacketLayout.SENDER: 48, PacketLayout.REFLECTOR: 112}[layout]
    assert layout.min_length == expected
    protection = PacketProtection(KEYS, mode, layout)
    packet = bytes(range(expected))
    assert len(protection.protect(packet)) == expected


@pytest.mark.parametrize(("mode", "layout"), ALL)
@given(data=st.data())
def test_round_trip(mode: PacketMode, layout: PacketLayout, data: st.DataObject) -> None:
    packet = data.draw(st.binary(min_size=layout.min_length, max_size=layout.min_length + 80))
    protection = PacketProtection(KEYS, mode, layout)
    wire = protection.protect(packet)
    covered, offset = covered_len(mode, layout), layout.hmac_offset
    assert wire[:covered] != packet[:covered]
    assert wire[covered:offset] == packet[covered:offset]
    plaintext = protection.unprotect(wire)
    assert plaintext[:offset] == packet[:offset]
    assert plaintext[offset + 16 :] == packet[offset + 16 :]


@pytest.mark.parametrize(("mode", "layout"), ALL)
@given(data=st.data())
def test_random_bytes_are_refused(
    mode: PacketMode, layout: PacketLayout, data: st.DataObject
) -> None:
    packet = data.draw(st.binary(max_size=200))
    with pytest.raises(ProtocolError):  # AuthenticationError included
        PacketProtection(KEYS, mode, layout).unprotect(packet)


def test_repr_hides_keys() -> None:
    text = repr(PacketProtection(KEYS, PacketMode.ENCRYPTED, PacketLayout.SENDER))
    assert KEYS.hmac_key.hex() not in text
    assert repr(KEYS.aes_key) not in text
