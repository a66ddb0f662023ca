"""Sessions and scheduled packets are shared fairly across addresses (S2, S3)."""

from otwamp.control.quota import SMALL, SessionQuota

BIG = 1_000_000


def test_an_address_has_at_most_its_sessions_and_a_quarter_of_the_packets():
    quota = SessionQuota(per_source=2, packets=8 * BIG)
    quota.take("192.0.2.1", BIG)
    quota.take("192.0.2.1", BIG)
    assert quota.refusal("192.0.2.1") == "2 sessions from this address"
    quota.give("192.0.2.1", BIG)
    assert quota.refusal("192.0.2.1", BIG + 1) is not None  # 2,000,001 > a quarter of 8 M
    assert quota.refusal("192.0.2.1", BIG) is None
    assert quota.refusal("192.0.2.2", 2 * BIG) is None


def test_large_schedules_from_many_addresses_leave_a_quarter_for_ordinary_sessions():
    quota = SessionQuota(per_source=256, packets=8 * BIG)
    addresses = [f"192.0.2.{n}" for n in range(1, 9)]
    for address in addresses[:6]:
        assert quota.refusal(address, BIG) is None
        quota.take(address, BIG)
    assert (
        quota.refusal(addresses[6], BIG) == f"{6 * BIG} packets of large sessions scheduled already"
    )
    assert quota.refusal("198.51.100.1", SMALL) is None  # an everyday measurement still fits
    quota.take("198.51.100.1", SMALL)
    for address in addresses[:6]:
        quota.give(address, BIG)
    assert quota.scheduled == SMALL
    assert quota.refusal(addresses[6], BIG) is None
