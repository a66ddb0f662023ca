"""Durations ("90s", "1h30m", "7d") and points in time ("2h" ago, or ISO 8601) of the CLI."""

import re
from datetime import UTC, datetime

from otwamp.errors import ConfigError

NS_PER_S = 1_000_000_000
UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
_PART = re.compile(r"(\d{1,9})([smhdw])")
_DURATION = re.compile(r"(?:\d{1,9}[smhdw])+")


def parse_duration(text: str) -> int:
    """A duration such as "90s", "15m", "1h30m", "7d" or "2w", in whole seconds."""
    compact = text.strip().lower()
    if not _DURATION.fullmatch(compact):
        raise ConfigError(f"{text!r} is not a duration: use e.g. 90s, 15m, 1h30m, 7d, 2w")
    return sum(int(number) * UNITS[unit] for number, unit in _PART.findall(compact))


def parse_time(text: str, now_ns: int) -> int:
    """A point in time as ns since the epoch: a duration before ``now_ns``, or ISO 8601.

    An ISO time without an offset is taken as UTC, the archive's time.
    """
    stripped = text.strip()
    if _DURATION.fullmatch(stripped.lower()):
        return now_ns - parse_duration(stripped) * NS_PER_S
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise ConfigError(
            f"{text!r} is neither a duration (2h, 7d) nor an ISO 8601 time (2024-05-01T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_S + delta.microseconds * 1_000
