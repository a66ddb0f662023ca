"""The OWAMP-Test receiver, without sockets or clocks (RFC 4656 §4.2, §3.8, §3.9).

``on_datagram`` checks a received packet and records it in arrival order,
duplicates included; ``finish`` applies the sender's Stop-Sessions and the
loss timeout; ``fetch_records`` gives the packet records of Fetch-Session,
lost packets last. Memory is bounded by the session's Number of Packets.
Times given to the receiver are in the 32.32 timestamp format of the wire,
except the kernel's receive time, a ``Stamp``; they are compared modulo
2**64, so a session may span the 2036 era wrap (RFC 5905 §6).
"""

from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache

from otwamp.errors import ProtocolError
from otwamp.results.records import Arrival, OwampSessionRecord, Stamp
from otwamp.session.protection import SessionProtection, open_packet
from otwamp.session.sender import stamp_of
from otwamp.wire.owamp_fetch import PacketRecord
from otwamp.wire.owamp_stop import SkipRange, ranges_in_order
from otwamp.wire.owamp_test import layout_for
from otwamp.wire.timestamp import ErrorEstimate, ns_to_ntp, ntp_diff

STOP_SECTION = "RFC 4656 §3.8"
UNKNOWN_TTL = 255  # recorded when the TTL is unknown, and for lost packets (RFC 4656 §4.2)
# A lost packet's send Error Estimate: S = 0, Multiplier 1 and the largest Scale. RFC 4656
# §3.9 says Scale 64, which the 6-bit field cannot hold; 63 is the nearest value.
LOST_SEND_ERROR = ErrorEstimate(sync=False, scale=63, multiplier=1).to_int()
_Record = tuple[int, int, int, int, int, int]  # a PacketRecord's fields (RFC 4656 §3.9)
_SEQ = 0


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
    duplicates are counted in ``excess``. Records are kept as tuples of ints,
    which the garbage collector stops tracking, so that a server keeping
    millions of them for Fetch-Session has no long collection pauses; the
    ``Arrival`` objects the client's reports use are kept only with ``arrivals``.
    """

    def __init__(
        self,
        record: OwampSessionRecord,
        send_times: Sequence[int],
        timeout: int,
        protection: SessionProtection | None = None,
        max_records: int | None = None,
        arrivals: bool = True,
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
        self._records: list[_Record] = []  # PacketRecord's fields, in its order
        self._arrivals = arrivals
        self._lost_error = 0  # the receiver clock's Error Estimate when the session ended
        self.finished = False

    @property
    def octets(self) -> int:
        """What keeping the session costs: its schedule (8 octets a packet) and its records."""
        return 8 * len(self._send_times) + PacketRecord.SIZE * len(self._records)

    def on_datagram(self, data: bytes, received: Stamp, ttl: int | None) -> Arrival | None:
        """Record a packet received at ``received``; a bad one is counted and dropped (§4.2)."""
        dropped = self.record.dropped
        fields = open_packet(data, self._unprotect, self._layout, dropped)
        if fields is None:
            return None
        seq, send_timestamp, send_error = fields
        receive_timestamp = ns_to_ntp(received.ns)
        if self.finished or not self._expected(seq, send_timestamp, receive_timestamp):
            dropped.unknown_seq += 1
            return None
        if len(self._records) >= self._limit:
            self.excess += 1
            return None
        self._records.append(
            (
                seq,
                send_error,
                estimate_of(received.error, received.sync),
                send_timestamp,
                receive_timestamp,
                UNKNOWN_TTL if ttl is None else ttl,
            )
        )
        arrival = Arrival(seq, stamp_of(send_timestamp, send_error), received, ttl)
        if self._arrivals:
            self.record.arrivals.append(arrival)
        return arrival

    def finish(self, next_seqno: int, skipped: Sequence[SkipRange], stopped: Stamp) -> None:
        """Apply the sender's Stop-Sessions, received at ``stopped`` (RFC 4656 §3.8).

        Records of packets scheduled in the last Timeout before the stop are
        discarded, lost ones included; the record keeps the sender's Next
        Seqno and notes where the discarded packets begin, so that reports
        count them as discarded rather than unsent or lost. Having received a
        packet at or beyond Next Seqno invalidates the session.
        """
        if not ranges_in_order(skipped):
            raise ProtocolError(
                "Skip Ranges MUST be in order", field="Skip Ranges", section=STOP_SECTION
            )
        if any(packet[_SEQ] >= next_seqno for packet in self._records):
            self.record.completed = False
        cut = self._due_before(ns_to_ntp(stopped.ns), self._timeout)
        self._end_at(next_seqno, min(next_seqno, cut), skipped, stopped)

    def abandon(self, stopped: Stamp) -> None:
        """End at ``stopped`` a session whose control connection broke first (RFC 4656 §3.8).

        Packets after the last one received may never have been sent, so the
        session ends after it; the results are marked incomplete.
        """
        self.record.completed = False
        end = max((packet[_SEQ] for packet in self._records), default=-1) + 1
        self._end_at(end, end, (), stopped)

    def fetch_records(self, begin: int, end: int) -> list[PacketRecord]:
        """Packet records with ``begin <= seq <= end`` for Fetch-Session (RFC 4656 §3.9).

        Received packets come in arrival order; once the session is finished,
        lost packets follow with their scheduled send time and a zero receive time.
        """
        received = [PacketRecord(*r) for r in self._records if begin <= r[_SEQ] <= end]
        if not self.finished:
            return received
        return received + [packet for packet in self._lost() if begin <= packet.seq <= end]

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
        self._records = [packet for packet in self._records if packet[_SEQ] < kept]
        record.arrivals = [arrival for arrival in record.arrivals if arrival.seq < kept]

    def _lost(self) -> Iterator[PacketRecord]:
        """Records of the kept packets that never arrived (RFC 4656 §4.2)."""
        seen = {packet[_SEQ] for packet in self._records}
        for seq in range(self._kept):
            if seq not in seen:
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
