"""TWAMP through the ``otwamp ping`` CLI against ``otwamp server``.

Each session is a separate ``otwamp ping ... --raw --json`` process, the way
an operator runs it. Its per-packet records carry T1..T4, so the figures
below come from the packets' own timestamps: the client's start-up, the
control exchange and the JSON output never count toward a time or a loss.
RTT is (T4 - T1) - (T3 - T2) (RFC 5357 §4.2.1), exactly as ``--json`` reports
it; duplicates are the records the CLI marks so. Open mode by default; extra
arguments such as ``-A encrypted -u ID -k FILE`` select a secured mode.

The zero-loss rate search takes its sessions as a function of the rate, so
OWAMP (``bench.owamp``) runs the same search with the same pass rule.
"""

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from bench.procs import otwamp_command
from bench.stats import JsonObject, distribution_us, median

REPLY_WAIT = 2.0  # seconds, otwamp ping's default --wait
SENDER_LIMITED = 0.95  # achieved below this share of the asked rate: the sender fell behind


def log(message: str) -> None:
    """Progress on stderr; stdout carries only the JSON result."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


@dataclass(slots=True)
class SenderRun:
    """One measurement session of a separate client process, seen from its sender.

    What the zero-loss search needs of any protocol: how many packets were
    asked for, sent, received, lost and duplicated, and when each one was
    sent. ``PingRun`` (TWAMP) and ``bench.owamp.OwpingRun`` (OWAMP) add their
    own figures through ``figures``.
    """

    count: int
    interval: float
    sent: int = 0
    received: int = 0
    lost: int = 0
    duplicates: int = 0
    t1_ns: list[int] = field(default_factory=list)  # send times, in sender sequence order
    exit_status: int = 0
    error: str | None = None
    process_s: float = 0.0  # the whole client process, start-up included

    @property
    def session_s(self) -> float:
        """Seconds from the first to the last send."""
        return (max(self.t1_ns) - min(self.t1_ns)) / 1e9 if len(self.t1_ns) > 1 else 0.0

    @property
    def achieved_pps(self) -> float | None:
        """The send rate the sender really kept: packets after the first over the span."""
        span = self.session_s
        return (len(self.t1_ns) - 1) / span if span > 0 else None

    @property
    def max_send_lag_us(self) -> float | None:
        """How far behind its fixed schedule the sender fell at worst."""
        if not self.t1_ns:
            return None
        first, step = self.t1_ns[0], self.interval * 1e9
        return round(max(t - first - i * step for i, t in enumerate(self.t1_ns)) / 1000, 1)

    @property
    def clean(self) -> bool:
        """Every packet sent and answered once, and the client said it completed."""
        return (
            self.error is None
            and self.sent == self.count
            and self.lost == 0
            and self.duplicates == 0
        )

    def figures(self) -> JsonObject:
        """The protocol's own figures for a zero-loss probe (none here)."""
        return {}


@dataclass(slots=True)
class PingRun(SenderRun):
    """One ``otwamp ping`` session, from its raw per-packet records (T1 in ``t1_ns``)."""

    rtt_ns: list[int] = field(default_factory=list)
    wall_ns: list[int] = field(default_factory=list)  # T4 - T1
    processing_ns: list[int] = field(default_factory=list)  # T3 - T2
    t3_ns: list[int] = field(default_factory=list)  # when the reflector sent each reply

    @property
    def reflected_pps(self) -> float | None:
        """The rate the reflector sent replies at: below the send rate, it fell behind."""
        span = (max(self.t3_ns) - min(self.t3_ns)) / 1e9 if len(self.t3_ns) > 1 else 0.0
        return (len(self.t3_ns) - 1) / span if span > 0 else None

    def figures(self) -> JsonObject:
        """The reflector's rate, RTT and processing time of a zero-loss probe."""
        reflected = self.reflected_pps
        rtt = distribution_us(self.rtt_ns)
        processing = distribution_us(self.processing_ns)
        return {
            "reflected_pps": None if reflected is None else round(reflected),
            "rtt_median_us": None if rtt is None else rtt["median_us"],
            "processing_median_us": None if processing is None else processing["median_us"],
            "processing_p99_us": None if processing is None else processing["p99_us"],
        }


# One session at the rate given (pps), run for the zero-loss search.
Session = Callable[[int], SenderRun]
R = TypeVar("R", bound=SenderRun)


