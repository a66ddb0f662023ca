"""At most a few log lines per cause and second, however fast a peer makes them (issue S3).

A cause is a log call site: the record's logger, level and message template,
not its arguments, so a flood of refusals from changing ports is one cause.
What was left out is counted and reported, on the cause's next line or, for
a cause that went quiet, on the next line of any cause.
"""

import logging
from dataclasses import dataclass
from typing import TextIO

BURST = 5  # lines of one cause let through in a window before the rest are counted
WINDOW = 1.0  # seconds

Cause = tuple[str, int, str]


@dataclass(slots=True)
class _Window:
    start: float
    passed: int = 1
    dropped: int = 0


class RateLimit(logging.Filter):
    """A handler filter: ``BURST`` records per cause per ``WINDOW`` seconds."""

    def __init__(self, burst: int = BURST, window: float = WINDOW) -> None:
        super().__init__()
        self.burst, self.window = burst, window
        self._windows: dict[Cause, _Window] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Let the record through, or count it as left out."""
        key = (record.name, record.levelno, str(record.msg))
        window = self._windows.get(key)
        if window is None or record.created - window.start >= self.window:
            self._windows[key] = _Window(record.created)
            if window is not None and window.dropped:
                record.msg = f"{record.msg} ({window.dropped} more like this left out)"
            return True
        if window.passed < self.burst:
            window.passed += 1
            return True
        window.dropped += 1
        return False

    def quiet_causes(self, now: float) -> list[tuple[Cause, int]]:
        """Causes whose window ended with lines left out, and how many; they are reset."""
        ended = [
            (key, window.dropped)
            for key, window in self._windows.items()
            if window.dropped and now - window.start >= self.window
        ]
        for key, _count in ended:
            del self._windows[key]
        return ended


class RateLimitedHandler(logging.StreamHandler[TextIO]):
    """A stream handler with a ``RateLimit``, reporting what quiet causes left out."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.limit = RateLimit()
        self.addFilter(self.limit)

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record, after a line for each quiet cause that left lines out."""
        for (name, level, template), count in self.limit.quiet_causes(record.created):
            note = logging.LogRecord(
                name, level, "", 0, f"{count} more like {template!r} left out", None, None
            )
            note.created = record.created
            super().emit(note)
        super().emit(record)
