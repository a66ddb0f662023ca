"""Per-packet records of a TWAMP session, the input of every metric and report.

Times are integers of nanoseconds since the Unix epoch, converted from the
packets' NTP timestamps (RFC 5357 §4.1.2, §4.2.1) or taken from the kernel.
"""

from abc import abstractmethod
from array import array
from collections.abc import Iterable, Iterator, MutableSequence, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, overload

from otwamp.wire.timestamp import ErrorEstimate, ns_to_ntp, ntp_to_ns


@dataclass(frozen=True, slots=True)
class Stamp:
    """One timestamp with its Error Estimate (RFC 4656 §4.1.2)."""

    ns: int
    sync: bool
    error: float  # seconds, from the Error Estimate's Scale and Multiplier


@dataclass(frozen=True, slots=True)
class Sent:
    """A test packet the Session-Sender sent.

    ``t1`` is the Timestamp in the packet (user space, just before the send
    call); ``t1_kernel_ns`` the kernel's transmit time of the packet
    (SO_TIMESTAMPING), when the kernel gave one: the T1 its replies use.
    """

    seq: int
    t1: Stamp
    t1_kernel_ns: int | None = None

    @property
    def recorded_t1(self) -> Stamp:
        """The T1 of the records: the kernel's transmit time when known, else ``t1``."""
        kernel, t1 = self.t1_kernel_ns, self.t1
        return t1 if kernel is None else Stamp(kernel, t1.sync, t1.error)

    @property
    def t1_source(self) -> str:
        """Where the T1 of the records comes from: "kernel" or "user"."""
        return "user" if self.t1_kernel_ns is None else "kernel"


@dataclass(frozen=True, slots=True)
class Reply:
    """A reflected packet received by the Session-Sender (RFC 5357 §4.2.1).

    t1: Sender Timestamp, t2: Receive Timestamp, t3: reflector Timestamp,
    t4: the sender's kernel receive time. ``sender_ttl`` is the TTL/Hop Limit
    of the sender's packet as the reflector saw it; ``ttl`` that of the reply
    as the sender saw it (None when the kernel did not report it).
    """

    sender_seq: int
    reflector_seq: int
    t1: Stamp
    t2: Stamp
    t3: Stamp
    t4: Stamp
    sender_ttl: int
    ttl: int | None


@dataclass(slots=True)
class Dropped:
    """Counts of received datagrams that were not accepted as replies.

    ``kernel_drops`` counts those the kernel dropped on the test socket
    before we could read them, e.g. with its receive queue full (Linux
    SO_RXQ_OVFL); they may include the session's own packets.
    """

    truncated: int = 0
    corrupt: int = 0  # Error Estimate Multiplier 0 (RFC 4656 §4.1.2)
    wrong_source: int = 0
    unknown_seq: int = 0
    auth_failures: int = 0
    kernel_drops: int = 0


# --- records in columns -----------------------------------------------------------
#
# A session of millions of packets keeps its records as ``array`` columns of
# machine integers (docs/DECISIONS.md R13 does the same for OWAMP schedules):
# a sent packet is its in-packet T1 (8 octets), the kernel's transmit time as
# an offset from it (4) and its Error Estimate's code (1); a reply is two
# sequence numbers (8), four times (32), the four Error Estimates' codes (4)
# and two TTLs (3): 60 octets a packet where objects took 1.6 KB; an OWAMP
# arrival is 24 (``Arrivals``). An Error Estimate, (S bit, seconds), is
# stored once per log and named by a code; a session has a handful. The logs
# are sequences of ``Sent``, ``Reply`` and ``Arrival`` (``Columns``):
# indexing and iteration build the objects one at a time, so every reader of
# records works unchanged, while the metrics read the columns themselves.
_NO_KERNEL = -(1 << 31)  # the kernel offset column's "no kernel time"
_KERNEL_RANGE = range(_NO_KERNEL + 1, 1 << 31)  # ns after (or before) the in-packet T1
NO_TTL = -1  # the TTL column's "unknown"


