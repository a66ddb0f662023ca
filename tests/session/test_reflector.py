"""The Session-Reflector: replies, drop counters and its REFWAIT/Stop timer (RFC 5357 §4.2)."""

import pytest

from otwamp.results.records import Stamp, TwampSessionRecord
from otwamp.session.reflector import STOPPED, SessionReflector
from otwamp.session.sender import SessionSender
from otwamp.wire.timestamp import ns_to_ntp
from otwamp.wire.twamp_test import ReflectorPacket, SenderPacket

from .helpers import ERROR, SID, protection_for

S = 10**9
T0 = 1_700_000_000 * S  # Start-Sessions, wall clock ns
T1 = ns_to_ntp(T0 + S)
REFWAIT_REASON = "no test packet for 900 s (REFWAIT)"
MODES = ["open", "authenticated", "encrypted"]


def sender_packet(seq: int = 4, error: int = ERROR.to_int(), padding: bytes = b"") -> bytes:
    return SenderPacket(seq, T1, error, padding).encode()


def started(**options: int) -> SessionReflector:
    reflector = SessionReflector(**options)
    reflector.start(T0)
    return reflector


def test_reply_carries_t2_and_the_sender_fields() -> None:
    reflector = started()
    received = T0 + S + 50_000
    reply = reflector.reflect(sender_packet(padding=bytes(40)), received, 0x8002, None)
    assert reply is not None
    wire = reflector.stamp(reply, ns_to_ntp(received + 5_000), 0x8003)
    packet = ReflectorPacket.decode(bytes(wire))
    assert (packet.seq, packet.error, packet.timestamp) == (0, 0x8003, ns_to_ntp(received + 5_000))
    assert packet.receive_timestamp == ns_to_ntp(received)
    assert (packet.sender_seq, packet.sender_timestamp) == (4, T1)
    assert packet.sender_error == ERROR.to_int()
    assert packet.sender_ttl == 255  # TTL unknown (RFC 5357 §4.2)
    assert len(wire) == 14 + 40  # the sender's length, its padding shortened by 27 octets
    assert reflector.counters.reflected == 1


def test_reflector_numbers_its_own_replies() -> None:
    reflector = started()
    replies = [reflector.reflect(sender_packet(seq), T0 + S, 1, 64) for seq in (9, 9, 3)]
    seqs = [ReflectorPacket.decode(bytes(reply)).seq for reply in replies if reply is not None]
    assert seqs == [0, 1, 2]


@pytest.mark.parametrize("mode", MODES)
def test_twamp_sender_reads_the_reply(mode: str) -> None:
    protection = protection_for(mode)
    record = TwampSessionRecord(SID, mode, "passphrase")
    sender = SessionSender(record, bytes(70), protection)
    reflector = SessionReflector(protection)
    reflector.start(T0)
    wire = bytes(sender.stamp(sender.prepare(0), T1, ERROR.to_int()))
    sender.mark_sent(0, T1, ERROR)
    reply = reflector.reflect(wire, T0 + S + 40_000, ERROR.to_int(), 61)
    assert reply is not None
    back = bytes(reflector.stamp(reply, ns_to_ntp(T0 + S + 45_000), ERROR.to_int()))
    got = sender.on_datagram(back, Stamp(T0 + S + 90_000, True, ERROR.seconds), 60)
    assert got is not None
    assert (got.sender_seq, got.reflector_seq, got.sender_ttl, got.ttl) == (0, 0, 61, 60)
    assert abs(got.t2.ns - (T0 + S + 40_000)) <= 1
    assert abs(got.t3.ns - (T0 + S + 45_000)) <= 1
    assert record.dropped.corrupt == record.dropped.truncated == 0


def test_twamp_sender_counts_a_corrupt_reply() -> None:
    record = TwampSessionRecord(SID, "open", "none")
    sender = SessionSender(record, b"")
    sender.mark_sent(0, T1, ERROR)
    reply = ReflectorPacket(0, T1, 0x8000, T1, 0, T1, ERROR.to_int(), 255).encode()
    assert sender.on_datagram(reply, Stamp(T0, True, 0.0), None) is None
    assert (record.dropped.corrupt, record.dropped.truncated) == (1, 0)


