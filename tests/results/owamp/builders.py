"""Builders of OWAMP records for the results tests (times in ns from a fixed epoch)."""

from collections.abc import Sequence
from typing import Any

from otwamp.results.records import Arrival, OwampSessionRecord, Stamp

EPOCH_NS = 1_700_000_000 * 1_000_000_000
INTERVAL_NS = 1_000_000  # one packet per ms
SID = bytes.fromhex("7f000001eeacd975a1b3aeee5dc2152a")


def stamp(ns: int, sync: bool = True, error: float = 1e-9) -> Stamp:
    """A stamp ns after the test epoch."""
    return Stamp(EPOCH_NS + ns, sync, error)


def arrival(
    seq: int,
    delay: int = 50_000,
    *,
    ttl: int | None = 250,
    syncs: tuple[bool, bool] = (True, True),
    errors: tuple[float, float] = (1e-9, 1e-9),
) -> Arrival:
    """Packet seq, sent at seq ms and received ``delay`` ns later."""
    sent = seq * INTERVAL_NS
    return Arrival(
        seq,
        stamp(sent, syncs[0], errors[0]),
        stamp(sent + delay, syncs[1], errors[1]),
        ttl,
    )


def record(count: int, arrivals: Sequence[Arrival], **fields: Any) -> OwampSessionRecord:
    """A "to" session record of ``count`` packets with the given arrivals."""
    fields.setdefault("direction", "to")
    return OwampSessionRecord(
        sid=SID,
        mode="authenticated",
        key_source="passphrase",
        count=count,
        arrivals=list(arrivals),
        **fields,
    )