class Estimates:
    """The (S bit, seconds) pairs of a log's timestamps, each stored once, by code.

    A pair comes from a ``Stamp`` or, in OWAMP, from the Error Estimate a
    packet carried (RFC 4656 §4.1.2), which is kept as it came for
    Fetch-Session (§3.9).
    """

    __slots__ = ("_codes", "_wires", "pairs")

    def __init__(self) -> None:
        self.pairs: list[tuple[bool, float]] = []
        self._codes: dict[tuple[bool, float] | int, int] = {}  # by pair, or by wire estimate
        self._wires: dict[int, int] = {}  # code -> its wire Error Estimate

    def code(self, stamp: Stamp) -> int:
        """The code of ``stamp``'s Error Estimate, a new one if it is new."""
        key = (stamp.sync, stamp.error)
        code = self._codes.get(key)
        if code is None:
            code = self._codes[key] = len(self.pairs)
            self.pairs.append(key)
        return code

    def wire_code(self, wire: int) -> int:
        """The code of an Error Estimate as the wire carries it (RFC 4656 §4.1.2)."""
        code = self._codes.get(wire)
        if code is None:
            estimate = ErrorEstimate.from_int(wire)
            code = self._codes[wire] = len(self.pairs)
            self.pairs.append((estimate.sync, estimate.seconds))
            self._wires[code] = wire
        return code

    def wire(self, code: int) -> int:
        """The Error Estimate of ``code`` as the wire carries it (RFC 4656 §4.1.2)."""
        wire = self._wires.get(code)
        if wire is None:
            sync, error = self.pairs[code]
            wire = self._wires[code] = ErrorEstimate.from_seconds(error, sync).to_int()
        return wire

    def stamp(self, ns: int, code: int) -> Stamp:
        """The Stamp at ``ns`` with the Error Estimate of ``code``."""
        sync, error = self.pairs[code]
        return Stamp(ns, sync, error)


R = TypeVar("R")


class Columns(Sequence[R], Generic[R]):
    """A log of records kept as ``array`` columns; indexing builds a record.

    It equals any sequence of the same records (a list, in tests and the archive).
    """

    __slots__ = ()

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def _record(self, index: int) -> R:
        """The record at ``index``, built from the columns."""

    def __iter__(self) -> Iterator[R]:
        return (self._record(index) for index in range(len(self)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (Columns, list, tuple)):
            return False
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} of {len(self)}>"

    @overload
    def __getitem__(self, index: int) -> R: ...
    @overload
    def __getitem__(self, index: slice) -> list[R]: ...
    def __getitem__(self, index: int | slice) -> R | list[R]:
        if isinstance(index, slice):
            return [self._record(i) for i in range(*index.indices(len(self)))]
        return self._record(index)


def _room(codes: "array[int]", code: int) -> "array[int]":
    """``codes``, or a copy with wider items when ``code`` does not fit (more estimates)."""
    if code > 0xFF and codes.typecode == "B":
        codes = array("H", codes)
    if code > 0xFFFF and codes.typecode == "H":  # a hostile peer's every wire estimate
        codes = array("I", codes)
    return codes


