"""What test sessions hold across every control connection of a server (issues S2, S3).

One peer must not take every test port, nor the memory of every schedule:
each accepted session takes one unit of its control client's address quota
and its packets from the server-wide budget of scheduled packets, until it
is given back. A quarter of that budget is kept for ordinary sessions (at
most ``SMALL`` packets), so that schedules of millions, from however many
addresses, cannot crowd out everyday measurements.
"""

from collections import Counter

SMALL = 100_000  # packets: a 10-pps powstream session of almost three hours


class SessionQuota:
    """Sessions per address, and packets scheduled per address and by everyone."""

    def __init__(
        self, per_source: int, packets: int = 8_000_000, per_source_packets: int | None = None
    ) -> None:
        self.per_source = per_source
        self.packets = packets
        self.per_source_packets = packets // 4 if per_source_packets is None else per_source_packets
        self.scheduled = 0
        self._large = 0  # packets of sessions above SMALL
        self._live: Counter[str] = Counter()
        self._packets: Counter[str] = Counter()

    def refusal(self, source: str, packets: int = 0) -> str | None:
        """Why one more session of ``packets`` for ``source`` would exceed a quota, or None."""
        if self._live[source] >= self.per_source:
            return f"{self.per_source} sessions from this address"
        if self._packets[source] + packets > self.per_source_packets:
            return f"{self._packets[source]} packets scheduled for this address already"
        if self.scheduled + packets > self.packets:
            return f"{self.scheduled} of the server's {self.packets} scheduled packets in use"
        if packets > SMALL and self._large + packets > self.packets * 3 // 4:
            return f"{self._large} packets of large sessions scheduled already"
        return None

    def take(self, source: str, packets: int = 0) -> None:
        """Count a session accepted for ``source``."""
        self._count(source, 1, packets)

    def give(self, source: str, packets: int = 0) -> None:
        """Count a session of ``source`` as ended."""
        self._count(source, -1, -packets)

    def __getitem__(self, source: str) -> int:
        return self._live[source]

    def _count(self, source: str, sessions: int, packets: int) -> None:
        self._live[source] += sessions
        self._packets[source] += packets
        self.scheduled += packets
        if abs(packets) > SMALL:
            self._large += packets
        if self._live[source] <= 0:
            del self._live[source], self._packets[source]
