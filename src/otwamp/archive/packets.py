"""Per-packet records as one compact blob per session: columns, deltas, zlib.

One row per packet would cost the archive a row header and index entry per
packet (24+ octets of overhead each in PostgreSQL, before the values) and
make retention delete millions of rows; per-packet records are read a whole
session at a time, never queried across sessions. So a session's records are
one value: each field a column of 64-bit integers or floats, increasing
times delta-encoded against the previous packet and a packet's later stamps
stored as offsets from its first, all compressed with zlib. Sequence numbers
and times then shrink to a few bits each (measured in docs/ARCHIVE.md).

Layout: magic ``OTR``, format octet, kind octet (1 TWAMP, 2 OWAMP), then
zlib of: a column count (u32) and per column a type octet (``q`` int64 or
``d`` float64), a length (u32) and its values, little-endian. Format 2 adds
to TWAMP the kernel's transmit time of each test packet, as an offset from
its in-packet T1 (issue 15); format 1 blobs read as having none.
"""

import struct
import zlib
from array import array
from collections.abc import Iterable, Sequence
from itertools import accumulate, pairwise
from typing import Any, TypeAlias

from otwamp.errors import ProtocolError
from otwamp.results.records import (
    Arrival,
    Arrivals,
    Dropped,
    OwampSessionRecord,
    Reply,
    Sent,
    Stamp,
    TwampSessionRecord,
)

MAGIC = b"OTR"
FORMAT = 2
FORMATS = (1, 2)  # what decode reads
ABSENT = -(1 << 63)  # no kernel transmit time (an offset from T1 is never this)
TWAMP_KIND, OWAMP_KIND = 1, 2
NONE = -1  # an absent TTL, Next Seqno or discard start (all non-negative when present)
MAX_BODY = 1 << 28  # octets a blob may decompress to: a small blob cannot claim gigabytes
_COLUMN_HEAD = struct.Struct("<cI")
_COUNT = struct.Struct("<I")

Column: TypeAlias = "array[Any]"  # of "q" (int64) or "d" (float64)


class RecordsFormatError(ProtocolError):
    """A records blob that is not what ``encode`` writes."""


# --- columns ----------------------------------------------------------------


def _ints(values: Iterable[int]) -> Column:
    return array("q", values)


def _floats(values: Iterable[float]) -> Column:
    return array("d", values)


def _deltas(values: Sequence[int]) -> Column:
    """Each value minus its predecessor (the first as is)."""
    return _ints([values[0], *(b - a for a, b in pairwise(values))] if values else [])


def _undelta(column: Sequence[int]) -> list[int]:
    return list(accumulate(column))


def _pack(kind: int, columns: Sequence[Column]) -> bytes:
    body = [_COUNT.pack(len(columns))]
    for column in columns:
        body += [_COLUMN_HEAD.pack(column.typecode.encode(), len(column)), column.tobytes()]
    return MAGIC + bytes((FORMAT, kind)) + zlib.compress(b"".join(body), 6)


def _unpack(blob: bytes) -> tuple[int, int, list[Column]]:
    """The format, kind and columns of a blob; RecordsFormatError for anything else."""
    if len(blob) < 5 or blob[:3] != MAGIC or blob[3] not in FORMATS or blob[4] not in (1, 2):
        raise RecordsFormatError("not a records blob of format 1 or 2", field="records")
    try:
        inflate = zlib.decompressobj()
        body = inflate.decompress(blob[5:], MAX_BODY)
    except zlib.error as exc:
        raise RecordsFormatError(f"bad compression: {exc}", field="records") from None
    if inflate.unconsumed_tail or not inflate.eof:
        raise RecordsFormatError("compressed body too large or cut short", field="records")
    try:
        (count,) = _COUNT.unpack_from(body)
        offset, columns = _COUNT.size, []
        for _ in range(count):
            code, length = _COLUMN_HEAD.unpack_from(body, offset)
            offset += _COLUMN_HEAD.size
            if code not in (b"q", b"d"):
                raise RecordsFormatError("bad column header", field="records")
            column = array(code.decode())
            end = offset + length * column.itemsize
            if end > len(body):
                raise RecordsFormatError("column runs past the end", field="records")
            column.frombytes(body[offset:end])
            columns.append(column)
            offset = end
    except struct.error:
        raise RecordsFormatError("truncated", field="records") from None
    if offset != len(body):
        raise RecordsFormatError("trailing octets", field="records")
    return blob[3], blob[4], columns


