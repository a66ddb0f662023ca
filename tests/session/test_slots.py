"""Send schedules from Request-Session slots (RFC 4656 §3.6, §5)."""

import dataclasses
from ipaddress import ip_address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otwamp.session.schedule import Schedule
from otwamp.session.slots import (
    CHUNK,
    ONE,
    SidExponential,
    fixed_multiply,
    offsets_seconds,
    plan_send_times,
    request_send_times,
    send_offsets,
    send_times,
    session_schedule,
    slots_for,
    waits,
)
from otwamp.wire.owamp_control import RequestSession, Slot, SlotType
from otwamp.wire.timestamp import duration_to_ntp

from .helpers import transcript

LOOPBACK = ip_address("127.0.0.1")
REQUEST_TEMPLATE = RequestSession(LOOPBACK, LOOPBACK, 1, 2, (Slot(SlotType.FIXED, ONE),), 1)
# RFC 4656 Appendix B: SID and the sum of its first 1,000,000 deviates (lambda = 1).
APPENDIX_B = [
    ("2872979303ab47eeac028dab3829dab2", 0x000F4479BD317381),
    ("0102030405060708090a0b0c0d0e0f00", 0x000F433686466A62),
    ("deadbeefdeadbeefdeadbeefdeadbeef", 0x000F416C8884D2D3),
    ("feed0feed1feed2feed3feed4feed5ab", 0x000F3F0B4B416EC8),
]


