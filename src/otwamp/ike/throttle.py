"""Log lines about a flood, at most one per cause and interval, with counts (sans-I/O)."""

import logging
from collections import Counter
from dataclasses import dataclass, field

LOG_INTERVAL = 10.0  # seconds between two lines about the same cause


@dataclass
class _Tally:
    """What one cause counted since its last line."""

    since: float
    by_source: Counter[str] = field(default_factory=Counter)


class ThrottledLog:
    """Counts events by cause and source; logs each cause at most once per ``interval``.

    The first event of a cause is logged at once; later ones are summed into the next line,
    due ``interval`` after the previous one (``get_timer`` / ``handle_timer(now)``).
    """

    def __init__(self, log: logging.Logger, interval: float = LOG_INTERVAL) -> None:
        self._log = log
        self._interval = interval
        self._tallies: dict[str, _Tally] = {}
        self._next_line: dict[str, float] = {}

    def note(self, cause: str, source: str, now: float) -> None:
        """Count one event of ``cause`` from ``source``; log now if the cause's line is due."""
        tally = self._tallies.setdefault(cause, _Tally(now))
        tally.by_source[source] += 1
        if now >= self._next_line.get(cause, now):
            self._emit(cause, now)

    def get_timer(self) -> float | None:
        """When a line with counts not yet logged is due, or None."""
        return min((self._next_line[cause] for cause in self._tallies), default=None)

    def handle_timer(self, now: float) -> None:
        """Log every cause whose line is due."""
        for cause in [c for c in self._tallies if self._next_line[c] <= now]:
            self._emit(cause, now)

    def _emit(self, cause: str, now: float) -> None:
        tally = self._tallies.pop(cause)
        source, most = tally.by_source.most_common(1)[0]
        self._log.warning(
            "%s: %d in %.0f s from %d source(s), most from %s (%d)",
            cause,
            tally.by_source.total(),
            now - tally.since,
            len(tally.by_source),
            source,
            most,
        )
        self._next_line[cause] = now + self._interval
