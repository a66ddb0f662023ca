"""Measurements to archive in the archive tests: outcomes as ping and owping return them.

Import as ``from tests.archive.builders import ...``.
"""

from otwamp.archive.rows import Measurement
from otwamp.drivers.owamp_client import OwpingOutcome
from otwamp.drivers.twamp_client import PingOutcome
from otwamp.results.records import Dropped
from tests.results import conftest as twamp_records
from tests.results.owamp import builders as owamp_records

START_NS = twamp_records.EPOCH_NS
SPIS = ("0123456789abcdef", "fedcba9876543210")


def ping_outcome() -> PingOutcome:
    """A TWAMP session with a loss, a duplicate, reordering, a TTL change and IKE keys."""
    reply = twamp_records.reply
    replies = [
        reply(0),
        reply(1, fwd=70_000, ttl=254),
        reply(1, 2),  # a duplicate of 1, reflected again
        reply(4, 3, back=35_000),
        reply(3, 4),  # arrives after 4: reordered
        reply(5, 5, syncs=(True, False, True, True)),
    ]
    record = twamp_records.record(7, replies, dropped=Dropped(corrupt=1, kernel_drops=2))
    return PingOutcome(record, ike_spis=SPIS)


def owping_outcome() -> OwpingOutcome:
    """OWAMP both ways: "to" with a loss and a duplicate, "from" cut short by the sender."""
    arrival = owamp_records.arrival
    to = owamp_records.record(5, [arrival(0), arrival(1), arrival(1), arrival(3, 90_000)])
    from_ = owamp_records.record(
        6,
        [arrival(0, ttl=None), arrival(2, ttl=None, syncs=(False, True))],
        direction="from",
        next_seqno=4,
        skipped=[(1, 1)],
        incomplete="Stop-Sessions Accept 1",
    )
    return OwpingOutcome(to, from_, "authenticated", "passphrase")


def measurement(
    outcome: PingOutcome | OwpingOutcome | None = None,
    *,
    test: str = "core",
    destination: str = "192.0.2.2",
    start_ns: int = START_NS,
    failure: str | None = None,
) -> Measurement:
    """A measurement from 192.0.2.1 lasting one second."""
    protocol = "owamp" if isinstance(outcome, OwpingOutcome) else "twamp"
    return Measurement(
        test=test,
        source="192.0.2.1",
        destination=destination,
        start_ns=start_ns,
        end_ns=start_ns + 1_000_000_000,
        protocol=protocol,
        outcome=outcome,
        failure=failure,
        mode="authenticated" if outcome is None else None,
        key_source="ike" if outcome is None else None,
    )
