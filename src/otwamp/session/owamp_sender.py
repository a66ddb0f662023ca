"""The OWAMP-Test sender's packet work, without sockets or clocks (RFC 4656 §4.1).

It fits the same pacing loop as the TWAMP sender: ``prepare`` builds a
packet ahead of its send time (authenticated mode encrypts the first block
then, RFC 7717 §1), ``stamp`` writes the timestamp as the last step before
the send call (decision D10) and encrypts afterwards only in encrypted mode,
``mark_sent`` records the packet once sent. A packet the loop cannot send
in time is ``skip``-ped; ``stop_description`` gives Next Seqno and the skip
ranges for Stop-Sessions (RFC 4656 §3.8).
"""

from otwamp.session.packets import SenderPackets
from otwamp.session.protection import SessionProtection
from otwamp.wire.owamp_stop import SkipRange
from otwamp.wire.timestamp import ErrorEstimate, ntp_diff


def too_late(scheduled: int, now: int, timeout: int) -> bool:
    """Whether a packet due at ``scheduled`` must not be sent at ``now`` (RFC 4656 §4.1.1).

    All three are in timestamp format, compared across the 2036 era wrap
    (RFC 5905 §6): a packet more than Timeout late would be counted lost
    anyway, so the sender skips it.
    """
    return ntp_diff(now, scheduled) > timeout


class OwampSender(SenderPackets):
    """Sends one OWAMP-Test session and keeps what Stop-Sessions reports (RFC 4656 §3.8).

    State is two counters and the skip ranges, so it does not grow with the
    number of packets sent.
    """

    def __init__(self, padding: bytes, protection: SessionProtection | None = None) -> None:
        super().__init__(padding, protection)
        self.sent = 0
        self._next_seqno = 0
        self._skips: list[SkipRange] = []

    @property
    def packet_size(self) -> int:
        """Octets of each packet."""
        return self.size

    @property
    def next_seqno(self) -> int:
        """The sequence number that would be sent next (RFC 4656 §3.8)."""
        return self._next_seqno

    def mark_sent(self, seq: int, ntp: int, error: ErrorEstimate) -> None:
        """Record that packet ``seq`` was sent; numbers passed over count as skipped.

        ``ntp`` and ``error`` are the pacing loop's, as for the TWAMP sender;
        the receiver keeps the times, the sender only what Stop-Sessions says.
        """
        self._advance(seq)
        self.sent += 1

    def skip(self, seq: int) -> None:
        """Record that packet ``seq`` was not sent, e.g. because it was too late (§4.1.1)."""
        self._advance(seq)
        self._add_skip(seq, seq)

    def stop_description(self) -> tuple[int, tuple[SkipRange, ...]]:
        """Next Seqno and the skip ranges, in order and merged, for Stop-Sessions (§3.8)."""
        return self._next_seqno, tuple(self._skips)

    def _advance(self, seq: int) -> None:
        if seq < self._next_seqno:
            raise ValueError(f"packet {seq} is behind Next Seqno {self._next_seqno}")
        if seq > self._next_seqno:
            self._add_skip(self._next_seqno, seq - 1)
        self._next_seqno = seq + 1

    def _add_skip(self, first: int, last: int) -> None:
        if self._skips and self._skips[-1].last + 1 == first:
            first = self._skips.pop().first
        self._skips.append(SkipRange(first, last))
