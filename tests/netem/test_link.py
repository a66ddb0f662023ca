"""The emulator's decisions (link.py) and parsers (emulator.py), without sockets or namespaces."""

import contextlib
import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.results.ordering import count_reordered, first_copies
from tests.netem.binomial import binomial_interval
from tests.netem.emulator import VNET_HDR_LEN, parse_impairment, udp_flow
from tests.netem.link import Direction, Frame, Impairment

MS = 1_000_000


def simulate(direction: Direction, count: int, interval: int = MS) -> list[Frame]:
    """Feed ``count`` packets ``interval`` ns apart and send each frame exactly when due."""
    arrivals = [i * interval for i in range(count)]
    sent: list[Frame] = []
    while arrivals or direction.next_due() is not None:
        due = direction.next_due()
        if arrivals and (due is None or arrivals[0] <= due):
            direction.arrive(b"frame", "flow", arrivals.pop(0))
            continue
        assert due is not None
        for frame in direction.pop_due(due):
            direction.sent(frame, due)
            sent.append(frame)
    return sent


def test_a_seed_fixes_every_decision() -> None:
    knobs = Impairment(delay_us=100, jitter_us=50, loss=0.1, duplicate=0.1, reorder=0.1)
    runs = [simulate(Direction("a2b", knobs, seed), 500) for seed in (5, 5, 6)]
    keys = [[(f.index, f.copy, f.due) for f in run] for run in runs]
    assert keys[0] == keys[1] != keys[2]


def test_jitter_alone_keeps_the_order_and_its_bound() -> None:
    knobs = Impairment(delay_us=2000, jitter_us=1500, jitter="normal")
    direction = Direction("a2b", knobs, 1)
    sent = simulate(direction, 1000, interval=MS // 2)  # jitter wider than the interval
    assert [f.index for f in sent] == list(range(1000))
    assert direction.tally.reordered == 0
    drawn = direction.report()["drawn_us"]
    assert drawn["min"] >= 500 and drawn["max"] <= 3500
    applied = direction.report()["delay_us"]
    assert applied["mean"] >= drawn["mean"]  # FIFO only ever adds


@pytest.mark.parametrize("gap", [1, 3])
def test_reordering_is_counted_as_rfc_4737_does(gap: int) -> None:
    direction = Direction(
        "a2b", Impairment(delay_us=300, duplicate=0.05, reorder=0.05, reorder_gap=gap), 2
    )
    sent = simulate(direction, 2000)
    arrival_order = list(first_copies(f.index for f in sent))
    assert direction.tally.reordered == count_reordered(arrival_order) > 0
    assert direction.tally.held >= direction.tally.reordered
    order = [f.index for f in sent if f.copy == 0]
    for held in [f for f in sent if f.held and f.copy == 0][:-gap]:  # not those timed out
        position = order.index(held.index)
        assert sum(index > held.index for index in order[:position]) >= gap


def test_loss_and_duplication_are_bernoulli() -> None:
    direction = Direction("a2b", Impairment(loss=0.05, duplicate=0.02), 3)
    sent = simulate(direction, 5000)
    tally = direction.tally
    low, high = binomial_interval(5000, 0.05)
    assert low <= tally.dropped <= high
    assert tally.sent == len(sent) == 5000 - tally.dropped + tally.duplicated
    assert tally.duplicated == sum(f.copy for f in sent) > 0


def test_a_held_packet_with_no_followers_leaves_at_its_timeout() -> None:
    direction = Direction("a2b", Impairment(reorder=1.0, reorder_timeout_us=500), 4)
    direction.arrive(b"x", "flow", 0)
    assert direction.next_due() == 500_000
    assert direction.pop_due(499_999) == []
    assert [f.index for f in direction.pop_due(500_000)] == [0]


def test_reports_restart_after_reset() -> None:
    direction = Direction("a2b", Impairment(), 1)
    simulate(direction, 10)
    assert direction.report()["flows"]["flow"]["sent"] == 10
    direction.reset()
    assert direction.report()["flows"] == {} and direction.report()["sent"] == 0


@pytest.mark.parametrize(
    "bad", [{"loss": 1.5}, {"delay_us": -1}, {"jitter": "pareto"}, {"reorder_gap": 0}]
)
def test_impossible_impairments_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Impairment(**bad)  # type: ignore[arg-type]


def test_impairments_parse_from_the_command_line_form() -> None:
    knobs = parse_impairment("delay=5ms,jitter=500us,shape=normal,loss=2%,duplicate=0.01,gap=3")
    assert knobs == Impairment(5000, 500, "normal", 0.02, 0.01, 0.0, 3)
    for bad in ("delay=5", "speed=1", "loss=x", "gap=1.5", "timeout=-1ms"):
        with pytest.raises(ValueError):
            parse_impairment(bad)


@given(st.text(max_size=60))
def test_any_impairment_text_parses_or_raises_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        parse_impairment(text)


def frame(payload: bytes, source_port: int, destination_port: int, v6: bool = False) -> bytes:
    udp = struct.pack("!HHHH", source_port, destination_port, 8 + len(payload), 0) + payload
    if v6:
        ip = struct.pack("!IHBB", 6 << 28, len(udp), 17, 64)
        ip += socket.inet_pton(socket.AF_INET6, "fd77::1") + socket.inet_pton(
            socket.AF_INET6, "fd77::2"
        )
        ethertype = 0x86DD
    else:
        ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0)
        ip += socket.inet_aton("10.77.0.1") + socket.inet_aton("10.77.0.2")
        ethertype = 0x0800
    return bytes(VNET_HDR_LEN) + bytes(12) + struct.pack("!H", ethertype) + ip + udp


def test_udp_flows_are_recognised_and_filtered_by_port() -> None:
    assert udp_flow(frame(b"x", 40000, 20001), None) == "10.77.0.1:40000>10.77.0.2:20001"
    assert udp_flow(frame(b"x", 40000, 20001, v6=True), (20000, 20099)) == (
        "fd77::1:40000>fd77::2:20001"
    )
    assert udp_flow(frame(b"x", 20050, 40000), (20000, 20099)) is not None
    assert udp_flow(frame(b"x", 40000, 40001), (20000, 20099)) is None
    tcp = bytearray(frame(b"x", 40000, 20001))
    tcp[VNET_HDR_LEN + 14 + 9] = 6
    assert udp_flow(bytes(tcp), None) is None


@given(st.binary(max_size=120))
def test_any_frame_is_a_flow_or_none(data: bytes) -> None:
    flow = udp_flow(data, None)
    assert flow is None or isinstance(flow, str)


def test_binomial_interval_is_the_exact_one() -> None:
    assert binomial_interval(1000, 0.05) == (33, 69)  # R: qbinom(c(.005, .995), 1000, .05)
    assert binomial_interval(10, 0.5) == (1, 9)
