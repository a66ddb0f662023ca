"""TWAMP session metrics from hand-built records."""

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otwamp.results.metrics import Range, rtt_ns, summarize_twamp
from otwamp.results.records import Dropped, Reply, TwampSessionRecord

MakeReply = Callable[..., Reply]
MakeRecord = Callable[..., TwampSessionRecord]


def test_clean_session(make_reply: MakeReply, make_record: MakeRecord) -> None:
    replies = [make_reply(seq, fwd=50_000 + 1_000 * seq) for seq in range(3)]
    summary = summarize_twamp(make_record(3, replies))
    packets = summary.packets
    assert (packets.sent, packets.received, packets.lost) == (3, 3, 0)
    assert (packets.duplicates, packets.reordered, packets.dropped) == (0, 0, 0)
    # RTT = forward 50/51/52 us + backward 20 us; processing is subtracted.
    assert summary.rtt.delay is not None
    assert (summary.rtt.delay.min, summary.rtt.delay.max) == (70e-6, 72e-6)
    assert summary.rtt.delay.median == 71e-6
    assert summary.rtt.jitter == pytest.approx(1e-6)
    forward = summary.forward.one_way
    assert forward.sync
    assert forward.error == 2e-9
    assert forward.delays.delay is not None
    assert forward.delays.delay.mean == pytest.approx(51e-6)
    assert summary.backward.one_way.delays.delay is not None
    assert summary.backward.one_way.delays.delay.max == 20e-6
    assert summary.processing is not None
    assert summary.processing.median == 5e-6
    assert summary.completed


def test_rtt_is_valid_with_unsynchronized_clocks(make_reply: MakeReply) -> None:
    # The reflector's clock is 1 s ahead: one-way delays are nonsense, RTT is not.
    reply = make_reply(0, fwd=1_000_000_000 + 50_000, back=20_000 - 1_000_000_000)
    assert rtt_ns(reply) == 70_000


def test_sync_flags_per_direction(make_reply: MakeReply, make_record: MakeRecord) -> None:
    replies = [make_reply(0), make_reply(1, syncs=(True, True, False, True))]
    summary = summarize_twamp(make_record(2, replies))
    assert summary.forward.one_way.sync
    assert not summary.backward.one_way.sync


def test_error_is_largest_combined_estimate(make_reply: MakeReply, make_record: MakeRecord) -> None:
    replies = [
        make_reply(0, errors=(1e-6, 2e-6, 1e-9, 1e-9)),
        make_reply(1, errors=(1e-9, 1e-9, 4e-6, 5e-6)),
    ]
    summary = summarize_twamp(make_record(2, replies))
    assert summary.forward.one_way.error == pytest.approx(3e-6)
    assert summary.backward.one_way.error == pytest.approx(9e-6)


def test_lost_packet_does_not_make_session_unsynchronized(
    make_reply: MakeReply, make_record: MakeRecord
) -> None:
    # Design D11: twping prints "unsync" when a packet is lost; we do not.
    summary = summarize_twamp(make_record(3, [make_reply(0), make_reply(2, 1)]))
    assert summary.forward.one_way.sync
    assert summary.backward.one_way.sync


def test_loss_per_direction(make_reply: MakeReply, make_record: MakeRecord) -> None:
    # 10 sent; the reflector got seqs 0..7 (numbered 0..7); replies 2 and 5 were lost.
    replies = [make_reply(seq) for seq in range(8) if seq not in (2, 5)]
    summary = summarize_twamp(make_record(10, replies))
    assert (summary.packets.received, summary.packets.lost) == (6, 4)
    assert summary.forward.lost == 2
    assert summary.backward.lost == 2


def test_lost_last_replies_are_charged_forward(
    make_reply: MakeReply, make_record: MakeRecord
) -> None:
    # The documented approximation: the reflector's last packets are invisible.
    summary = summarize_twamp(make_record(4, [make_reply(0), make_reply(1)]))
    assert (summary.forward.lost, summary.backward.lost) == (2, 0)
    assert summary.packets.lost == 2


def test_duplicates_per_direction(make_reply: MakeReply, make_record: MakeRecord) -> None:
    replies = [
        make_reply(0, 0),
        make_reply(0, 1),  # forward duplicate: the reflector numbered a second copy
        make_reply(1, 2),
        make_reply(2, 3),
        make_reply(2, 3, back=30_000),  # backward duplicate: same reflector packet twice
    ]
    summary = summarize_twamp(make_record(3, replies))
    assert summary.packets.duplicates == 2
    assert summary.forward.duplicates == 1
    assert summary.backward.duplicates == 1
    assert (summary.packets.lost, summary.forward.lost, summary.backward.lost) == (0, 0, 0)
    assert summary.packets.reordered == 0
    # The first copy counts: the backward duplicate's 30 us is not in the RTT.
    assert summary.rtt.delay is not None
    assert summary.rtt.delay.max == 70e-6
    # Each reflector packet counts once backward, the forward duplicate included.
    assert summary.backward.one_way.delays.delay is not None
    assert summary.backward.one_way.delays.delay.count == 4


def test_forward_reordering(make_reply: MakeReply, make_record: MakeRecord) -> None:
    # The reflector saw 0, 2, 1 (its numbering) and the replies kept that order.
    replies = [make_reply(0, 0), make_reply(2, 1), make_reply(1, 2)]
    summary = summarize_twamp(make_record(3, replies))
    assert summary.packets.reordered == 1
    assert summary.forward.reordered == 1
    assert summary.backward.reordered == 0


