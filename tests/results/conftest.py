"""Builders of TWAMP records for the results tests (times in ns from a fixed epoch)."""

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from otwamp.results.records import Reply, Sent, Stamp, TwampSessionRecord

EPOCH_NS = 1_700_000_000 * 1_000_000_000
INTERVAL_NS = 1_000_000  # sender schedule: one packet per ms


def stamp(ns: int, sync: bool = True, error: float = 1e-9) -> Stamp:
    """A stamp ns after the test epoch."""
    return Stamp(EPOCH_NS + ns, sync, error)


def reply(
    seq: int,
    rseq: int | None = None,
    *,
    fwd: int = 50_000,
    proc: int = 5_000,
    back: int = 20_000,
    sender_ttl: int = 255,
    ttl: int | None = 255,
    syncs: tuple[bool, bool, bool, bool] = (True, True, True, True),
    errors: tuple[float, float, float, float] = (1e-9, 1e-9, 1e-9, 1e-9),
) -> Reply:
    """A reply to sender packet seq (sent at seq ms) with the given delays in ns."""
    t1 = seq * INTERVAL_NS
    times = (t1, t1 + fwd, t1 + fwd + proc, t1 + fwd + proc + back)
    s1, s2, s3, s4 = (stamp(t, s, e) for t, s, e in zip(times, syncs, errors, strict=True))
    return Reply(
        sender_seq=seq,
        reflector_seq=seq if rseq is None else rseq,
        t1=s1,
        t2=s2,
        t3=s3,
        t4=s4,
        sender_ttl=sender_ttl,
        ttl=ttl,
    )


def record(sent: int, replies: Sequence[Reply], **fields: Any) -> TwampSessionRecord:
    """A session record of `sent` packets sent one per ms and the given replies."""
    return TwampSessionRecord(
        sid=bytes.fromhex("7f000001eeacd947a841893771f2517f"),
        mode="unauthenticated",
        key_source="none",
        sent=[Sent(seq, stamp(seq * INTERVAL_NS)) for seq in range(sent)],
        replies=list(replies),
        **fields,
    )


@pytest.fixture
def make_reply() -> Callable[..., Reply]:
    """The reply builder."""
    return reply


@pytest.fixture
def make_record() -> Callable[..., TwampSessionRecord]:
    """The record builder."""
    return record
