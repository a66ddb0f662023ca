"""The OWAMP-Test receiver, without sockets or clocks (RFC 4656 §4.2, §3.8, §3.9).

``on_datagram`` checks a received packet and records it in arrival order,
duplicates included; ``finish`` applies the sender's Stop-Sessions and the
loss timeout; ``fetch_records`` gives the packet records of Fetch-Session,
lost packets last. Memory is bounded by the session's Number of Packets:
the records are the ``Arrivals`` columns, 24 octets a packet.
Times given to the receiver are in the 32.32 timestamp format of the wire,
except the kernel's receive time, a ``Stamp``; they are compared modulo
2**64, so a session may span the 2036 era wrap (RFC 5905 §6).
"""

import itertools
import re
from bisect import bisect_right
from collections.abc import Generator, Iterable, Iterator, Sequence
from functools import lru_cache

from otwamp.errors import ProtocolError
from otwamp.results.records import NO_TTL, OwampSessionRecord, Stamp
from otwamp.session.protection import SessionProtection, open_packet
from otwamp.wire.owamp_fetch import PacketRecord
from otwamp.wire.owamp_stop import SkipRange, ranges_in_order
from otwamp.wire.owamp_test import layout_for
from otwamp.wire.timestamp import ErrorEstimate, ns_to_ntp, ntp_diff

STOP_SECTION = "RFC 4656 §3.8"
UNKNOWN_TTL = 255  # recorded when the TTL is unknown, and for lost packets (RFC 4656 §4.2)
# A lost packet's send Error Estimate: S = 0, Multiplier 1 and the largest Scale. RFC 4656
# §3.9 says Scale 64, which the 6-bit field cannot hold; 63 is the nearest value.
LOST_SEND_ERROR = ErrorEstimate(sync=False, scale=63, multiplier=1).to_int()
SCAN = 65_536  # records counted between two turns of the event loop (a few ms)
_UNSEEN = re.compile(rb"[^\xff]")  # a byte of the seen-bitmap with a sequence number missing


@lru_cache(maxsize=64)
def estimate_of(error: float, sync: bool) -> int:
    """The wire Error Estimate of a clock error in seconds (a clock has few distinct ones)."""
    return ErrorEstimate.from_seconds(error, sync).to_int()


def clip_skip_ranges(ranges: Iterable[SkipRange], end: int) -> list[tuple[int, int]]:
    """The parts of ``ranges`` below sequence number ``end``, as the record keeps them."""
    return [(skip.first, min(skip.last, end - 1)) for skip in ranges if skip.first < end]


