"""The per-packet records blob: round trips, size, and only our error for anything else."""

import contextlib
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otwamp.archive import packets
from otwamp.archive.packets import RecordsFormatError
from otwamp.errors import ProtocolError
from otwamp.results.records import (
    Arrival,
    Dropped,
    OwampSessionRecord,
    Reply,
    Sent,
    Stamp,
    TwampSessionRecord,
)
from tests.archive.builders import owping_outcome, ping_outcome

SID = bytes(range(16))
# Times within a century of 2024 and sequence numbers of real sessions (ints of 64 bits).
times = st.integers(min_value=1_000_000_000 * 10**9, max_value=4_000_000_000 * 10**9)
seqs = st.integers(min_value=0, max_value=2**32 - 1)
stamps = st.builds(Stamp, times, st.booleans(), st.floats(0, 1e3, allow_nan=False))
ttls = st.one_of(st.none(), st.integers(0, 255))
counts = st.integers(0, 2**31)
dropped = st.builds(Dropped, counts, counts, counts, counts, counts, counts)
twamp_records = st.builds(
    TwampSessionRecord,
    sid=st.just(SID),
    mode=st.just("encrypted"),
    key_source=st.just("ike"),
    sent=st.lists(st.builds(Sent, seqs, stamps, st.one_of(st.none(), times)), max_size=12),
    replies=st.lists(
        st.builds(Reply, seqs, seqs, stamps, stamps, stamps, stamps, st.integers(0, 255), ttls),
        max_size=12,
    ),
    dropped=dropped,
    completed=st.booleans(),
    initial_ttl=st.integers(0, 255),
)
owamp_records = st.builds(
    OwampSessionRecord,
    sid=st.just(SID),
    direction=st.sampled_from(["to", "from"]),
    mode=st.just("authenticated"),
    key_source=st.just("passphrase"),
    count=counts,
    arrivals=st.lists(st.builds(Arrival, seqs, stamps, stamps, ttls), max_size=12),
    next_seqno=st.one_of(st.none(), seqs),
    skipped=st.lists(st.tuples(seqs, seqs), max_size=5),
    dropped=dropped,
    completed=st.booleans(),
    initial_ttl=st.integers(0, 255),
    discarded_from=st.one_of(st.none(), seqs),
)


def _decode(blob: bytes, record) -> object:
    direction = getattr(record, "direction", None)
    return packets.decode(
        blob, sid=SID, mode=record.mode, key_source=record.key_source, direction=direction
    )


@settings(deadline=None)  # a shared, loaded machine: no per-example deadline
@given(st.one_of(twamp_records, owamp_records))
def test_records_round_trip(record):
    assert _decode(packets.encode(record), record) == record


@settings(deadline=None)  # a shared, loaded machine: no per-example deadline
@given(st.binary(max_size=200))
def test_random_octets_raise_only_our_error(blob):
    with pytest.raises(ProtocolError):
        packets.decode(blob, sid=SID, mode="open", key_source="none", direction=None)


@settings(deadline=None)  # a shared, loaded machine: no per-example deadline
@given(st.sampled_from([1, 2]), st.binary(max_size=120))
def test_random_bodies_raise_only_our_error(kind, body):
    blob = packets.MAGIC + bytes((packets.FORMAT, kind)) + zlib.compress(body)
    with pytest.raises(RecordsFormatError):
        packets.decode(blob, sid=SID, mode="open", key_source="none", direction="to")


@settings(deadline=None)  # a shared, loaded machine: no per-example deadline
@given(st.one_of(twamp_records, owamp_records), st.data())
def test_a_damaged_blob_decodes_to_something_or_raises_our_error(record, data):
    blob = bytearray(packets.encode(record))
    index = data.draw(st.integers(0, len(blob) - 1))
    blob[index] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(ProtocolError):  # decoding to a record is fine too
        _decode(bytes(blob), record)


def test_a_blob_that_inflates_past_the_bound_is_refused(monkeypatch):
    monkeypatch.setattr(packets, "MAX_BODY", 4096)  # the bound itself is 256 MiB
    blob = packets.MAGIC + bytes((1, 1)) + zlib.compress(bytes(4097))
    with pytest.raises(RecordsFormatError, match="too large"):
        packets.decode(blob, sid=SID, mode="open", key_source="none", direction=None)


def test_a_regular_session_costs_a_few_octets_a_packet():
    """1000 packets one per 10 ms with a few µs of noise: well under 8 octets a packet."""
    outcome = ping_outcome()
    base = outcome.record.replies[0]
    replies = [
        Reply(
            seq,
            seq,
            Stamp(base.t1.ns + seq * 10_000_000, True, 1e-6),
            Stamp(base.t1.ns + seq * 10_000_000 + 50_000 + seq % 7 * 300, True, 1e-6),
            Stamp(base.t1.ns + seq * 10_000_000 + 60_000 + seq % 7 * 300, True, 1e-6),
            Stamp(base.t1.ns + seq * 10_000_000 + 110_000 + seq % 11 * 200, True, 1e-6),
            64,
            64,
        )
        for seq in range(1000)
    ]
    record = TwampSessionRecord(
        SID, "open", "none", [Sent(r.sender_seq, r.t1) for r in replies], replies
    )
    blob = packets.encode(record)
    assert _decode(blob, record) == record
    assert len(blob) < 8 * 1000
    assert len(packets.encode(owping_outcome().to)) < 200


def test_a_format_1_blob_reads_with_no_kernel_transmit_times():
    """Blobs written before format 2 (issue 15) still read: every T1 is the in-packet one."""
    record = TwampSessionRecord(
        sid=SID,
        mode="open",
        key_source="none",
        sent=[Sent(7, Stamp(2_000_000_000 * 10**9, True, 0.5), 2_000_000_000 * 10**9 + 900)],
    )
    blob = packets.encode(record)
    kind, body = blob[4], zlib.decompress(blob[5:])
    # Drop format 2's last column (its header and one value) and say format 1.
    head = packets._COUNT.pack(packets._COUNT.unpack_from(body)[0] - 1)
    old = head + body[packets._COUNT.size : -(packets._COLUMN_HEAD.size + 8)]
    legacy = packets.MAGIC + bytes((1, kind)) + zlib.compress(old)
    [sent] = packets.decode(legacy, sid=SID, mode="open", key_source="none", direction=None).sent
    assert (sent.seq, sent.t1, sent.t1_kernel_ns) == (7, record.sent[0].t1, None)
    [again] = packets.decode(blob, sid=SID, mode="open", key_source="none", direction=None).sent
    assert again.t1_kernel_ns == 2_000_000_000 * 10**9 + 900 and again.t1_source == "kernel"