def run_ping(port: int, count: int, interval: float, arguments: Sequence[str] = ()) -> PingRun:
    """Run ``otwamp ping 127.0.0.1:PORT [ARGUMENTS] -c COUNT -i INTERVAL --raw --json``."""
    return run_client(PingRun(count, interval), "ping", port, arguments, REPLY_WAIT, _add_record)


def run_client(
    run: R,
    program: str,
    port: int,
    arguments: Sequence[str],
    wait: float,
    add_record: Callable[[R, JsonObject], None],
) -> R:
    """Run ``otwamp PROGRAM 127.0.0.1:PORT [ARGUMENTS] -c COUNT -i INTERVAL --raw --json``.

    COUNT and INTERVAL are ``run``'s; ``add_record`` adds each raw record to ``run``.
    """
    command = [
        *otwamp_command(),
        program,
        f"127.0.0.1:{port}",
        *arguments,
        "-c",
        str(run.count),
        "-i",
        repr(run.interval),
        "--wait",
        repr(wait),
        "--raw",
        "--json",
    ]
    began = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=run.count * run.interval + wait + 60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        run.error = f"otwamp {program} did not finish in time"
        return run
    run.process_s = round(time.perf_counter() - began, 3)
    run.exit_status = done.returncode
    if done.returncode != 0:
        reason = done.stderr.strip().splitlines()
        run.error = reason[-1] if reason else f"otwamp {program} exited {done.returncode}"
    for line in done.stdout.splitlines():
        add_record(run, json.loads(line))
    return run


def _add_record(run: PingRun, record: JsonObject) -> None:
    if record["lost"]:
        run.sent += 1
        run.lost += 1
        run.t1_ns.append(record["t1"]["ns"])
        return
    if record["duplicate"]:
        run.duplicates += 1
        return
    t1, t2, t3, t4 = (record[key]["ns"] for key in ("t1", "t2", "t3", "t4"))
    run.sent += 1
    run.received += 1
    run.t1_ns.append(t1)
    run.rtt_ns.append((t4 - t1) - (t3 - t2))
    run.wall_ns.append(t4 - t1)
    run.processing_ns.append(t3 - t2)
    run.t3_ns.append(t3)


# --- zero-loss rate ------------------------------------------------------------


def _probe_json(rate: int, run: SenderRun) -> JsonObject:
    achieved = run.achieved_pps
    sender_limited = achieved is None or achieved < SENDER_LIMITED * rate
    return {
        "rate_pps": rate,
        "pass": run.clean and not sender_limited,
        "zero_loss": run.clean,
        "achieved_pps": None if achieved is None else round(achieved),
        "sender_limited": sender_limited,
        "max_send_lag_us": run.max_send_lag_us,
        "sent": run.sent,
        "received": run.received,
        "lost": run.lost,
        "duplicates": run.duplicates,
        **run.figures(),
        "session_s": round(run.session_s, 3),
        "error": run.error,
    }


def ping_sessions(port: int, count: int, arguments: Sequence[str] = ()) -> Session:
    """``count``-packet ``otwamp ping`` sessions with ``arguments``, for ``zero_loss_search``."""
    return lambda rate: run_ping(port, count, 1.0 / rate, arguments)