class OwampReceiver:
    """Receives one OWAMP-Test session into its ``OwampSessionRecord``.

    ``send_times`` holds the scheduled send timestamp of every sequence
    number (``slots.send_times``), ``timeout`` the session's Timeout (both
    32.32). A packet outside the session, or off its schedule by more than
    Timeout, counts as ``dropped.unknown_seq``. At most ``max_records``
    arrivals are kept (twice the packet count unless told): beyond that,
    duplicates are counted in ``excess``. The records are the record's
    ``Arrivals`` columns, no object per packet, so that a server keeping
    millions of them for Fetch-Session has neither the memory nor long
    collection pauses to pay. Nothing here walks every packet at once:
    ``fetch`` works in steps (S2).
    """

    def __init__(
        self,
        record: OwampSessionRecord,
        send_times: Sequence[int],
        timeout: int,
        protection: SessionProtection | None = None,
        max_records: int | None = None,
    ) -> None:
        if len(send_times) != record.count:
            raise ValueError("one scheduled send time per packet of the session")
        self.record = record
        self.excess = 0
        self._send_times = send_times
        self._timeout = timeout
        self._unprotect = None if protection is None else protection.sender
        self._layout = layout_for(protection is not None)
        self._kept = 0  # once finished: records are kept for the packets below this
        self._limit = 2 * record.count if max_records is None else max_records
        self._seen = bytearray()  # bit seq set once seq arrived: grows with the arrivals
        self._highest = -1  # the highest sequence number received
        self._lost_error = 0  # the receiver clock's Error Estimate when the session ended
        self.finished = False

    @property
    def octets(self) -> int:
        """What keeping the session costs: its records, and what says which arrived."""
        return PacketRecord.SIZE * len(self.record.arrivals) + len(self._seen)

    def on_datagram(self, data: bytes, received: Stamp, ttl: int | None) -> bool:
        """Record a packet received at ``received``; a bad one is counted and dropped (§4.2)."""
        dropped = self.record.dropped
        fields = open_packet(data, self._unprotect, self._layout, dropped)
        if fields is None:
            return False
        seq, send_timestamp, send_error = fields
        if self.finished or not self._expected(seq, send_timestamp, ns_to_ntp(received.ns)):
            dropped.unknown_seq += 1
            return False
        arrivals = self.record.arrivals
        if len(arrivals) >= self._limit:
            self.excess += 1
            return False
        self._saw(seq)
        estimates = arrivals.estimates
        send_code = estimates.wire_code(send_error)
        arrivals.add(seq, send_timestamp, send_code, received.ns, estimates.code(received), ttl)
        return True

    def finish(self, next_seqno: int, skipped: Sequence[SkipRange], stopped: Stamp) -> None:
        """Apply the sender's Stop-Sessions, received at ``stopped`` (RFC 4656 §3.8).

        Records of packets scheduled in the last Timeout before the stop are
        discarded, lost ones included: they stay in the columns, but
        Fetch-Session and the reports leave them out. The record keeps the sender's Next
        Seqno and notes where the discarded packets begin, so that reports
        count them as discarded rather than unsent or lost. Having received a
        packet at or beyond Next Seqno invalidates the session.
        """
        if not ranges_in_order(skipped):
            raise ProtocolError(
                "Skip Ranges MUST be in order", field="Skip Ranges", section=STOP_SECTION
            )
        if self._highest >= next_seqno:
            self.record.completed = False
        cut = self._due_before(ns_to_ntp(stopped.ns), self._timeout)
        self._end_at(next_seqno, min(next_seqno, cut), skipped, stopped)

    def abandon(self, stopped: Stamp) -> None:
        """End at ``stopped`` a session whose control connection broke first (RFC 4656 §3.8).

        Packets after the last one received may never have been sent, so the
        session ends after it; the results are marked incomplete.
        """
        self.record.completed = False
        end = self._highest + 1
        self._end_at(end, end, (), stopped)

    def fetch(
        self, begin: int, end: int
    ) -> Generator[None, None, tuple[int, Iterator[PacketRecord]]]:
        """Packet records with ``begin <= seq <= end`` for Fetch-Session (RFC 4656 §3.9).

        Yields after every SCAN records counted, then returns how many there
        are and an iterator over them: received packets in arrival order and,
        once the session is finished, lost ones after them with their scheduled
        send time and a zero receive time. A million records are never made,
        counted or looked up at once, so the event loop keeps turning (S2).
        """
        if self.finished:
            end = min(end, self._kept - 1)
        seqs = self.record.arrivals.seq
        taken = len(seqs)  # arrivals after the count are not announced
        received = 0
        for at in range(0, taken, SCAN):
            received += sum(begin <= seq <= end for seq in seqs[at : min(at + SCAN, taken)])
            yield
        records = self._received(begin, end, taken)
        if not self.finished or end < begin:
            return received, records
        lost = end - begin + 1 - self._seen_in(begin, end)
        return received + lost, itertools.chain(records, self._lost(begin, end))

    def _received(self, begin: int, end: int, taken: int) -> Iterator[PacketRecord]:
        """The records of the first ``taken`` arrivals with ``begin <= seq <= end`` (§3.9)."""
        arrivals = self.record.arrivals
        for index, seq in itertools.islice(enumerate(arrivals.seq), taken):
            if begin <= seq <= end:
                send_error, receive_error = arrivals.errors(index)
                ttl = arrivals.ttl[index]
                yield PacketRecord(
                    seq,
                    send_error,
                    receive_error,
                    arrivals.sent[index],
                    ns_to_ntp(arrivals.received[index]),
                    UNKNOWN_TTL if ttl == NO_TTL else ttl,
                )

    def _saw(self, seq: int) -> None:
        byte = seq >> 3
        if byte >= len(self._seen):
            self._seen.extend(bytes(max(byte + 1 - len(self._seen), len(self._seen))))
        self._seen[byte] |= 1 << (seq & 7)
        self._highest = max(self._highest, seq)

    def _seen_in(self, begin: int, end: int) -> int:
        """How many of the sequence numbers ``begin`` to ``end`` arrived."""
        bits = int.from_bytes(self._seen, "little")
        return ((bits >> begin) & ((1 << (end - begin + 1)) - 1)).bit_count()

    def _due_before(self, stop: int, timeout: int) -> int:
        """How many packets were scheduled up to Timeout before ``stop`` (wrap-safe)."""
        if not self._send_times:
            return 0
        first = self._send_times[0]
        return bisect_right(
            self._send_times, ntp_diff(stop, first) - timeout, key=lambda t: ntp_diff(t, first)
        )

    def _end_at(
        self, next_seqno: int, kept: int, ranges: Sequence[SkipRange], stopped: Stamp
    ) -> None:
        """End the session: the sender got to ``next_seqno``, records below ``kept`` stay."""
        self.finished = True
        self._kept = kept
        self._lost_error = estimate_of(stopped.error, stopped.sync)
        record = self.record
        record.next_seqno = next_seqno
        record.discarded_from = kept if kept < next_seqno else None
        record.skipped = clip_skip_ranges(ranges, next_seqno)
        # The records stay: Fetch-Session and the reports leave out those at or beyond ``kept``.

    def _lost(self, begin: int, end: int) -> Iterator[PacketRecord]:
        """Records of the packets from ``begin`` to ``end`` that never arrived (RFC 4656 §4.2)."""
        seen = self._seen
        last = min(end, 8 * len(seen) - 1)
        missing = (
            seq
            for unseen in _UNSEEN.finditer(seen, begin >> 3, (last >> 3) + 1)
            for seq in range(8 * unseen.start(), 8 * unseen.start() + 8)
            if begin <= seq <= last and not seen[seq >> 3] >> (seq & 7) & 1
        )
        beyond = range(max(begin, 8 * len(seen)), end + 1)  # none of these arrived
        for seq in itertools.chain(missing, beyond):
            yield PacketRecord(
                seq, LOST_SEND_ERROR, self._lost_error, self._send_times[seq], 0, UNKNOWN_TTL
            )

    def _expected(self, seq: int, send_timestamp: int, receive_timestamp: int) -> bool:
        """Whether the packet belongs to the schedule within Timeout (RFC 4656 §4.2)."""
        if seq >= self.record.count:
            return False
        timeout = self._timeout
        return (
            abs(ntp_diff(send_timestamp, self._send_times[seq])) <= timeout
            and abs(ntp_diff(receive_timestamp, send_timestamp)) <= timeout
        )
