"""OWAMP send schedules from Request-Session slots (RFC 4656 §3.5, §3.6, §5).

A schedule is a circular list of slots; before each packet the sender waits
the current slot's time and moves to the next slot, so packet ``i`` is due
at Start Time plus the first ``i + 1`` waits. Times are in the 32.32
timestamp format of the wire (RFC 4656 §4.1.2), so that sender and receiver
compute identical schedules. Exponential waits come from the SID-seeded
generator of §5, which every implementation must reproduce bit for bit.
"""

import itertools
import struct
from array import array
from collections.abc import Generator, Iterator, Sequence
from typing import Protocol, overload

from otwamp.security.primitives import BLOCK_LEN, ecb
from otwamp.session.schedule import Schedule
from otwamp.wire.owamp_control import RequestSession, Slot, SlotType
from otwamp.wire.timestamp import ntp_add, ntp_to_duration

ONE = 1 << 32  # 1.0 in 32.32 fixed point (RFC 4656 §5.2)
_MASK32 = ONE - 1
_BIT31 = 1 << 31
# Q[k] of algorithm S, k = 1..11, as fixed by RFC 4656 §5.2; Q[k] = Q[11] for k > 11.
_Q = (
    0xB17217F8,
    0xEEF193F7,
    0xFD271862,
    0xFF9D6DD0,
    0xFFF4CFD0,
    0xFFFEE819,
    0xFFFFE7FF,
    0xFFFFFE2B,
    0xFFFFFFE0,
    0xFFFFFFFE,
    0xFFFFFFFF,
)
_LN2 = _Q[0]
_BATCH = 256  # AES blocks encrypted per call: 1,024 uniforms
CHUNK = 256  # packets between two saved generator states: 0.5 ms of Python to recompute
_CACHED_CHUNKS = 4  # chunks kept computed: sequential readers and short reorderings hit them


class UnitExponential(Protocol):
    """A source of mean-1 exponential variates in 32.32 fixed point."""

    def draw(self) -> int: ...


def fixed_multiply(u: int, v: int) -> int:
    """Product of two 32.32 numbers, computed exactly (RFC 4656 §5.2)."""
    return (u * v) >> 32


class SidExponential:
    """The reproducible exponential generator of RFC 4656 §5, seeded by a SID.

    Uniforms: AES-128 under key SID of a 16-octet counter, four 32-bit words
    per block (§5.3). Variates: Knuth's algorithm S in 32.32 fixed point (§5.1).
    """

    def __init__(self, sid: bytes, position: int = 0) -> None:
        if len(sid) != BLOCK_LEN:
            raise ValueError("the SID is 16 octets")
        self._encrypt = ecb(sid).encryptor().update
        self._words: Sequence[int] = ()
        self._next = 0
        self.position = position  # uniforms drawn so far: the generator's whole state

    def uniform(self) -> int:
        """The next 32-bit uniform of algorithm Unif (RFC 4656 §5.3)."""
        if self._next == len(self._words):
            block, self._next = divmod(self.position, 4)  # block b's counter is 4b (§5.3 U2)
            counters = range(4 * block, 4 * (block + _BATCH), 4)
            plain = b"".join(counter.to_bytes(BLOCK_LEN, "big") for counter in counters)
            self._words = struct.unpack(f"!{4 * _BATCH}I", self._encrypt(plain))
        word = self._words[self._next]
        self._next += 1
        self.position += 1
        return word

    def draw(self) -> int:
        """The next mean-1 exponential variate, 32.32 fixed point (RFC 4656 §5.1 S1-S4)."""
        u = self.uniform()
        j = 0
        while u & _BIT31 and j < 32:  # S1: skip the leading ones and the first zero
            u = (u << 1) & _MASK32
            j += 1
        u = (u << 1) & _MASK32
        if u < _LN2:  # S2: immediate acceptance (all ones gives j = 32, u = 0: 32 ln2)
            return j * _LN2 + u
        # S3: the least k with u < Q[k]; here k >= 2 since u >= Q[1].
        k = next((index + 1 for index, q in enumerate(_Q) if u < q), len(_Q) + 1)
        v = min(self.uniform() for _ in range(k))
        return fixed_multiply((j << 32) + v, _LN2)  # S4


def waits(
    slots: Sequence[Slot], count: int, source: UnitExponential, first: int = 0
) -> Iterator[int]:
    """Waits before packets ``first`` to ``count - 1``, 32.32, cycling through ``slots`` (§3.6)."""
    if count > first and not slots:
        raise ValueError("a schedule needs at least one slot")
    for seq in range(first, count):
        slot = slots[seq % len(slots)]
        if slot.type is SlotType.EXPONENTIAL:
            yield fixed_multiply(source.draw(), slot.parameter)
        else:
            yield slot.parameter


def send_offsets(slots: Sequence[Slot], count: int, source: UnitExponential) -> list[int]:
    """When each packet is due after Start Time, 32.32: packet i after i + 1 waits (§3.6)."""
    return list(itertools.accumulate(waits(slots, count, source)))


