"""Framing does not depend on segmentation: every transcript, cut anywhere, replays the same.

TCP may deliver a control message in any number of pieces (owping and
powstream write Request-Session's fixed part and its slots ~50 ms apart).
Each control machine, server and client, TWAMP and OWAMP, replays every
perfSONAR transcript with the peer's octets fed whole, one octet at a time,
cut at random places, cut at every offset inside each message, and cut as
the recorded TCP segments were. The events, and the octets the machine sends
in answer, must be those of the whole-message replay, and each event must be
reported as soon as the last octet of its message is fed.
"""

import itertools
from dataclasses import replace
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otwamp.control.events import NEED_DATA, SetUpReceived
from otwamp.control.owamp_events import OwampSessionRequested
from otwamp.control.owamp_server import OwampServerConnection
from otwamp.control.server_base import ServerState
from otwamp.security.control import OpenControlSender
from otwamp.wire.owamp_control import HMAC_SIZE, RequestSession, Slot, SlotType
from otwamp.wire.setup import SetUpResponse
from tests.control.conftest import CLIENT_TO_SERVER, Recorded
from tests.control.replay import (
    OWAMP_SERVER,
    Replay,
    Side,
    cases,
    message_ends,
    peer_messages,
    recorded_request,
    replay,
    segment_ends,
)
from tests.wire.owamp.vectors import OWAMP, REQUEST

CASES = cases()
IDS = [f"{side.name}-{name}" for side, name in CASES]
# Request-Session's first part: the fixed fields and their HMAC (RFC 4656 §3.5).
FIXED_PART = RequestSession.FIXED + HMAC_SIZE


@cache
def whole(side: Side, name: str) -> Replay:
    """The replay with every peer message fed in one piece."""
    return replay(side, name, message_ends(side, name))


def peer_length(side: Side, name: str) -> int:
    """Octets the machine is fed in all."""
    return peer_messages(side, name)[-1].end


def assert_same_as_whole(side: Side, name: str, cuts: set[int]) -> None:
    """Cut at ``cuts``, the replay sees and sends what the whole-message replay does."""
    cut = replay(side, name, cuts)
    assert cut.events == cut.settled(whole(side, name))
    assert cut.sent == whole(side, name).sent


@pytest.mark.parametrize(("side", "name"), CASES, ids=IDS)
def test_whole_message_replay_is_the_transcript(side: Side, name: str) -> None:
    # The baseline itself: one event per peer message at its last octet, the recorded answers.
    baseline = whole(side, name)
    expected = [
        (p.end, side.events[p.message.name])
        for p in peer_messages(side, name)
        if p.message.name in side.events
    ]
    assert [at for at, _ in baseline.events] == [at for at, _ in expected]
    assert all(
        isinstance(e, kind) for (_, e), (_, kind) in zip(baseline.events, expected, strict=True)
    )
    assert baseline.sent == Recorded(name).stream(side.own)


@pytest.mark.parametrize(("side", "name"), CASES, ids=IDS)
def test_one_octet_at_a_time(side: Side, name: str) -> None:
    assert_same_as_whole(side, name, set(range(1, peer_length(side, name))))


@pytest.mark.parametrize(("side", "name"), CASES, ids=IDS)
def test_as_the_recorded_tcp_segments(side: Side, name: str) -> None:
    assert_same_as_whole(side, name, segment_ends(side, name))


@pytest.mark.parametrize(("side", "name"), CASES, ids=IDS)
def test_every_cut_inside_each_message(side: Side, name: str) -> None:
    # Each pass cuts every peer message at the same offset k: every offset inside every message.
    messages = peer_messages(side, name)
    for k in range(1, max(len(p.message.wire) for p in messages)):
        inside = {p.start + k for p in messages if k < len(p.message.wire)}
        assert_same_as_whole(side, name, message_ends(side, name) | inside)


@pytest.mark.parametrize(("side", "name"), CASES, ids=IDS)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_cuts(side: Side, name: str, data: st.DataObject) -> None:
    cuts = st.sets(st.integers(1, peer_length(side, name) - 1), max_size=40)
    assert_same_as_whole(side, name, data.draw(cuts, label="cuts"))


# The transcripts' slots are all of type 1 (owping -i 0.01f), the Command Number of
# Request-Session, so they cannot tell a slot block from a new command. powstream's and
# owping's default schedules use type 0 (exponential): the same requests with such slots.
EXPONENTIAL_FIRST = (
    Slot(SlotType.EXPONENTIAL, 1 << 32),
    Slot(SlotType.FIXED, 1 << 30),
    Slot(SlotType.EXPONENTIAL, 1 << 31),
)
SLOTS = st.lists(
    st.builds(Slot, st.sampled_from(SlotType), st.integers(0, 2**64 - 1)), min_size=1, max_size=4
)


def started_server(rec: Recorded) -> OwampServerConnection:
    """An OWAMP server past the recorded set-up, with the recorded channels when secured."""
    server = OwampServerConnection()
    server.greet(rec.greeting())
    server.receive_data(rec.stream(CLIENT_TO_SERVER)[: SetUpResponse.SIZE])
    assert server.next_event() == SetUpReceived(rec.setup())
    server.start(rec.server_start(), *rec.server_channels())
    return server


def request_with(rec: Recorded, slots: tuple[Slot, ...]) -> tuple[RequestSession, bytes]:
    """The transcript's first Request-Session with ``slots``, sealed as the client would."""
    first = next(
        p.message for p in peer_messages(OWAMP_SERVER, rec.name) if p.message.name == REQUEST
    )
    request = replace(recorded_request(first), slots=slots)
    tx = rec.client_channels()[0] or OpenControlSender()
    return request, b"".join(tx.seal(part) for part in request.encode_parts())


def events_per_chunk(server: OwampServerConnection, chunks: list[bytes]) -> list[list[object]]:
    """The events the server reports after each chunk is fed, until it closes (as its driver)."""
    out: list[list[object]] = []
    for chunk in chunks:
        server.receive_data(chunk)
        out.append([])
        while server.state is not ServerState.CLOSED:
            event = server.next_event()
            if event is NEED_DATA:
                break
            out[-1].append(event)
    return out


@pytest.mark.parametrize("name", OWAMP)
def test_request_session_cut_anywhere_is_one_request(name: str) -> None:
    # Fixed part and slots in two writes (cut at FIXED_PART) is what owping and powstream do.
    rec = Recorded(name)
    request, wire = request_with(rec, EXPONENTIAL_FIRST)
    assert request.encode_slots()[0] == 0  # the octet once read as Command Number 0
    for k in range(1, len(wire)):
        got = events_per_chunk(started_server(rec), [wire[:k], wire[k:]])
        assert got == [[], [OwampSessionRequested(request)]], f"cut at {k} of {FIXED_PART}+"


@pytest.mark.parametrize("name", OWAMP)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(slots=SLOTS, data=st.data())
def test_request_session_with_any_slots_cut_at_random(
    name: str, slots: list[Slot], data: st.DataObject
) -> None:
    rec = Recorded(name)
    request, wire = request_with(rec, tuple(slots))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(wire) - 1), max_size=12), label="cuts"))
    chunks = [wire[a:b] for a, b in itertools.pairwise([0, *cuts, len(wire)])]
    got = events_per_chunk(started_server(rec), chunks)
    assert got == [[]] * (len(chunks) - 1) + [[OwampSessionRequested(request)]]