def _take(columns: list[Column], codes: str, lengths: Sequence[int]) -> list[Column]:
    """Check that the columns have the type codes and lengths the kind requires."""
    if len(columns) != len(codes) or len(lengths) != len(codes):
        raise RecordsFormatError("wrong number of columns", field="records")
    for column, code, length in zip(columns, codes, lengths, strict=True):
        if column.typecode != code or len(column) != length:
            raise RecordsFormatError("column of the wrong type or length", field="records")
    return columns


def _stamp_columns(stamps: Sequence[Stamp], base: Sequence[int] | None) -> list[Column]:
    """ns (delta-encoded, or offsets from ``base``), sync, error of a series of stamps."""
    ns = [stamp.ns for stamp in stamps]
    return [
        _deltas(ns) if base is None else _ints(t - b for t, b in zip(ns, base, strict=True)),
        _ints(stamp.sync for stamp in stamps),
        _floats(stamp.error for stamp in stamps),
    ]


def _stamps(ns: Sequence[int], sync: Sequence[int], error: Sequence[float]) -> list[Stamp]:
    return [Stamp(t, bool(s), e) for t, s, e in zip(ns, sync, error, strict=True)]


def _optional(value: int | None) -> int:
    return NONE if value is None else value


def _present(value: int) -> int | None:
    return None if value == NONE else value


def _dropped(dropped: Dropped) -> list[int]:
    return [
        dropped.truncated,
        dropped.corrupt,
        dropped.wrong_source,
        dropped.unknown_seq,
        dropped.auth_failures,
        dropped.kernel_drops,
    ]


# --- TWAMP --------------------------------------------------------------------

# meta, sent: seq t1(3); replies: sender_seq reflector_seq t1..t4(3 each) sender_ttl ttl;
# format 2: sent t1_kernel (offset from t1, or ABSENT)
_TWAMP_CODES = "q" + "qqqd" + "qq" + "qqd" * 4 + "qq"


def _encode_twamp(record: TwampSessionRecord) -> bytes:
    replies = record.replies
    t1 = [reply.t1.ns for reply in replies]
    t2 = [reply.t2.ns for reply in replies]
    t3 = [reply.t3.ns for reply in replies]
    meta = [len(record.sent), len(replies), int(record.completed), record.initial_ttl]
    return _pack(
        TWAMP_KIND,
        [
            _ints(meta + _dropped(record.dropped)),
            _deltas([sent.seq for sent in record.sent]),
            *_stamp_columns([sent.t1 for sent in record.sent], None),
            _deltas([reply.sender_seq for reply in replies]),
            _deltas([reply.reflector_seq for reply in replies]),
            *_stamp_columns([reply.t1 for reply in replies], None),
            *_stamp_columns([reply.t2 for reply in replies], t1),
            *_stamp_columns([reply.t3 for reply in replies], t2),
            *_stamp_columns([reply.t4 for reply in replies], t3),
            _ints(reply.sender_ttl for reply in replies),
            _ints(_optional(reply.ttl) for reply in replies),
            _ints(
                ABSENT if sent.t1_kernel_ns is None else sent.t1_kernel_ns - sent.t1.ns
                for sent in record.sent
            ),
        ],
    )


def _decode_twamp(
    columns: list[Column], sid: bytes, mode: str, key_source: str, form: int
) -> TwampSessionRecord:
    if not columns or len(columns[0]) != 10:
        raise RecordsFormatError("bad TWAMP header", field="records")
    n_sent, n_replies, completed, initial_ttl, *drops = columns[0]
    kernel = form >= 2  # the kernel transmit times' column
    lengths = [10, *[n_sent] * 4, *[n_replies] * 16, *[n_sent] * kernel]
    cols = _take(columns, _TWAMP_CODES + "q" * kernel, lengths)
    sent_t1 = _stamps(_undelta(cols[2]), cols[3], cols[4])
    offsets = cols[21] if kernel else [ABSENT] * n_sent
    kernel_ns = [None if o == ABSENT else t.ns + o for t, o in zip(sent_t1, offsets, strict=True)]
    seqs = _undelta(cols[1])
    t1 = _undelta(cols[7])
    t2 = [a + b for a, b in zip(t1, cols[10], strict=True)]
    t3 = [a + b for a, b in zip(t2, cols[13], strict=True)]
    t4 = [a + b for a, b in zip(t3, cols[16], strict=True)]
    stamps = [
        _stamps(ns, cols[8 + 3 * i], cols[9 + 3 * i]) for i, ns in enumerate((t1, t2, t3, t4))
    ]
    replies = [
        Reply(s, r, a, b, c, d, sttl, _present(ttl))
        for s, r, a, b, c, d, sttl, ttl in zip(
            _undelta(cols[5]), _undelta(cols[6]), *stamps, cols[19], cols[20], strict=True
        )
    ]
    return TwampSessionRecord(
        sid=sid,
        mode=mode,
        key_source=key_source,
        sent=[Sent(*fields) for fields in zip(seqs, sent_t1, kernel_ns, strict=True)],
        replies=replies,
        dropped=Dropped(*drops),
        completed=bool(completed),
        initial_ttl=initial_ttl,
    )