class SentLog(Columns[Sent], MutableSequence[Sent]):
    """The packets a Session-Sender sent, as columns; ``Sent`` records by index.

    Sequence numbers are stored only once one is not its index (the senders
    number 0, 1, 2...).
    """

    __slots__ = ("_codes", "_estimates", "_kernel", "_seqs", "t1")

    def __init__(self, records: Iterable[Sent] = ()) -> None:
        self._estimates = Estimates()
        self.t1 = array("q")  # the in-packet T1, ns
        self._kernel = array("i")  # kernel transmit time - t1, ns, or _NO_KERNEL
        self._codes = array("B")
        self._seqs: array[int] | None = None
        self.extend(records)

    def __len__(self) -> int:
        return len(self.t1)

    @property
    def seqs(self) -> Sequence[int]:
        """The records' sequence numbers, by index."""
        return range(len(self)) if self._seqs is None else self._seqs

    def _record(self, index: int) -> Sent:
        t1 = self.t1[index]
        kernel = self._kernel[index]
        seq = index % len(self) if self._seqs is None else self._seqs[index]
        stamp = self._estimates.stamp(t1, self._codes[index])
        return Sent(seq, stamp, None if kernel == _NO_KERNEL else t1 + kernel)

    @overload
    def __setitem__(self, index: int, value: Sent) -> None: ...
    @overload
    def __setitem__(self, index: slice, value: Iterable[Sent]) -> None: ...
    def __setitem__(self, index: int | slice, value: Sent | Iterable[Sent]) -> None:
        if isinstance(index, slice) or not isinstance(value, Sent):
            raise TypeError("records are replaced one at a time")
        if value.seq != (self._seqs[index] if self._seqs is not None else index % len(self)):
            raise ValueError("a record keeps its sequence number")
        self.t1[index] = value.t1.ns
        self._kernel[index] = _offset(value)
        code = self._estimates.code(value.t1)
        self._codes = _room(self._codes, code)
        self._codes[index] = code

    def __delitem__(self, index: int | slice) -> None:
        raise TypeError("records are never deleted")

    def insert(self, index: int, value: Sent) -> None:
        """Append ``value``: records are kept in the order they were sent."""
        if index != len(self):
            raise TypeError("records are only appended")
        self.append(value)

    def append(self, value: Sent) -> None:
        """Add the record of the packet sent next."""
        if self._seqs is None and value.seq != len(self):
            self._seqs = array("I", range(len(self)))
        if self._seqs is not None:
            self._seqs.append(value.seq)
        code = self._estimates.code(value.t1)
        self._codes = _room(self._codes, code)
        self._codes.append(code)
        self.t1.append(value.t1.ns)
        self._kernel.append(_offset(value))

    def kernel_sent(self, index: int, ns: int) -> bool:
        """Record the kernel's transmit time of record ``index``; False if it is implausible."""
        offset = ns - self.t1[index]
        if offset not in _KERNEL_RANGE:
            return False
        self._kernel[index] = offset
        return True

    def kernel_ns(self, index: int) -> int | None:
        """The kernel's transmit time of record ``index``, if it has one."""
        kernel = self._kernel[index]
        return None if kernel == _NO_KERNEL else self.t1[index] + kernel

    @property
    def kernel_count(self) -> int:
        """Records that have the kernel's transmit time."""
        return len(self) - self._kernel.count(_NO_KERNEL)


class ReplyLog(Columns[Reply], MutableSequence[Reply]):
    """The replies a Session-Sender received, in arrival order, as columns."""

    __slots__ = ("_codes", "_estimates", "reflector_seq", "sender_seq", "sender_ttl", "t", "ttl")

    def __init__(self, records: Iterable[Reply] = ()) -> None:
        self._estimates = Estimates()
        self.sender_seq = array("I")
        self.reflector_seq = array("I")
        self.t = tuple(array("q") for _ in range(4))  # T1..T4, ns
        self._codes = array("I")  # the four Error Estimates' codes, 8 bits each (16 in "Q")
        self.sender_ttl = array("B")
        self.ttl = array("h")  # NO_TTL: unknown
        self.extend(records)

    def __len__(self) -> int:
        return len(self.sender_seq)

    def _record(self, index: int) -> Reply:
        codes, width = self._codes[index], 16 if self._codes.typecode == "Q" else 8
        mask = (1 << width) - 1
        stamp = self._estimates.stamp
        t1, t2, t3, t4 = (
            stamp(column[index], (codes >> (width * i)) & mask) for i, column in enumerate(self.t)
        )
        ttl = self.ttl[index]
        return Reply(
            self.sender_seq[index],
            self.reflector_seq[index],
            t1,
            t2,
            t3,
            t4,
            self.sender_ttl[index],
            None if ttl == NO_TTL else ttl,
        )

    @overload
    def __setitem__(self, index: int, value: Reply) -> None: ...
    @overload
    def __setitem__(self, index: slice, value: Iterable[Reply]) -> None: ...
    def __setitem__(self, index: int | slice, value: Reply | Iterable[Reply]) -> None:
        if isinstance(index, slice) or not isinstance(value, Reply):
            raise TypeError("records are replaced one at a time")
        self.sender_seq[index] = value.sender_seq
        self.reflector_seq[index] = value.reflector_seq
        for column, stamp in zip(self.t, (value.t1, value.t2, value.t3, value.t4), strict=True):
            column[index] = stamp.ns
        self._codes[index] = self._code(value)
        self.sender_ttl[index] = value.sender_ttl
        self.ttl[index] = NO_TTL if value.ttl is None else value.ttl

    def __delitem__(self, index: int | slice) -> None:
        raise TypeError("records are never deleted")

    def insert(self, index: int, value: Reply) -> None:
        """Append ``value``: replies are kept in arrival order."""
        if index != len(self):
            raise TypeError("records are only appended")
        self.append(value)

    def append(self, value: Reply) -> None:
        """Add the reply received next."""
        code = self._code(value)  # first: it may widen the codes column
        self._codes.append(code)
        self.sender_seq.append(value.sender_seq)
        self.reflector_seq.append(value.reflector_seq)
        t1, t2, t3, t4 = self.t
        t1.append(value.t1.ns)
        t2.append(value.t2.ns)
        t3.append(value.t3.ns)
        t4.append(value.t4.ns)
        self.sender_ttl.append(value.sender_ttl)
        self.ttl.append(NO_TTL if value.ttl is None else value.ttl)

    def estimate_pairs(
        self, indices: Iterable[int], first: int, second: int
    ) -> set[tuple[tuple[bool, float], tuple[bool, float]]]:
        """The distinct Error Estimates of T``first + 1`` and T``second + 1`` of some replies.

        As (S bit, seconds) pairs; a session has a handful, however many replies.
        """
        width = 16 if self._codes.typecode == "Q" else 8
        mask, pairs, codes = (1 << width) - 1, self._estimates.pairs, self._codes
        return {
            (pairs[(packed >> (width * first)) & mask], pairs[(packed >> (width * second)) & mask])
            for packed in {codes[index] for index in indices}
        }

    def _code(self, value: Reply) -> int:
        code = self._estimates.code
        codes = [code(value.t1), code(value.t2), code(value.t3), code(value.t4)]
        if max(codes) > 0xFF and self._codes.typecode == "I":  # more than 256 estimates
            self._codes = array("Q", (_widen(packed) for packed in self._codes))
        width = 16 if self._codes.typecode == "Q" else 8
        return codes[0] | codes[1] << width | codes[2] << 2 * width | codes[3] << 3 * width


