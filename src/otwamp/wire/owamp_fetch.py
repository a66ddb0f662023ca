"""OWAMP Fetch-Session, Fetch-Ack and the fetched session data (RFC 4656 §3.9).

After a Fetch-Ack with Accept 0 the server sends the session data in four
parts, each followed by its own HMAC: the Request-Session reproduction's
fixed part and its slots (RFC 4656 §3.5), the Skip Ranges padded to whole
blocks, and the 25-octet packet records padded to whole blocks. Like the
other codecs these encode and decode bodies without the HMAC blocks; the
control channel seals and opens each part.
"""

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from otwamp.errors import ProtocolError
from otwamp.wire._fields import check_command, need_length
from otwamp.wire._owamp import SECTION_FETCH, UINT32, check_sid, check_uint, padded
from otwamp.wire.owamp_control import RequestSession
from otwamp.wire.owamp_stop import (
    SkipRange,
    decode_skip_ranges,
    encode_skip_ranges,
    ranges_in_order,
)
from otwamp.wire.registry import OwampCommand


@dataclass(frozen=True, slots=True)
class FetchSession:
    """Fetch-Session (RFC 4656 §3.9): the records of one session, Begin Seq to End Seq."""

    sid: bytes
    begin_seq: int = 0
    end_seq: int = UINT32

    SECTION = SECTION_FETCH
    BODY = 32
    _S = struct.Struct("!B7xII16s")

    def __post_init__(self) -> None:
        check_sid(self.sid)
        check_uint(self.begin_seq, UINT32, "Begin Seq")
        check_uint(self.end_seq, UINT32, "End Seq")

    @property
    def complete(self) -> bool:
        """Whether the complete session is asked for: Begin 0, End all ones (RFC 4656 §3.9)."""
        return self.begin_seq == 0 and self.end_seq == UINT32

    def encode(self) -> bytes:
        """Encode the 32-octet body."""
        return self._S.pack(OwampCommand.FETCH_SESSION, self.begin_seq, self.end_seq, self.sid)

    @classmethod
    def decode(cls, data: bytes) -> "FetchSession":
        """Decode the 32-octet body."""
        need_length(data, cls.BODY, "Fetch-Session", cls.SECTION)
        check_command(data, OwampCommand.FETCH_SESSION, "Fetch-Session", cls.SECTION)
        _, begin, end, sid = cls._S.unpack(data)
        return cls(sid, begin, end)


@dataclass(frozen=True, slots=True)
class FetchAck:
    """Fetch-Ack (RFC 4656 §3.9): Accept, Finished, Next Seqno and the counts that follow.

    With a non-zero Accept every other field is zero when sent and ignored
    when received (RFC 4656 §3.9); Finished is non-zero when the session has
    terminated, and an unfinished session has Next Seqno and Number of Skip
    Ranges zero.
    """

    accept: int
    finished: bool = False
    next_seqno: int = 0
    num_skip_ranges: int = 0
    num_records: int = 0

    SECTION = SECTION_FETCH
    BODY = 16
    _S = struct.Struct("!BB2xIII")

    def __post_init__(self) -> None:
        for value in (self.next_seqno, self.num_skip_ranges, self.num_records):
            if not 0 <= value <= UINT32:
                raise ValueError("Next Seqno and the counts are 32-bit")
        rest = (self.finished, self.next_seqno, self.num_skip_ranges, self.num_records)
        if self.accept and any(rest):
            raise ValueError("a refusing Fetch-Ack has every other field zero")
        if not self.finished and (self.next_seqno or self.num_skip_ranges):
            raise ValueError("an unfinished session has Next Seqno and Skip Ranges zero")

    def encode(self) -> bytes:
        """Encode the 16-octet body."""
        return self._S.pack(
            self.accept,
            int(self.finished),
            self.next_seqno,
            self.num_skip_ranges,
            self.num_records,
        )

    @classmethod
    def decode(cls, data: bytes) -> "FetchAck":
        """Decode the 16-octet body (RFC 4656 §3.9)."""
        need_length(data, cls.BODY, "Fetch-Ack", cls.SECTION)
        accept, finished, next_seqno, skips, records = cls._S.unpack(data)
        if accept:
            return cls(accept)  # the client MUST ignore the remaining fields
        if not finished:
            # The server MUST zero these; a count that is not zero would frame data.
            if skips:
                raise ProtocolError(
                    f"{skips} Skip Ranges for an unfinished session",
                    field="Number of Skip Ranges",
                    section=cls.SECTION,
                )
            next_seqno = 0  # only meaningful once the session has terminated
        return cls(accept, finished != 0, next_seqno, skips, records)


@dataclass(frozen=True, slots=True)
class PacketRecord:
    """One fetched packet record, 25 octets (RFC 4656 §3.9, its figure's field order).

    Error estimates and timestamps are the raw 16- and 64-bit wire values; a
    lost packet has a Receive Timestamp of all zeros (RFC 4656 §3.9).
    """

    seq: int
    send_error: int
    receive_error: int
    send_timestamp: int
    receive_timestamp: int
    ttl: int

    SIZE = 25
    _S = struct.Struct("!IHHQQB")

    @property
    def lost(self) -> bool:
        """Whether this records a lost packet: Receive Timestamp all zero (RFC 4656 §3.9)."""
        return self.receive_timestamp == 0

    def encode(self) -> bytes:
        """Encode the 25 octets."""
        return self._S.pack(
            self.seq,
            self.send_error,
            self.receive_error,
            self.send_timestamp,
            self.receive_timestamp,
            self.ttl,
        )

    @classmethod
    def decode(cls, data: bytes) -> "PacketRecord":
        """Decode 25 octets."""
        need_length(data, cls.SIZE, "Packet Record", SECTION_FETCH)
        return cls(*cls._S.unpack(data))


