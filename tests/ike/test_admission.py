"""Per-source and global half-open limits (RFC 7296 §2.6)."""

import pytest

from otwamp.ike.admission import (
    SOURCE_FULL,
    TABLE_FULL,
    HalfOpenLimits,
    HalfOpenTable,
    source_of,
)


@pytest.mark.parametrize(
    ("host", "source"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
    ],
)
def test_a_source_is_an_ipv4_address_or_an_ipv6_slash_64(host, source):
    assert source_of((host, 500)) == source


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_half_open_per_source": 0}, "from 1 to max_half_open"),
        ({"max_half_open": 10}, "from 1 to max_half_open"),
        ({"cookie_threshold_per_source": 16}, "less than max_half_open_per_source"),
        ({"cookie_threshold": -1}, ">= 0"),
    ],
)
def test_inconsistent_limits_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        HalfOpenLimits(**options)


def test_per_source_and_global_limits_and_cookies():
    table = HalfOpenTable(HalfOpenLimits(3, 5, 1, 3))
    assert not table.cookies_required("10.0.0.1")
    for port in (1, 2, 3):
        assert table.refusal("10.0.0.1") is None
        assert table.add((b"a", ("10.0.0.1", port))) is None
    assert table.cookies_required("10.0.0.1") and table.cookies_required("10.0.0.2")  # 3 in all
    assert table.refusal("10.0.0.1") == SOURCE_FULL
    assert table.add((b"b", ("10.0.0.2", 1))) is None
    assert table.add((b"c", ("10.0.0.3", 1))) is None
    assert len(table) == 5 and table.held("10.0.0.1") == 3
    assert table.refusal("10.0.0.2") is None  # may evict from 10.0.0.1
    assert table.add((b"d", ("10.0.0.2", 2))) == (b"a", ("10.0.0.1", 1))
    assert table.refusal("10.0.0.2") == TABLE_FULL  # holds 2, as much as anyone
    table.remove((b"a", ("10.0.0.1", 2)))
    table.remove((b"a", ("10.0.0.1", 2)))  # twice is harmless
    assert len(table) == 4 and (b"a", ("10.0.0.1", 3)) in table