def _offset(sent: Sent) -> int:
    kernel = sent.t1_kernel_ns
    offset = _NO_KERNEL if kernel is None else kernel - sent.t1.ns
    return offset if offset in _KERNEL_RANGE else _NO_KERNEL


def _widen(packed: int) -> int:
    """Four 8-bit codes as four 16-bit ones."""
    return sum(((packed >> (8 * i)) & 0xFF) << (16 * i) for i in range(4))


@dataclass(slots=True)
class TwampSessionRecord:
    """Everything one TWAMP-Test session produced, in arrival order."""

    sid: bytes
    mode: str
    key_source: str
    sent: MutableSequence[Sent] = field(default_factory=SentLog)
    replies: MutableSequence[Reply] = field(default_factory=ReplyLog)
    dropped: Dropped = field(default_factory=Dropped)
    completed: bool = True  # False when the session ended early (server vanished)
    initial_ttl: int = 255  # TTL the sender and reflector set on their packets

    def __post_init__(self) -> None:
        if not isinstance(self.sent, SentLog):  # e.g. a list, from the archive or a test
            self.sent = SentLog(self.sent)
        if not isinstance(self.replies, ReplyLog):
            self.replies = ReplyLog(self.replies)

    @property
    def sent_log(self) -> "SentLog":
        """``sent`` as the columns it is."""
        assert isinstance(self.sent, SentLog)
        return self.sent

    @property
    def reply_log(self) -> "ReplyLog":
        """``replies`` as the columns they are."""
        assert isinstance(self.replies, ReplyLog)
        return self.replies


@dataclass(frozen=True, slots=True)
class Arrival:
    """An OWAMP-Test packet as the Session-Receiver recorded it (RFC 4656 §3.8, §4.2).

    ``sent`` is the packet's Timestamp and Error Estimate (the sender's
    clock), ``received`` the receiver's kernel receive time with its own
    estimate, ``ttl`` the TTL/Hop Limit seen (None when unknown).
    """

    seq: int
    sent: Stamp
    received: Stamp
    ttl: int | None