def skip_ranges_size(count: int) -> int:
    """Octets of ``count`` Skip Ranges, padded to whole blocks (RFC 4656 §3.9)."""
    return padded(SkipRange.SIZE * count)


def records_size(count: int) -> int:
    """Octets of ``count`` packet records, padded to whole blocks (RFC 4656 §3.9)."""
    return padded(PacketRecord.SIZE * count)


def encode_skip_range_part(ranges: Sequence[SkipRange]) -> bytes:
    """The Skip Ranges part, zero-padded to whole blocks (RFC 4656 §3.9)."""
    return encode_skip_ranges(ranges).ljust(skip_ranges_size(len(ranges)), b"\0")


def decode_skip_range_part(data: bytes, count: int) -> tuple[SkipRange, ...]:
    """The Skip Ranges part with ``count`` ranges; padding ignored (RFC 4656 §3.9)."""
    need_length(data, skip_ranges_size(count), "Skip Ranges", SECTION_FETCH)
    return decode_skip_ranges(data, count, SECTION_FETCH)


def encode_record_part(records: Sequence[PacketRecord]) -> bytes:
    """The packet records part, zero-padded to whole blocks (RFC 4656 §3.9)."""
    return b"".join(r.encode() for r in records).ljust(records_size(len(records)), b"\0")


def decode_record_part(data: bytes, count: int) -> "PacketRecords":
    """The packet records part with ``count`` records; padding ignored (RFC 4656 §3.9)."""
    return PacketRecords(data, count)


PacketFields = tuple[int, int, int, int, int, int]  # a PacketRecord's fields, in its order


class PacketRecords(Sequence[PacketRecord]):
    """The ``count`` packet records of a fetched records part, decoded on demand.

    The part's octets are the only copy kept: ``fields`` gives each record's
    six fields in turn (RFC 4656 §3.9: Seq Number, Send Error Estimate,
    Receive Error Estimate, Send Timestamp, Receive Timestamp, TTL) with no
    object a record, so millions of them go straight into columns; indexing
    and iteration build ``PacketRecord`` objects one at a time.
    """

    __slots__ = ("_count", "_data")

    def __init__(self, data: bytes, count: int) -> None:
        need_length(data, records_size(count), "Packet Records", SECTION_FETCH)
        self._data = memoryview(data)[: PacketRecord.SIZE * count]  # without the padding
        self._count = count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> PacketRecord: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[PacketRecord, ...]: ...
    def __getitem__(self, index: int | slice) -> PacketRecord | tuple[PacketRecord, ...]:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._count)))
        if not -self._count <= index < self._count:
            raise IndexError("packet record index out of range")
        start = PacketRecord.SIZE * (index % self._count)
        return PacketRecord(*PacketRecord._S.unpack_from(self._data, start))

    def __iter__(self) -> Iterator[PacketRecord]:
        return (PacketRecord(*fields) for fields in self.fields())

    def fields(self) -> Iterator[PacketFields]:
        """Each record's fields, in the order of ``PacketRecord``."""
        return PacketRecord._S.iter_unpack(self._data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (PacketRecords, tuple, list)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<PacketRecords of {self._count}>"


@dataclass(frozen=True, slots=True)
class FetchedSession:
    """The session data after an accepting Fetch-Ack (RFC 4656 §3.9).

    ``request`` is the reproduction of the Request-Session, with the ports
    actually used (perfSONAR also fills in the SID).
    """

    request: RequestSession
    skip_ranges: tuple[SkipRange, ...] = ()
    records: Sequence[PacketRecord] = ()  # decoded: ``PacketRecords``

    def __post_init__(self) -> None:
        if not ranges_in_order(self.skip_ranges):
            raise ValueError("Skip Ranges must be in order and must not overlap")

    def encode_parts(self) -> tuple[bytes, bytes, bytes, bytes]:
        """The four parts the channel seals, each followed by its own HMAC (RFC 4656 §3.9)."""
        fixed, slots = self.request.encode_parts()
        return (
            fixed,
            slots,
            encode_skip_range_part(self.skip_ranges),
            encode_record_part(self.records),
        )

    @classmethod
    def decode_parts(
        cls, fixed: bytes, slots: bytes, skip_ranges: bytes, records: bytes, ack: FetchAck
    ) -> "FetchedSession":
        """Decode the four parts (without HMACs), with the counts ``ack`` announced."""
        if ack.accept:
            raise ValueError("no session data follows a refusing Fetch-Ack")
        return cls(
            RequestSession.decode_parts(fixed, slots),
            decode_skip_range_part(skip_ranges, ack.num_skip_ranges),
            decode_record_part(records, ack.num_records),
        )