class Constant:
    """A 'random' source that always gives the same variate."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.draws = 0

    def draw(self) -> int:
        self.draws += 1
        return self.value


@pytest.mark.parametrize(("sid", "total"), APPENDIX_B)
def test_appendix_b_vectors(sid: str, total: int) -> None:
    source = SidExponential(bytes.fromhex(sid))
    assert sum(source.draw() for _ in range(1_000_000)) == total


def test_fixed_slot_offsets_are_exact() -> None:
    slot = Slot(SlotType.FIXED, 0x028F5C28)  # owping -i 0.01f
    # The first packet waits one slot too (§3.6): due at Start Time + 10 ms.
    assert send_offsets([slot], 4, Constant(0)) == [0x028F5C28 * n for n in (1, 2, 3, 4)]


def test_slots_cycle() -> None:
    slots = [Slot(SlotType.FIXED, 3 * ONE), Slot(SlotType.FIXED, 0), Slot(SlotType.FIXED, ONE)]
    assert list(waits(slots, 7, Constant(0))) == [w * ONE for w in (3, 0, 1, 3, 0, 1, 3)]
    assert offsets_seconds(send_offsets(slots, 7, Constant(0))) == [3, 3, 4, 7, 7, 8, 11]


def test_exponential_slot_scales_the_variate_by_its_mean() -> None:
    source = Constant(ONE // 2)  # a variate of 0.5
    slots = [Slot(SlotType.EXPONENTIAL, 4 * ONE), Slot(SlotType.FIXED, ONE)]
    assert list(waits(slots, 4, source)) == [2 * ONE, ONE, 2 * ONE, ONE]
    assert source.draws == 2  # fixed slots draw nothing


def test_packet_pairs_schedule() -> None:
    """RFC 4656 §3.6: a Poisson stream of back-to-back pairs, type 0 then type 1 zero."""
    slots = [Slot.of_seconds(SlotType.EXPONENTIAL, 0.01), Slot(SlotType.FIXED, 0)]
    offsets = session_schedule(slots, 1000, bytes(16))
    assert all(offsets[i] == offsets[i + 1] for i in range(0, 1000, 2))
    assert all(offsets[i] <= offsets[i + 1] for i in range(999))


def test_exponential_mean_within_tolerance() -> None:
    mean = 0.001
    offsets = offsets_seconds(
        session_schedule([Slot.of_seconds(SlotType.EXPONENTIAL, mean)], 20_000, bytes(range(16)))
    )
    assert offsets[-1] / len(offsets) == pytest.approx(mean, rel=0.03)


def test_sid_seeds_a_reproducible_sequence() -> None:
    def first_five(sid: bytes) -> list[int]:
        source = SidExponential(sid)
        return [source.draw() for _ in range(5)]

    assert first_five(b"A" * 16) == first_five(b"A" * 16)
    assert first_five(b"A" * 16) != first_five(b"B" * 16)


def test_send_times_match_perfsonar_schedule() -> None:
    """owping -c 5 -i 0.01f: packet n is sent just after Start Time + (n + 1) x 10 ms."""
    doc = transcript("owamp-O")
    request = next(m for m in doc["control"]["messages"] if m["name"] == "Request-Session")
    fields = request["fields"]
    slot = fields["slots"][0]
    slots = [Slot(SlotType(slot["slot_type"]), slot["slot_parameter"]["uint64"])]
    times = list(
        send_times(fields["start_time"]["uint64"], slots, fields["num_packets"], Constant(0))
    )
    sent = [
        packet["fields"]["timestamp"]["uint64"]
        for packet in doc["test_packets"]
        if packet["direction"] == "client->server"
    ]
    late = [actual - due for due, actual in zip(times, sent, strict=True)]
    assert all(0 <= gap < duration_to_ntp(0.002) for gap in late)


def test_fixed_multiply_is_exact() -> None:
    assert fixed_multiply(3 * ONE, ONE // 4) == 3 * ONE // 4
    assert fixed_multiply((1 << 64) - 1, (1 << 64) - 1) == ((1 << 64) - 1) ** 2 >> 32


@pytest.mark.parametrize(
    ("kind", "slot_type"),
    [(Schedule.FIXED, SlotType.FIXED), (Schedule.POISSON, SlotType.EXPONENTIAL)],
)
def test_slots_for_cli_schedule(kind: Schedule, slot_type: SlotType) -> None:
    (slot,) = slots_for(kind, 0.25)
    assert slot == Slot(slot_type, ONE // 4)
    assert slot.seconds == 0.25


def test_a_schedule_needs_slots() -> None:
    with pytest.raises(ValueError):
        send_offsets([], 1, Constant(0))
    with pytest.raises(ValueError):
        SidExponential(bytes(15))
    assert send_offsets([], 0, Constant(0)) == []


def _eager(start: int, slots: list[Slot], count: int, sid: bytes) -> list[int]:
    return list(send_times(start, slots, count, SidExponential(sid)))


MIXED = [Slot.of_seconds(SlotType.EXPONENTIAL, 0.01), Slot(SlotType.FIXED, 0)]


@pytest.mark.parametrize("count", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7])
def test_send_times_equal_the_eager_schedule(count: int) -> None:
    """The checkpointed schedule is the §5 schedule, read in any order (issue S2)."""
    sid = bytes(range(16))
    expected = _eager(ONE << 20, MIXED, count, sid)
    times = request_send_times(_request(ONE << 20, MIXED, count), sid)
    assert len(times) == count
    assert list(times) == expected
    assert [times[seq] for seq in reversed(range(count))] == expected[::-1]
    assert times[1:-1:3] == expected[1:-1:3]
    if count:
        assert times[-1] == expected[-1]


@given(st.lists(st.integers(min_value=0, max_value=5 * CHUNK - 1), max_size=40))
@settings(max_examples=50, deadline=None)
def test_send_times_random_access(order: list[int]) -> None:
    sid = b"S" * 16
    expected = _eager(0, MIXED, 5 * CHUNK, sid)
    times = request_send_times(_request(0, MIXED, 5 * CHUNK), sid)
    assert [times[seq] for seq in order] == [expected[seq] for seq in order]


def test_send_times_wrap_at_the_era_like_the_clock() -> None:
    start = (1 << 64) - ONE  # one second before the 2036 era wrap (RFC 5905 §6)
    fixed = [Slot.of_seconds(SlotType.FIXED, 0.25)]
    times = request_send_times(_request(start, fixed, 8), bytes(16))
    assert list(times) == _eager(start, fixed, 8, bytes(16))
    assert times[3] == 0 and times[4] == ONE // 4


def test_send_times_keep_checkpoints_not_packets() -> None:
    """A million packets keep a checkpoint per chunk and a few chunks: not 8 MB (S2)."""
    count = 1_000_000
    plan = plan_send_times(_request(0, [Slot.of_seconds(SlotType.FIXED, 0.001)], count), b"K" * 16)
    steps = 0
    while True:
        try:
            next(plan)
        except StopIteration as done:
            times = done.value
            break
        steps += 1
    assert steps == -(-count // CHUNK)  # one chunk of work per step: the loop turns between
    assert times[-1] == count * (ONE // 1000)  # the last, known without recomputing
    for seq in range(0, count, count // 10):
        assert times[seq] == (seq + 1) * (ONE // 1000)
    kept = sum(len(chunk) for chunk in times._chunks.values())
    assert kept <= 4 * CHUNK
    assert len(times._positions) == len(times._offsets) == steps


def test_send_times_out_of_range() -> None:
    times = request_send_times(_request(0, MIXED, 3), bytes(16))
    with pytest.raises(IndexError):
        times[3]
    with pytest.raises(IndexError):
        times[-4]


def _request(start: int, slots: list[Slot], count: int) -> RequestSession:
    return dataclasses.replace(
        REQUEST_TEMPLATE, start_time=start, slots=tuple(slots), num_packets=count
    )
