"""OWAMP Stop-Sessions (RFC 4656 §3.8): session descriptions with their Skip Ranges.

The body is the 16-octet header and one description per send session, each
padded to whole blocks; one HMAC follows. ``StopSessions.body_size`` frames
the body block by block for the control channel. MBZ fields and padding are
sent as zero and ignored on receipt (RFC 4656 §3.1).
"""

import itertools
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from otwamp.errors import ProtocolError
from otwamp.wire._fields import check_command, need_at_least, need_length
from otwamp.wire._owamp import (
    SECTION_STOP,
    UINT32,
    check_sid,
    check_uint,
    pad,
    padded,
)
from otwamp.wire.registry import OwampCommand


@dataclass(frozen=True, slots=True)
class SkipRange:
    """A range of sequence numbers that were never sent (RFC 4656 §3.8)."""

    first: int
    last: int

    SIZE = 8
    _S = struct.Struct("!II")

    def __post_init__(self) -> None:
        check_uint(self.first, UINT32, "First Seqno Skipped")
        check_uint(self.last, UINT32, "Last Seqno Skipped")
        if self.first > self.last:
            raise ValueError("First Seqno Skipped is after Last Seqno Skipped")

    def encode(self) -> bytes:
        """Encode the 8 octets (RFC 4656 §3.8)."""
        return self._S.pack(self.first, self.last)


def ranges_in_order(ranges: Sequence[SkipRange]) -> bool:
    """Whether Skip Ranges are sorted and do not overlap (RFC 4656 §3.8, §3.9)."""
    return all(a.last < b.first for a, b in itertools.pairwise(ranges))


def encode_skip_ranges(ranges: Sequence[SkipRange]) -> bytes:
    """Skip Range descriptions, without padding (RFC 4656 §3.8, §3.9)."""
    return b"".join(r.encode() for r in ranges)


def decode_skip_ranges(data: bytes, count: int, section: str) -> tuple[SkipRange, ...]:
    """``count`` Skip Ranges from the start of ``data``, checked to be ranges and in order."""
    need_at_least(data, SkipRange.SIZE * count, "Skip Ranges", section)
    out: list[SkipRange] = []
    for i in range(count):
        first, last = SkipRange._S.unpack_from(data, i * SkipRange.SIZE)
        if first > last:
            raise ProtocolError(
                f"range {first}..{last} is reversed", field="Skip Ranges", section=section
            )
        if out and first <= out[-1].last:
            raise ProtocolError(
                "Skip Ranges overlap or are out of order", field="Skip Ranges", section=section
            )
        out.append(SkipRange(first, last))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A Stop-Sessions session description: SID, Next Seqno, Skip Ranges (RFC 4656 §3.8)."""

    sid: bytes
    next_seqno: int
    skip_ranges: tuple[SkipRange, ...] = ()

    HEAD = 24  # SID, Next Seqno, Number of Skip Ranges
    _S = struct.Struct("!16sII")

    def __post_init__(self) -> None:
        check_sid(self.sid)
        check_uint(self.next_seqno, UINT32, "Next Seqno")
        if not ranges_in_order(self.skip_ranges):
            raise ValueError("Skip Ranges must be in order and must not overlap")

    @property
    def size(self) -> int:
        """Octets, padded to whole blocks (RFC 4656 §3.8)."""
        return self.size_for(len(self.skip_ranges))

    @classmethod
    def size_for(cls, num_skip_ranges: int) -> int:
        """Octets of a description with ``num_skip_ranges`` ranges, padded (RFC 4656 §3.8)."""
        return padded(cls.HEAD + SkipRange.SIZE * num_skip_ranges)

    def encode(self) -> bytes:
        """Encode, zero-padded to a whole block (RFC 4656 §3.8)."""
        head = self._S.pack(self.sid, self.next_seqno, len(self.skip_ranges))
        return pad(head + encode_skip_ranges(self.skip_ranges))

    @classmethod
    def decode(cls, data: bytes) -> "SessionDescription":
        """Decode one padded description; the padding is ignored (RFC 4656 §3.8)."""
        need_at_least(data, padded(cls.HEAD), "Session Description", SECTION_STOP)
        sid, next_seqno, count = cls._S.unpack_from(data)
        need_length(data, cls.size_for(count), "Session Description", SECTION_STOP)
        return cls(sid, next_seqno, decode_skip_ranges(data[cls.HEAD :], count, SECTION_STOP))


@dataclass(frozen=True, slots=True)
class StopSessions:
    """OWAMP Stop-Sessions (RFC 4656 §3.8): Accept and one description per send session."""

    accept: int
    sessions: tuple[SessionDescription, ...] = ()

    SECTION = SECTION_STOP
    HEADER = 16
    _S = struct.Struct("!BB2xI8x")

    def encode(self) -> bytes:
        """Encode the body: header and descriptions, before the one HMAC."""
        head = self._S.pack(OwampCommand.STOP_SESSIONS, self.accept, len(self.sessions))
        return head + b"".join(s.encode() for s in self.sessions)

    @classmethod
    def number_of_sessions(cls, header: bytes) -> int:
        """Number of Sessions of a received 16-octet header."""
        need_length(header, cls.HEADER, "Stop-Sessions", cls.SECTION)
        check_command(header, OwampCommand.STOP_SESSIONS, "Stop-Sessions", cls.SECTION)
        count: int = cls._S.unpack(header)[2]
        return count

    @classmethod
    def body_size(cls, prefix: bytes) -> int:
        """Body octets as far as ``prefix`` tells; read that many and ask again until equal.

        Always whole blocks, so the channel can decrypt what it reads.
        """
        if len(prefix) < cls.HEADER:
            return cls.HEADER
        heads = list(cls.descriptions_read(prefix))
        end = cls.HEADER + sum(SessionDescription.size_for(skips) for _, skips in heads)
        if len(heads) < cls.number_of_sessions(prefix[: cls.HEADER]):
            return end + padded(SessionDescription.HEAD)  # the next description's head
        return end

    @classmethod
    def descriptions_read(cls, prefix: bytes) -> Iterator[tuple[bytes, int]]:
        """SID and Number of Skip Ranges of each description whose head ``prefix`` holds."""
        offset = cls.HEADER
        for _ in range(cls.number_of_sessions(prefix[: cls.HEADER])):
            if len(prefix) < offset + padded(SessionDescription.HEAD):
                return
            sid, _next_seqno, skips = SessionDescription._S.unpack_from(prefix, offset)
            yield sid, skips
            offset += SessionDescription.size_for(skips)

    @classmethod
    def decode(cls, data: bytes) -> "StopSessions":
        """Decode the body (everything before the HMAC)."""
        need_at_least(data, cls.HEADER, "Stop-Sessions", cls.SECTION)
        _, accept, count = cls._S.unpack_from(data)
        need_length(data, cls.body_size(data), "Stop-Sessions", cls.SECTION)
        sessions: list[SessionDescription] = []
        offset = cls.HEADER
        for _ in range(count):
            skips: int = struct.unpack_from("!I", data, offset + 20)[0]
            size = SessionDescription.size_for(skips)
            sessions.append(SessionDescription.decode(data[offset : offset + size]))
            offset += size
        return cls(accept, tuple(sessions))