# --- OWAMP --------------------------------------------------------------------

# meta, skip ranges: first last; arrivals: seq sent(3) received(3) ttl
_OWAMP_CODES = "q" + "qq" + "q" + "qqd" * 2 + "q"


def _encode_owamp(record: OwampSessionRecord) -> bytes:
    arrivals = record.arrivals
    sent = [arrival.sent.ns for arrival in arrivals]
    meta = [
        len(record.skipped),
        len(arrivals),
        record.count,
        _optional(record.next_seqno),
        _optional(record.discarded_from),
        int(record.completed),
        record.initial_ttl,
    ]
    return _pack(
        OWAMP_KIND,
        [
            _ints(meta + _dropped(record.dropped)),
            _ints(first for first, _ in record.skipped),
            _ints(last for _, last in record.skipped),
            _deltas([arrival.seq for arrival in arrivals]),
            *_stamp_columns([arrival.sent for arrival in arrivals], None),
            *_stamp_columns([arrival.received for arrival in arrivals], sent),
            _ints(_optional(arrival.ttl) for arrival in arrivals),
        ],
    )


def _decode_owamp(
    columns: list[Column], sid: bytes, direction: str, mode: str, key_source: str
) -> OwampSessionRecord:
    if not columns or len(columns[0]) != 13:
        raise RecordsFormatError("bad OWAMP header", field="records")
    n_skipped, n_arrivals, count, next_seqno, discarded_from, completed, initial_ttl, *drops = (
        columns[0]
    )
    cols = _take(columns, _OWAMP_CODES, [13, n_skipped, n_skipped, *[n_arrivals] * 8])
    sent_ns = _undelta(cols[4])
    received_ns = [a + b for a, b in zip(sent_ns, cols[7], strict=True)]
    arrivals = Arrivals(
        Arrival(seq, sent, received, _present(ttl))
        for seq, sent, received, ttl in zip(
            _undelta(cols[3]),
            _stamps(sent_ns, cols[5], cols[6]),
            _stamps(received_ns, cols[8], cols[9]),
            cols[10],
            strict=True,
        )
    )
    return OwampSessionRecord(
        sid=sid,
        direction=direction,
        mode=mode,
        key_source=key_source,
        count=count,
        arrivals=arrivals,
        next_seqno=_present(next_seqno),
        skipped=list(zip(cols[1], cols[2], strict=True)),
        dropped=Dropped(*drops),
        completed=bool(completed),
        initial_ttl=initial_ttl,
        discarded_from=_present(discarded_from),
    )


# --- both ---------------------------------------------------------------------

SessionRecord = TwampSessionRecord | OwampSessionRecord


def encode(record: SessionRecord) -> bytes:
    """A session's per-packet records as a blob of format FORMAT."""
    if isinstance(record, TwampSessionRecord):
        return _encode_twamp(record)
    return _encode_owamp(record)


def decode(
    blob: bytes, *, sid: bytes, mode: str, key_source: str, direction: str | None
) -> SessionRecord:
    """The records of a blob; the session's row gives what the blob leaves out.

    ``incomplete`` (OWAMP) is in the row's summary, not here.
    """
    form, kind, columns = _unpack(blob)
    if kind == TWAMP_KIND:
        return _decode_twamp(columns, sid, mode, key_source, form)
    return _decode_owamp(columns, sid, direction or "", mode, key_source)
