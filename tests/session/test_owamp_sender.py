"""The OWAMP-Test sender: packets per mode, skip ranges and Next Seqno (RFC 4656 §4.1, §3.8)."""

import pytest

from otwamp.session.owamp_sender import OwampSender, too_late
from otwamp.session.protection import session_protection
from otwamp.wire.owamp_stop import SkipRange
from otwamp.wire.twamp_test import SenderPacket

from .helpers import ERROR, protection_for, transcript, transcript_keys

NTP = 0xEEACD976_9B549F94


def test_open_packet_layout() -> None:
    sender = OwampSender(b"\xaa\xbb")
    wire = bytes(sender.stamp(sender.prepare(7), NTP, ERROR.to_int()))
    assert sender.packet_size == len(wire) == 16
    assert wire == (7).to_bytes(4, "big") + NTP.to_bytes(8, "big") + ERROR.encode() + b"\xaa\xbb"
    assert SenderPacket.decode(wire) == SenderPacket(7, NTP, ERROR.to_int(), b"\xaa\xbb")


@pytest.mark.parametrize("mode", ["authenticated", "encrypted"])
def test_secured_packet_round_trip(mode: str) -> None:
    protection = protection_for(mode)
    assert protection is not None
    sender = OwampSender(bytes(5), protection)
    wire = sender.stamp(sender.prepare(3), NTP, ERROR.to_int())
    assert sender.packet_size == len(wire) == 48 + 5
    assert wire[:4] != bytes([0, 0, 0, 3])  # the sequence number is encrypted
    packet = SenderPacket.decode(protection.sender.unprotect(bytes(wire)), authenticated=True)
    assert (packet.seq, packet.timestamp, packet.error) == (3, NTP, ERROR.to_int())


def test_authenticated_timestamp_is_stamped_in_clear_after_protection() -> None:
    """RFC 4656 §4.1.2: only the first block is encrypted, before the timestamp is taken."""
    sender = OwampSender(b"", protection_for("authenticated"))
    prepared = bytes(sender.prepare(0))
    wire = bytes(sender.stamp(bytearray(prepared), NTP, ERROR.to_int()))
    assert wire[:16] == prepared[:16]
    assert wire[16:26] == NTP.to_bytes(8, "big") + ERROR.encode()


@pytest.mark.parametrize("name", ["owamp-O", "owamp-A", "owamp-E"])
def test_reproduces_perfsonar_packets(name: str) -> None:
    """owping's test packets (no padding), byte for byte, from their seq and timestamp."""
    doc = transcript(name)
    keys = transcript_keys(doc)
    for packet in doc["test_packets"]:
        sid = bytes.fromhex(packet["sid"])
        sender = OwampSender(b"", session_protection(doc["mode_value"], sid, keys))
        fields = packet["fields"]
        error = int(fields["error_estimate"]["hex"], 16)
        wire = sender.stamp(sender.prepare(fields["seq"]), fields["timestamp"]["uint64"], error)
        assert bytes(wire).hex() == packet["payload_hex"]


def test_next_seqno_and_no_skips_when_all_sent() -> None:
    sender = OwampSender(b"")
    for seq in range(5):
        sender.mark_sent(seq, NTP, ERROR)
    assert sender.stop_description() == (5, ())
    assert sender.sent == 5


def test_skip_ranges_are_merged_and_in_order() -> None:
    sender = OwampSender(b"")
    for seq in (0, 1, 2):
        sender.skip(seq)
    sender.mark_sent(3, NTP, ERROR)
    sender.skip(4)
    sender.mark_sent(5, NTP, ERROR)
    sender.skip(6)
    sender.skip(7)
    assert sender.stop_description() == (8, (SkipRange(0, 2), SkipRange(4, 4), SkipRange(6, 7)))
    assert sender.next_seqno == 8
    assert sender.sent == 2


def test_numbers_passed_over_count_as_skipped() -> None:
    sender = OwampSender(b"")
    sender.mark_sent(0, NTP, ERROR)
    sender.mark_sent(4, NTP, ERROR)  # 1..3 were never sent
    sender.skip(5)
    assert sender.stop_description() == (6, (SkipRange(1, 3), SkipRange(5, 5)))


def test_sequence_numbers_only_go_forward() -> None:
    sender = OwampSender(b"")
    sender.mark_sent(0, NTP, ERROR)
    with pytest.raises(ValueError):
        sender.skip(0)


def test_too_late_means_more_than_timeout_in_the_past() -> None:
    """RFC 4656 §4.1.1: late by more than Timeout, MUST NOT be sent; less, sent at once."""
    assert not too_late(scheduled=100, now=150, timeout=50)
    assert too_late(scheduled=100, now=151, timeout=50)
    assert not too_late(scheduled=100, now=90, timeout=0)
