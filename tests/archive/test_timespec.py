"""--since/--until: durations and ISO 8601 times."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.archive.timespec import UNITS, parse_duration, parse_time
from otwamp.errors import ConfigError

NOW = 1_700_000_000 * 10**9


@given(st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(sorted(UNITS))), min_size=1))
def test_durations_add_their_parts(parts):
    text = "".join(f"{number}{unit}" for number, unit in parts)
    assert parse_duration(text) == sum(number * UNITS[unit] for number, unit in parts)
    assert parse_time(text, NOW) == NOW - parse_duration(text) * 10**9


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)))
def test_iso_times_are_utc_nanoseconds(moment):
    expected = (moment - datetime(1970, 1, 1)) // timedelta(microseconds=1) * 1000
    assert parse_time(moment.isoformat(), NOW) == expected
    assert parse_time(moment.replace(tzinfo=UTC).isoformat(), NOW) == expected


@given(st.text(max_size=30))
def test_anything_else_is_a_one_line_config_error(text):
    try:
        parse_time(text, NOW)
    except ConfigError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize("text", ["", "h", "5", "-5m", "1.5h", "5 parsecs", "2024-13-01"])
def test_malformed_times_are_refused(text):
    with pytest.raises(ConfigError):
        parse_time(text, NOW)


def test_examples():
    assert parse_duration("1h30m") == 5400
    assert parse_duration("2W") == 14 * 86_400
    assert parse_time("2023-11-14T22:13:20Z", NOW) == NOW
    assert parse_time("2023-11-15T00:13:20+02:00", NOW) == NOW