@pytest.mark.parametrize("mode", MODES)
def test_drop_counters(mode: str) -> None:
    protection = protection_for(mode)
    reflector = SessionReflector(protection)
    packet = SenderPacket(1, T1, 0x8000).encode(protection is not None)  # Multiplier 0
    corrupt = packet if protection is None else protection.sender.protect(packet)
    reflector.start(T0)
    assert reflector.reflect(corrupt, T0 + S, 1, 64) is None
    assert reflector.reflect(b"\x00" * 13, T0 + S, 1, 64) is None
    counters = reflector.counters
    assert (counters.corrupt, counters.truncated, counters.reflected) == (1, 1, 0)


def test_packets_before_start_are_early() -> None:
    reflector = SessionReflector()
    assert reflector.reflect(sender_packet(), T0, 1, 64) is None
    assert reflector.counters.early == 1
    assert reflector.get_timer() is None
    assert reflector.handle_timer(T0 + 10_000 * S) is None
    assert not reflector.closed


def test_a_packet_received_before_start_but_read_after_it_is_early() -> None:
    """What counts is the kernel's receive time, not when the reflector thread read it."""
    reflector = started()
    assert reflector.reflect(sender_packet(), T0 - 1_000, 1, 64) is None
    assert reflector.counters.early == 1 and reflector.counters.reflected == 0
    assert reflector.reflect(sender_packet(), T0, 1, 64) is not None


def test_refwait_counts_from_start() -> None:
    reflector = started()
    assert reflector.get_timer() == T0 + 900 * S
    assert reflector.handle_timer(T0 + 900 * S - 1) is None
    assert reflector.handle_timer(T0 + 900 * S) == REFWAIT_REASON
    assert reflector.closed
    assert reflector.get_timer() is None
    assert reflector.handle_timer(T0 + 2000 * S) is None  # said once


def test_only_a_reflected_packet_rearms_refwait() -> None:
    reflector = started(refwait_ns=10 * S)
    assert reflector.reflect(sender_packet(), T0 + 4 * S, 1, 64) is not None
    assert reflector.get_timer() == T0 + 14 * S
    assert reflector.reflect(b"short", T0 + 8 * S, 1, 64) is None  # refused: no re-arm
    assert reflector.reflect(sender_packet(error=0), T0 + 9 * S, 1, 64) is None
    assert reflector.get_timer() == T0 + 14 * S
    assert reflector.handle_timer(T0 + 13 * S) is None
    assert reflector.handle_timer(T0 + 14 * S) == "no test packet for 10 s (REFWAIT)"


def test_stop_keeps_reflecting_for_the_timeout() -> None:
    """RFC 5357 §3.8: reflect for Timeout after Stop-Sessions, then the session ends."""
    reflector = started()
    reflector.stop(T0 + 60 * S, 2 * S)
    assert reflector.get_timer() == T0 + 62 * S
    assert reflector.reflect(sender_packet(), T0 + 61 * S, 1, 64) is not None
    assert reflector.handle_timer(T0 + 62 * S - 1) is None
    # Received after the deadline, even before the timer fired: ignored (RFC 5357 §4.2).
    assert reflector.reflect(sender_packet(), T0 + 62 * S + 1, 1, 64) is None
    assert reflector.counters.late == 1
    assert reflector.handle_timer(T0 + 62 * S) == STOPPED
    assert reflector.closed
    assert reflector.reflect(sender_packet(), T0 + 61 * S, 1, 64) is None
    assert reflector.counters.late == 2
    assert reflector.counters.reflected == 1


def test_the_earlier_of_refwait_and_stop_is_the_timer() -> None:
    reflector = started(refwait_ns=10 * S)
    reflector.stop(T0 + 5 * S, 30 * S)
    assert reflector.get_timer() == T0 + 10 * S
    assert reflector.handle_timer(T0 + 10 * S) == "no test packet for 10 s (REFWAIT)"


def test_a_second_stop_cannot_extend_the_session() -> None:
    reflector = started()
    reflector.stop(T0, 2 * S)
    reflector.stop(T0 + S, 5 * S)
    assert reflector.get_timer() == T0 + 2 * S


def test_stop_before_start_ends_at_its_deadline() -> None:
    reflector = SessionReflector()
    reflector.stop(T0, 2 * S)
    assert reflector.get_timer() == T0 + 2 * S
    assert reflector.reflect(sender_packet(), T0 + S, 1, 64) is None
    assert reflector.counters.early == 1
    assert reflector.handle_timer(T0 + 2 * S) == STOPPED
