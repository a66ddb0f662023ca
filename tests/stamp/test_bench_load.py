"""The load generator of ``bench.stamp``: what it sends and how it counts the replies.

The zero-loss figure of the STAMP reflector (issue 13) rests on these
counts, so they are checked against crafted replies and a real reflector.
"""

import importlib
from pathlib import Path
from types import ModuleType

import pytest

from otwamp.stamp.packets import BASE_SIZE, ReflectorPacket, SenderPacket

SECOND = 1 << 32  # one second in NTP format (RFC 5905 §6)


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``bench.stamp``, from the repository root (``python -m bench`` runs from there)."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    return importlib.import_module("bench.stamp")


def reply(sender_seq: int, ssid: int, t3: int) -> bytes:
    return ReflectorPacket(sender_seq, t3, 0x0101, ssid, t3, sender_seq, 0, 0x0101, 64).encode()


def test_prebuilt_packets_are_one_sessions_base_packets(bench: ModuleType) -> None:
    packets = bench.prebuilt(5, 4242)
    assert {len(packet) for packet in packets} == {BASE_SIZE}  # RFC 8762 §4.2.1
    decoded = [SenderPacket.decode(packet, None) for packet in packets]
    assert [packet.seq for packet in decoded] == [0, 1, 2, 3, 4]
    assert {packet.ssid for packet in decoded} == {4242}


def test_tally_counts_each_sequence_number_once(bench: ModuleType) -> None:
    replies = [reply(seq, 7, 10 * SECOND + seq * SECOND // 100) for seq in (0, 1, 3, 3, 4)]
    replies += [reply(2, 8, 0), reply(9, 7, 0), b"\x00" * 10]  # another SSID, past N, garbage
    distinct, duplicates, foreign, reflected = bench._tally(replies, 5, 7)
    assert (distinct, duplicates, foreign) == (4, 1, 3)
    assert round(reflected) == 75  # 3 intervals over 0.04 s of T3


def test_generate_against_a_stateless_reflector(bench: ModuleType) -> None:
    with bench.stamp_reflector() as port:
        run = bench.generate(port, 500, 2_000, wait=0.5)
    assert run.error is None and run.clean
    assert (run.sent, run.received, run.lost, run.duplicates, run.foreign) == (500, 500, 0, 0, 0)
    assert len(run.t1_ns) == 500 and run.achieved_pps is not None
    assert 1_500 < run.achieved_pps < 2_100  # paced, not flooded
