"""Log lines are limited per cause, and what was left out is counted and reported."""

import io
import logging

from otwamp.lograte import RateLimit, RateLimitedHandler


def record(msg: str, created: float, *args: object) -> logging.LogRecord:
    rec = logging.LogRecord("otwamp.server", logging.WARNING, __file__, 1, msg, args, None)
    rec.created = created
    return rec


def test_a_burst_per_cause_and_second_then_a_count_of_what_was_left_out():
    limit = RateLimit(burst=3, window=1.0)
    flood = [record("refused %s", 100.0 + i / 1000, f"10.0.0.{i}") for i in range(500)]
    assert sum(limit.filter(r) for r in flood) == 3
    other = record("another cause %d", 100.2, 1)
    assert limit.filter(other)
    later = record("refused %s", 101.5, "10.0.0.9")
    assert limit.filter(later)
    assert later.getMessage() == "refused 10.0.0.9 (497 more like this left out)"


def test_a_cause_that_went_quiet_is_reported_on_the_next_line_of_any_cause():
    stream = io.StringIO()
    handler = RateLimitedHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for i in range(50):
        handler.handle(record("refused %s", 100.0 + i / 1000, f"10.0.0.{i}"))
    handler.handle(record("shutting down", 105.0))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 5 + 2
    assert lines[-2] == "45 more like 'refused %s' left out"
    assert lines[-1] == "shutting down"