class Arrivals(Columns[Arrival]):
    """The packets an OWAMP Session-Receiver accepted, in arrival order, as columns.

    The send time is kept as the packet carried it, a 32.32 Timestamp and
    its Error Estimate (RFC 4656 §4.1.2), so that Fetch-Session gives them
    back unchanged (§3.9); the receive time as the receiver's clock gave it,
    in ns. A packet is 24 octets: its sequence number (4), the two times
    (16), the two Error Estimates' codes in ``estimates`` (2) and its TTL (2).
    """

    __slots__ = ("_received_codes", "_sent_codes", "estimates", "received", "sent", "seq", "ttl")

    def __init__(self, records: Iterable[Arrival] = ()) -> None:
        self.estimates = Estimates()
        self.seq = array("I")
        self.sent = array("Q")  # the packet's Timestamp, 32.32 (RFC 4656 §4.1.2)
        self.received = array("q")  # ns
        self._sent_codes = array("B")
        self._received_codes = array("B")
        self.ttl = array("h")  # NO_TTL: unknown
        for arrival in records:
            self.append(arrival)

    def __len__(self) -> int:
        return len(self.seq)

    def _record(self, index: int) -> Arrival:
        stamp, ttl = self.estimates.stamp, self.ttl[index]
        return Arrival(
            self.seq[index],
            stamp(ntp_to_ns(self.sent[index]), self._sent_codes[index]),
            stamp(self.received[index], self._received_codes[index]),
            None if ttl == NO_TTL else ttl,
        )

    def add(
        self,
        seq: int,
        sent: int,
        sent_code: int,
        received: int,
        received_code: int,
        ttl: int | None,
    ) -> None:
        """Add a packet sent at ``sent`` (32.32), received at ``received`` (ns).

        The codes are those of the times' Error Estimates in ``estimates``.
        """
        self._sent_codes = _room(self._sent_codes, sent_code)
        self._received_codes = _room(self._received_codes, received_code)
        self._sent_codes.append(sent_code)
        self._received_codes.append(received_code)
        self.seq.append(seq)
        self.sent.append(sent)
        self.received.append(received)
        self.ttl.append(NO_TTL if ttl is None else ttl)

    def append(self, arrival: Arrival) -> None:
        """Add the record of the packet received next."""
        code = self.estimates.code
        self.add(
            arrival.seq,
            ns_to_ntp(arrival.sent.ns),
            code(arrival.sent),
            arrival.received.ns,
            code(arrival.received),
            arrival.ttl,
        )

    def errors(self, index: int) -> tuple[int, int]:
        """The Error Estimates of packet ``index``'s send and receive times, as on the wire."""
        wire = self.estimates.wire
        return wire(self._sent_codes[index]), wire(self._received_codes[index])

    def estimate_pairs(
        self, indices: Iterable[int]
    ) -> set[tuple[tuple[bool, float], tuple[bool, float]]]:
        """The distinct (S bit, seconds) Error Estimates of some packets' send and receive times."""
        pairs, sent, received = self.estimates.pairs, self._sent_codes, self._received_codes
        return {(pairs[a], pairs[b]) for a, b in {(sent[i], received[i]) for i in indices}}


@dataclass(slots=True)
class OwampSessionRecord:
    """Everything one OWAMP-Test session produced at its receiver, in arrival order.

    ``direction`` is "to" (client sends, server receives) or "from" (server
    sends, client receives). ``count`` is the Number of Packets requested;
    ``next_seqno`` and ``skipped`` come from the sender's Stop-Sessions
    (RFC 4656 §3.8): packets at or above Next Seqno or inside a skip range
    were never sent and are not lost. ``discarded_from`` is where the
    receiver's §3.8 discard began: records of sent packets from there on
    were dropped because they were due within Timeout of the stop, so they
    are neither received nor lost (None: nothing discarded). ``incomplete``
    says why the results may be incomplete, e.g. a non-zero Accept in
    Stop-Sessions (§3.8), or is None. ``arrivals`` keeps the discarded
    packets' records: the reports leave them out.
    """

    sid: bytes
    direction: str
    mode: str
    key_source: str
    count: int
    arrivals: Arrivals = field(default_factory=Arrivals)
    next_seqno: int | None = None
    skipped: list[tuple[int, int]] = field(default_factory=list)
    dropped: Dropped = field(default_factory=Dropped)
    completed: bool = True
    initial_ttl: int = 255
    discarded_from: int | None = None
    incomplete: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.arrivals, Arrivals):  # e.g. a list, from a test
            self.arrivals = Arrivals(self.arrivals)
