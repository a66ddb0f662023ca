"""open_packet: the one unprotect-decode-and-count step of every engine (RFC 4656 §4.1.2)."""

import pytest

from otwamp.results.records import Dropped
from otwamp.session.protection import open_packet
from otwamp.session.reflector import ReflectorCounters
from otwamp.wire.twamp_test import SENDER_AUTH, SENDER_OPEN, SenderPacket

from .helpers import protection_for

NTP = 0xEEACD976_9B549F94


def counts(dropped: Dropped | ReflectorCounters) -> tuple[int, int, int]:
    return dropped.truncated, dropped.corrupt, dropped.auth_failures


@pytest.mark.parametrize("mode", ["authenticated", "encrypted"])
def test_secured_packet_gives_its_fields(mode: str) -> None:
    protection = protection_for(mode)
    assert protection is not None
    wire = protection.sender.protect(SenderPacket(3, NTP, 0x8001, b"pad").encode(True))
    dropped = Dropped()
    assert open_packet(wire, protection.sender, SENDER_AUTH, dropped) == (3, NTP, 0x8001)
    assert counts(dropped) == (0, 0, 0)


def test_open_packet_gives_its_fields() -> None:
    wire = SenderPacket(3, NTP, 0x8001).encode()
    assert open_packet(wire, None, SENDER_OPEN, Dropped()) == (3, NTP, 0x8001)


@pytest.mark.parametrize(("mode", "size"), [("open", 13), ("authenticated", 47), ("encrypted", 0)])
def test_short_packet_counts_as_truncated(mode: str, size: int) -> None:
    protection = protection_for(mode)
    layout = SENDER_OPEN if protection is None else SENDER_AUTH
    counters = ReflectorCounters()
    unprotect = None if protection is None else protection.sender
    assert open_packet(bytes(size), unprotect, layout, counters) is None
    assert counts(counters) == (1, 0, 0)


@pytest.mark.parametrize("mode", ["authenticated", "encrypted"])
def test_forged_packet_counts_as_auth_failure(mode: str) -> None:
    protection = protection_for(mode)
    assert protection is not None
    wire = bytearray(protection.sender.protect(SenderPacket(3, NTP, 1).encode(True)))
    wire[40] ^= 1  # in the HMAC
    dropped = Dropped()
    assert open_packet(bytes(wire), protection.sender, SENDER_AUTH, dropped) is None
    assert counts(dropped) == (0, 0, 1)


@pytest.mark.parametrize("mode", ["open", "authenticated", "encrypted"])
def test_zero_multiplier_counts_as_corrupt(mode: str) -> None:
    """RFC 4656 §4.1.2: Multiplier 0 makes the packet corrupt, not truncated."""
    protection = protection_for(mode)
    packet = SenderPacket(3, NTP, 0x8000).encode(protection is not None)
    layout = SENDER_OPEN if protection is None else SENDER_AUTH
    wire = packet if protection is None else protection.sender.protect(packet)
    dropped = Dropped()
    unprotect = None if protection is None else protection.sender
    assert open_packet(wire, unprotect, layout, dropped) is None
    assert counts(dropped) == (0, 1, 0)