def test_backward_reordering(make_reply: MakeReply, make_record: MakeRecord) -> None:
    # The reflector saw 0, 1, 2 in order; reply 1 arrived after reply 2.
    replies = [make_reply(0), make_reply(2), make_reply(1)]
    summary = summarize_twamp(make_record(3, replies))
    assert summary.packets.reordered == 1
    assert summary.forward.reordered == 0
    assert summary.backward.reordered == 1


def test_rfc4737_table_1_round_trip(make_reply: MakeReply, make_record: MakeRecord) -> None:
    arrivals = [1, 2, 3, 5, 6, 7, 8, 4, 9, 10]
    summary = summarize_twamp(make_record(11, [make_reply(seq) for seq in arrivals]))
    assert summary.packets.reordered == 1


def test_ipdv_and_pdv_forward(make_reply: MakeReply, make_record: MakeRecord) -> None:
    # Forward delays 50, 60, (lost), 40, 45 us by seq.
    delays = {0: 50_000, 1: 60_000, 3: 40_000, 4: 45_000}
    replies = [make_reply(seq, rseq, fwd=fwd) for rseq, (seq, fwd) in enumerate(delays.items())]
    summary = summarize_twamp(make_record(5, replies)).forward.one_way.delays
    assert summary.ipdv is not None
    assert summary.pdv is not None
    assert summary.ipdv.min == pytest.approx(5e-6)
    assert summary.ipdv.max == pytest.approx(10e-6)
    assert summary.ipdv.count == 2  # 1-0 and 4-3; pairs with the lost 2 are undefined
    assert summary.jitter == pytest.approx(7.5e-6)
    assert summary.pdv.max == pytest.approx(20e-6)
    assert summary.pdv.median == pytest.approx(5e-6)


def test_backward_ipdv_follows_reflector_numbering(
    make_reply: MakeReply, make_record: MakeRecord
) -> None:
    replies = [make_reply(0, 0, back=20_000), make_reply(1, 1, back=26_000)]
    summary = summarize_twamp(make_record(2, replies)).backward.one_way.delays
    assert summary.ipdv is not None
    assert summary.ipdv.median == pytest.approx(6e-6)


def test_ttl_and_hops(make_reply: MakeReply, make_record: MakeRecord) -> None:
    replies = [make_reply(0, sender_ttl=62, ttl=None), make_reply(1, sender_ttl=60, ttl=None)]
    summary = summarize_twamp(make_record(2, replies, initial_ttl=64))
    assert summary.forward.ttl == Range(60, 62)
    assert summary.forward.hops == Range(2, 4)
    assert summary.backward.ttl is None
    assert summary.backward.hops is None


def test_dropped_counts(make_record: MakeRecord) -> None:
    dropped = Dropped(truncated=1, wrong_source=2, unknown_seq=3, auth_failures=4)
    packets = summarize_twamp(make_record(0, [], dropped=dropped)).packets
    assert packets.auth_failures == 4
    assert packets.dropped == 10


def test_all_lost(make_record: MakeRecord) -> None:
    summary = summarize_twamp(make_record(3, [], completed=False))
    assert (summary.packets.received, summary.packets.lost) == (0, 3)
    assert (summary.forward.lost, summary.backward.lost) == (3, 0)
    assert summary.rtt.delay is None
    assert summary.rtt.jitter is None
    assert summary.processing is None
    assert summary.forward.one_way.error is None
    assert not summary.forward.one_way.sync
    assert summary.forward.ttl is None
    assert not summary.completed


# --- property: a simulated path with loss and duplication --------------------

FATES = st.sampled_from(["ok", "ok", "ok", "lost", "dup"])


def simulate(
    make_reply: MakeReply, forward: list[str], backward: list[str]
) -> tuple[list[Reply], int, int]:
    """Replies of a path with the given fates, with the true forward and backward losses."""
    replies: list[Reply] = []
    rseq = 0
    backward_lost = 0
    fates = iter(backward)
    for seq, fate in enumerate(forward):
        for _ in range({"ok": 1, "lost": 0, "dup": 2}[fate]):
            back = next(fates, "ok")
            backward_lost += back == "lost"
            copies = {"ok": 1, "lost": 0, "dup": 2}[back]
            replies += [make_reply(seq, rseq)] * copies
            rseq += 1
    return replies, forward.count("lost"), backward_lost


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(FATES, max_size=40), st.lists(FATES, max_size=60))
def test_counts_are_consistent(
    make_reply: MakeReply, make_record: MakeRecord, forward: list[str], backward: list[str]
) -> None:
    replies, _, _ = simulate(make_reply, forward, backward)
    packets = summarize_twamp(make_record(len(forward), replies)).packets
    assert packets.received + packets.lost == packets.sent
    assert packets.duplicates == len(replies) - packets.received
    assert packets.reordered == 0


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.sampled_from(["ok", "lost"]), max_size=40),
    st.lists(st.sampled_from(["ok", "lost"]), max_size=40),
)
def test_direction_losses_exact_when_last_reply_arrives(
    make_reply: MakeReply, make_record: MakeRecord, forward: list[str], backward: list[str]
) -> None:
    forward = [*forward, "ok"]
    reflected = forward.count("ok")
    backward = [*backward[: reflected - 1], *["ok"] * (reflected - 1 - len(backward)), "ok"]
    replies, forward_lost, backward_lost = simulate(make_reply, forward, backward)
    summary = summarize_twamp(make_record(len(forward), replies))
    assert summary.forward.lost == forward_lost
    assert summary.backward.lost == backward_lost
    assert summary.forward.lost + summary.backward.lost == summary.packets.lost
