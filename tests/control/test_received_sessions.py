"""Finished OWAMP receive sessions are kept for Fetch-Session within time and volume bounds."""

import ipaddress

from otwamp.control.received_sessions import ReceivedSession, ReceivedSessions
from otwamp.wire.owamp_control import RequestSession, Slot, SlotType
from otwamp.wire.owamp_fetch import PacketRecord
from tests.session.helpers import make_link

NS = 1_000_000_000
ALICE = b"alice".ljust(80, b"\0")
PACKETS = 10
RECEIVED = 4
OCTETS = RECEIVED * PacketRecord.SIZE + 1  # its records, and a byte saying which arrived


def session(sid: bytes, owner: bytes | None = None) -> ReceivedSession:
    address = ipaddress.ip_address("192.0.2.1")
    slots = (Slot(SlotType.FIXED, 1 << 32),)
    request = RequestSession(address, address, 1, 2, slots, PACKETS, sid=sid)
    link = make_link("open", count=PACKETS)
    for seq in range(RECEIVED):
        link.deliver(seq)
    return ReceivedSession(owner, request, link.receiver)


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