def zero_loss_search(
    session: Session,
    count: int,
    start: int,
    cap: int,
    resolution: float = 0.05,
    label: str = "",
) -> JsonObject:
    """The highest rate (pps) at which a ``count``-packet session loses nothing.

    ``session(rate)`` runs one ``count``-packet session at ``rate`` pps (a
    client process of its own: ``ping_sessions`` for TWAMP, ``bench.owamp``
    for OWAMP) and returns its sender's view.
    Double from ``start`` up to ``cap``, then bisect between the highest rate
    that passed and the lowest that failed down to ``resolution`` of the
    former (at least 100 pps), and confirm the result with one more session.
    A failed confirmation lowers the result to the highest rate that passed
    below it and bisects again, three times at most; if every confirmation
    failed (near the sender's ceiling its rate wavers), the rates that passed
    before are re-tested from the highest down, three at most, without more
    bisecting (``confirmed_walking_down`` counts those sessions).
    A session passes with no loss and no duplicates, sent at the rate asked:
    a sender that falls behind (achieved below 95 % of the rate) sends a
    gentler session than the one asked for, which proves nothing about the
    rate asked. ``highest_zero_loss_asked_pps`` is the highest rate asked
    whose session lost nothing however fast it was really sent. ``label``
    goes to the log.
    """
    probes: list[JsonObject] = []
    passed: set[int] = set()

    def test(rate: int) -> bool:
        run = session(rate)
        probe = _probe_json(rate, run)
        probes.append(probe)
        log(
            f"zero-loss probe{label} {rate} pps x {count}: {'pass' if probe['pass'] else 'FAIL'}"
            f" (achieved {probe['achieved_pps']} pps"
            f"{', sender limited' if probe['sender_limited'] else ''}, lost {run.lost},"
            f" duplicates {run.duplicates}{', ' + run.error if run.error else ''})"
        )
        if probe["pass"]:
            passed.add(rate)
        return bool(probe["pass"])

    def bisect(low: int, high: int | None) -> tuple[int, int | None]:
        while high is not None and high - low > max(low * resolution, 100):
            middle = int(round((low + high) / 2, -2))
            if not low < middle < high:
                break
            if test(middle):
                low = middle
            else:
                high = middle
        return low, high

    low, high, rate = 0, None, start
    while True:  # double up to the cap
        if not test(rate):
            high = rate
            break
        low = rate
        if rate >= cap:
            break
        rate = min(rate * 2, cap)
    while low == 0 and rate > 250:  # even the start failed: halve down (to 250 pps at least)
        rate //= 2
        if test(rate):
            low = rate
        else:
            high = rate
    confirmed = False
    for _attempt in range(3):
        if low == 0:
            break
        low, high = bisect(low, high)
        if test(low):
            confirmed = True
            break
        high = low  # a failed confirmation: the rate is not zero-loss after all
        low = max((r for r in passed if r < high), default=0)
    walked_down = 0
    while not confirmed and low > 0 and walked_down < 3:
        # Near the sender's ceiling every confirmation can fail; re-test the rates
        # that passed before, highest first, without bisecting again.
        walked_down += 1
        if test(low):
            confirmed = True
        else:
            high = low
            low = max((r for r in passed if r < high), default=0)
    final = [p for p in probes if p["rate_pps"] == low and p["pass"]]
    lossless = [p for p in probes if p["zero_loss"]]
    highest = max(lossless, key=lambda p: (p["rate_pps"], p["achieved_pps"]), default=None)
    return {
        "zero_loss_pps": low,
        "confirmed": confirmed,
        "confirmed_walking_down": walked_down,
        "capped": low >= cap,
        "cap_pps": cap,
        "zero_loss_achieved_pps": final[-1]["achieved_pps"] if final else None,
        "lowest_failing_pps": high,
        "highest_zero_loss_asked_pps": None if highest is None else highest["rate_pps"],
        "highest_zero_loss_asked_achieved_pps": None
        if highest is None
        else highest["achieved_pps"],
        "limited_by": _limited_by(probes, low, cap),
        "packets_per_probe": count,
        "probes": probes,
    }


def _limited_by(probes: list[JsonObject], low: int, cap: int) -> list[str]:
    """Why no higher rate passed: "cap", "sender" (fell behind), "loss" (or duplicates)."""
    reasons = {"cap"} if low >= cap else set()
    for probe in probes:
        if probe["rate_pps"] > low and not probe["pass"]:
            reasons.add("sender" if probe["zero_loss"] else "loss")
    return sorted(reasons)


# --- RTT at a low rate -------------------------------------------------------------


def _pooled(runs: list[PingRun], pick: Callable[[PingRun], list[int]]) -> list[int]:
    return [value for run in runs for value in pick(run)]


def rtt_summary(runs: list[PingRun], rate: int) -> JsonObject:
    """Pooled RTT of repeated sessions at ``rate``, with each run's median."""
    rtt = distribution_us(_pooled(runs, lambda run: run.rtt_ns))
    per_run = [distribution_us(run.rtt_ns) for run in runs]
    return {
        "rate_pps": rate,
        "packets_per_run": runs[0].count if runs else 0,
        "runs": len(runs),
        "sent": sum(run.sent for run in runs),
        "received": sum(run.received for run in runs),
        "lost": sum(run.lost for run in runs),
        "duplicates": sum(run.duplicates for run in runs),
        "median_us": None if rtt is None else rtt["median_us"],
        "p99_us": None if rtt is None else rtt["p99_us"],
        "rtt": rtt,
        "per_run_median_us": [None if d is None else d["median_us"] for d in per_run],
        "median_of_run_medians_us": median(d["median_us"] for d in per_run if d is not None),
        "round_trip_wall": distribution_us(_pooled(runs, lambda run: run.wall_ns)),
        "processing": distribution_us(_pooled(runs, lambda run: run.processing_ns)),
        "errors": [run.error for run in runs if run.error],
    }