def send_times(
    start_time: int, slots: Sequence[Slot], count: int, source: UnitExponential
) -> Iterator[int]:
    """Scheduled send timestamps of a session starting at ``start_time``, lazily (§4.1.1).

    They wrap to era 1 like the clock does in 2036 (RFC 5905 §6), so they
    are not sorted across the wrap; compare them with ``ntp_diff``.
    """
    for offset in itertools.accumulate(waits(slots, count, source)):
        yield ntp_add(start_time, offset)


def session_schedule(slots: Sequence[Slot], count: int, sid: bytes) -> list[int]:
    """A session's offsets, exponential waits drawn from its SID as §5 demands."""
    return send_offsets(slots, count, SidExponential(sid))


class SendTimes(Sequence[int]):
    """A session's scheduled send timestamps, recomputed on demand (RFC 4656 §3.6, §5).

    Holding 8 octets a packet would let a Request-Session of a million
    packets cost 8 MB before a single packet is sent (issue S2). Instead the
    §5 generator's state (uniforms drawn, time so far) is saved every CHUNK
    packets by one pass over the schedule, and a chunk is recomputed from its
    checkpoint when read: 16 octets per CHUNK packets, plus the last few
    chunks read, which serve sequential readers (sender, receiver, Fetch).
    Timestamps wrap to era 1 like the clock does in 2036 (RFC 5905 §6).
    """

    def __init__(self, start_time: int, slots: Sequence[Slot], count: int, sid: bytes) -> None:
        self.start_time = start_time
        self._slots = tuple(slots)
        self._count = count
        self._sid = sid
        self._positions = array("Q")  # uniforms drawn before packet k * CHUNK
        self._offsets = array("Q")  # Start Time to the end of packet k * CHUNK - 1's wait
        self._last = start_time
        self._chunks: dict[int, array[int]] = {}

    def plan(self) -> Generator[None, None, None]:
        """Walk the schedule once to save the checkpoints; yields after every chunk."""
        source = SidExponential(self._sid)
        offset = 0
        for first in range(0, self._count, CHUNK):
            self._positions.append(source.position)
            self._offsets.append(offset)
            offset += sum(waits(self._slots, min(first + CHUNK, self._count), source, first))
            yield
        self._last = ntp_add(self.start_time, offset)

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> list[int]: ...

    def __getitem__(self, index: int | slice) -> int | list[int]:
        if isinstance(index, slice):
            return [self[seq] for seq in range(*index.indices(self._count))]
        seq = index + self._count if index < 0 else index
        if not 0 <= seq < self._count:
            raise IndexError("no such packet in the session")
        if seq == self._count - 1:
            return self._last
        chunk, within = divmod(seq, CHUNK)
        return self._chunk(chunk)[within]

    def __iter__(self) -> Iterator[int]:
        for chunk in range(len(self._offsets)):
            yield from self._chunk(chunk)

    def _chunk(self, chunk: int) -> "array[int]":
        """The send times of packets ``chunk * CHUNK`` on, from that chunk's checkpoint."""
        times = self._chunks.get(chunk)
        if times is None:
            first = chunk * CHUNK
            source = SidExponential(self._sid, self._positions[chunk])
            waited = waits(self._slots, min(first + CHUNK, self._count), source, first)
            offsets = itertools.accumulate(waited, initial=self._offsets[chunk])
            next(offsets)  # the checkpoint itself: the end of the previous chunk
            times = array("Q", (ntp_add(self.start_time, offset) for offset in offsets))
            if len(self._chunks) == _CACHED_CHUNKS:
                del self._chunks[next(iter(self._chunks))]  # the oldest computed
            self._chunks[chunk] = times
        return times


def plan_send_times(request: RequestSession, sid: bytes) -> Generator[None, None, SendTimes]:
    """Plan a requested session's send times, yielding after every chunk (§3.5, §3.6, §5)."""
    times = SendTimes(request.start_time, request.slots, request.num_packets, sid)
    yield from times.plan()
    return times


def request_send_times(request: RequestSession, sid: bytes) -> SendTimes:
    """A requested session's send times, planned at once (§3.5, §3.6, §5)."""
    times = SendTimes(request.start_time, request.slots, request.num_packets, sid)
    for _ in times.plan():
        pass
    return times


def offsets_seconds(offsets: Sequence[int]) -> list[float]:
    """32.32 offsets as seconds, e.g. for a pacing plan."""
    return [ntp_to_duration(offset) for offset in offsets]


def slots_for(kind: Schedule, interval: float) -> list[Slot]:
    """The one slot of ``--schedule fixed|poisson -i interval`` (RFC 4656 §3.6 examples)."""
    type_ = SlotType.FIXED if kind is Schedule.FIXED else SlotType.EXPONENTIAL
    return [Slot.of_seconds(type_, interval)]
