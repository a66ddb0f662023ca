"""Finished OWAMP receive sessions are kept for Fetch-Session within time and volume bounds."""

import ipaddress

from otwamp.control.received_sessions import ReceivedSession, ReceivedSessions
from otwamp.results.records import OwampSessionRecord
from otwamp.session.owamp_receiver import OwampReceiver
from otwamp.wire.owamp_control import RequestSession, Slot, SlotType

NS = 1_000_000_000
ALICE = b"alice".ljust(80, b"\0")
PACKETS = 10
OCTETS = 8 * PACKETS  # a kept session with no records: its schedule


def session(sid: bytes, owner: bytes | None = None) -> ReceivedSession:
    record = OwampSessionRecord(sid, "to", "", "", PACKETS)
    address = ipaddress.ip_address("192.0.2.1")
    slots = (Slot(SlotType.FIXED, 1 << 32),)
    request = RequestSession(address, address, 1, 2, slots, PACKETS, sid=sid)
    receiver = OwampReceiver(record, list(range(PACKETS)), 1 << 32)
    return ReceivedSession(owner, request, receiver)


def test_a_finished_session_is_kept_for_the_retention_time():
    kept = ReceivedSessions(keep_for_ns=300 * NS, max_octets=1 << 20)
    kept.add(b"a" * 16, session(b"a" * 16))
    assert kept.find(b"a" * 16, None, 0) is not None  # live: fetchable in part
    kept.finished(b"a" * 16, 10 * NS)
    assert kept.octets == OCTETS
    assert kept.find(b"a" * 16, ALICE, 309 * NS) is not None  # open mode: any identity
    assert kept.find(b"a" * 16, None, 310 * NS) is None
    assert (len(kept), kept.octets) == (0, 0)


def test_the_oldest_finished_sessions_go_first_beyond_the_volume():
    kept = ReceivedSessions(keep_for_ns=300 * NS, max_octets=2 * OCTETS)
    for n, sid in enumerate((b"a" * 16, b"b" * 16, b"c" * 16)):
        kept.add(sid, session(sid))
        kept.finished(sid, n * NS)
    assert kept.find(b"a" * 16, None, 3 * NS) is None
    assert kept.find(b"b" * 16, None, 3 * NS) is not None
    assert kept.octets == 2 * OCTETS


def test_only_the_same_identity_fetches_an_authenticated_session_and_unrun_ones_are_forgotten():
    kept = ReceivedSessions(keep_for_ns=300 * NS, max_octets=1 << 20)
    kept.add(b"a" * 16, session(b"a" * 16, owner=ALICE))
    assert kept.find(b"a" * 16, None, 0) is None
    assert kept.find(b"a" * 16, b"bob".ljust(80, b"\0"), 0) is None
    assert kept.find(b"a" * 16, ALICE, 0) is not None
    kept.discard(b"a" * 16)
    assert len(kept) == 0
