"""OWAMP through the ``otwamp owping`` CLI against ``otwamp server``: the zero-loss rate.

Each session is a separate ``otwamp owping HOST:PORT --to|--from ... --raw
--json`` process, one direction at a time, against an ``otwamp server`` that
serves OWAMP only. Its per-packet records carry each packet's send and
receive timestamps, so the figures come from the packets themselves: the
client's start-up, the control exchange and the Fetch-Session of the "from"
records never count. ``to``: owping sends and the server receives; ``from``:
the server sends and owping receives. The rate search and its pass rule are
``bench.twamp``'s: no loss, no duplicates, nothing skipped, and the sender
kept at least 95 % of the rate asked, from the send timestamps of the first
and the last packet.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.stats import JsonObject, distribution_us
from bench.twamp import SenderRun, Session, run_client

OWPING_WAIT = 0.5  # seconds, --wait: how long the receiver waits for stragglers
DIRECTIONS = ("to", "from")


@dataclass(slots=True)
class OwpingRun(SenderRun):
    """One ``otwamp owping`` session in one direction, from its raw per-packet records.

    ``t1_ns`` holds the send timestamps of the packets that arrived (a lost
    packet's record has none); ``skipped`` counts the packets the sender
    passed over because they were too late to send (RFC 4656 §4.1.1).
    """

    direction: str = "to"
    skipped: int = 0
    delay_ns: list[int] = field(default_factory=list)
    received_ns: list[int] = field(default_factory=list)

    @property
    def received_pps(self) -> float | None:
        """The rate packets arrived at: below the send rate, the receiver fell behind."""
        span = (
            (max(self.received_ns) - min(self.received_ns)) / 1e9
            if len(self.received_ns) > 1
            else 0.0
        )
        return (len(self.received_ns) - 1) / span if span > 0 else None

    def figures(self) -> JsonObject:
        """The direction, arrival rate, skipped packets and one-way delay of a probe."""
        arrived = self.received_pps
        delay = distribution_us(self.delay_ns)
        return {
            "direction": self.direction,
            "skipped": self.skipped,
            "received_pps": None if arrived is None else round(arrived),
            "delay_median_us": None if delay is None else delay["median_us"],
            "delay_p99_us": None if delay is None else delay["p99_us"],
        }


def run_owping(
    port: int, direction: str, count: int, interval: float, arguments: Sequence[str] = ()
) -> OwpingRun:
    """Run ``otwamp owping 127.0.0.1:PORT --DIRECTION -c COUNT -i INTERVAL --raw --json``."""
    run = OwpingRun(count, interval, direction=direction)
    return run_client(run, "owping", port, [f"--{direction}", *arguments], OWPING_WAIT, _add_record)


def _add_record(run: OwpingRun, record: JsonObject) -> None:
    if record.get("skipped"):
        run.skipped += 1
        return
    if record["lost"]:
        run.sent += 1
        run.lost += 1
        return
    if record["duplicate"]:
        run.duplicates += 1
        return
    sent, received = record["sent"]["ns"], record["received"]["ns"]
    run.sent += 1
    run.received += 1
    run.t1_ns.append(sent)
    run.received_ns.append(received)
    run.delay_ns.append(received - sent)


def owping_sessions(
    port: int, direction: str, count: int, arguments: Sequence[str] = ()
) -> Session:
    """``count``-packet owping sessions in ``direction``, for ``zero_loss_search``."""
    return lambda rate: run_owping(port, direction, count, 1.0 / rate, arguments)
