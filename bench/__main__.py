"""``python -m bench [--quick] [--only NAME]...``: run the benchmarks, print one JSON object.

Benchmarks (names for ``--only``):

* ``baseline``: a plain Python UDP echo on loopback at 500 pps, timed by a
  plain sender (``bench.echo``), in two variants: ``plain`` (user-space
  round trip) and ``stamped`` (the TWAMP RTT formula from the same clocks).
* ``rtt``: ``otwamp ping`` against ``otwamp server`` at 500 pps; RTT median
  and p99 (target: median <= 60 µs).
* ``zero_loss``: the highest rate at which a 10,000-packet session has no
  loss and no duplicates (target: >= 20,000 pps), found by doubling from
  1,000 pps up to 100,000 pps, bisecting, and confirming with one more
  session. A session counts only if the sender really kept the rate asked
  (within 5 %); ``zero_loss_limited_by`` says what stopped the search.
* ``zero_loss_auth``, ``zero_loss_enc``: the same search, probes and pass
  rule in authenticated and encrypted mode (``-A MODE -u ID -k FILE``;
  target: >= 10,000 pps each).
* ``setup``: the TWAMP-Control set-up time from the TCP connect to the
  Start-Ack in open, authenticated, encrypted and mixed mode, measured in
  this process with otwamp's client code (``bench.setup_time``), next to two
  baselines timed in the same run: PBKDF2-HMAC-SHA1 with Count 2048 alone
  and a bare TCP connect and close (target: median <= 10 ms in each secured
  mode, with the greeting's Count 2048).
* ``owamp_to``, ``owamp_from``: OWAMP's zero-loss rate in one direction
  (``bench.owamp``): the same search, probe sizes and pass rule, each
  session an ``otwamp owping --to`` (client sends, server receives) or
  ``--from`` (server sends, client receives) against ``otwamp server``
  serving OWAMP only, open mode (target: >= 25,000 pps each way, about what
  perfSONAR's owping reaches here).
* ``setup_ikev2``: the control set-up time with the IKEv2-derived key
  (RFC 7717; the IKE SA set up before the timing) against the pass-phrase,
  in authenticated, encrypted and mixed mode, interleaved in the same run
  against one ``otwamp server`` on 127.0.0.2 with an embedded IKE responder
  (``bench.setup_time``; target: in each mode the ikev2 median is at most
  the pass-phrase median plus 10 %).
* ``sustained``: one ``otwamp ping`` of 1,000,000 packets at 20,000 pps in
  open mode (``bench.sustained``; target: no loss, client RSS <= 1 GB), then
  again with ``--raw`` for the rate the sender kept; ``python -m
  bench.sustained`` adds OWAMP and the records' cost at 10,000,000 packets.
* ``ike``: IKE SA establishments per second, otwamp's initiator against
  ``otwamp ike`` on 127.0.0.1 with ECDSA P-256 certificates and x25519, and
  charon against charon (own netns and config dirs) in the same run
  (``bench.ike``; target: at least charon's rate; charon needs root).

Every session runs ``otwamp ping`` as a process of its own against one
``otwamp server`` process on 127.0.0.1, which offers every mode with a
temporary pass-phrase file and PBKDF2 Count 2048; the figures come from the
packets' timestamps, so process start-up counts toward none of them. The
OWAMP sessions (``otwamp owping``) have an ``otwamp server`` of their own.

The baseline and RTT sessions alternate, so that both see the same machine.
Exit status: 0 when every target that was measured is met, 1 when one is
missed, 2 when a benchmark could not run. Progress goes to stderr.
"""

import argparse
import datetime
import sys
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from typing import Any

from bench.baseline import echo_summary
from bench.echo import EchoRun, send_paced
from bench.ike import ike_target, run_ike
from bench.machine import finish_run, machine_facts
from bench.owamp import DIRECTIONS, owping_sessions
from bench.procs import (
    BenchError,
    Secrets,
    bench_secrets,
    echo_server,
    otwamp_server,
    security_arguments,
)
from bench.stats import JsonObject
from bench.sustained import MAX_RSS_MB as SUSTAINED_MAX_RSS_MB
from bench.sustained import PACKETS as SUSTAINED_PACKETS
from bench.sustained import RATE as SUSTAINED_RATE
from bench.sustained import run_sustained
from bench.twamp import PingRun, log, ping_sessions, rtt_summary, run_ping, zero_loss_search
from otwamp.wire.registry import TwampMode

NAMES: tuple[str, ...] = ("baseline", "rtt", "zero_loss", "zero_loss_auth", "zero_loss_enc")
NAMES = (*NAMES, "owamp_to", "owamp_from")  # bench.owamp
NAMES = (*NAMES, "setup", "setup_ikev2", "ike")  # bench.setup_time, bench.ike
NAMES = (*NAMES, "sustained")  # bench.sustained
# The benchmarks that talk to the TWAMP server on 127.0.0.1 (setup_ikev2 has its own).
TWAMP_SERVER = {"rtt", "zero_loss", "zero_loss_auth", "zero_loss_enc", "setup", "sustained"}
TARGET_ZERO_LOSS_PPS = 20_000
TARGET_SECURED_ZERO_LOSS_PPS = 10_000  # authenticated and encrypted modes
TARGET_OWAMP_ZERO_LOSS_PPS = 25_000  # per direction
TARGET_RTT_MEDIAN_US = 60.0
TARGET_SETUP_MS = 10.0  # secured modes, PBKDF2 Count 2048
RTT_RATE = 500  # pps
# The zero-loss benchmarks: name -> (mode, key of its result object, target pps).
ZERO_LOSS = {
    "zero_loss": ("open", "twamp_open", TARGET_ZERO_LOSS_PPS),
    "zero_loss_auth": ("authenticated", "twamp_authenticated", TARGET_SECURED_ZERO_LOSS_PPS),
    "zero_loss_enc": ("encrypted", "twamp_encrypted", TARGET_SECURED_ZERO_LOSS_PPS),
}


@dataclass(frozen=True, slots=True)
class Parameters:
    """Session sizes of one run of the suite."""

    search_packets: int  # per zero-loss probe
    search_start_pps: int
    search_cap_pps: int
    rtt_packets: int  # per RTT or baseline session at RTT_RATE
    repeats: int  # RTT and baseline sessions, alternating
    setup_rounds: int  # control set-ups per mode (after 2 uncounted warm-up rounds)


FULL = Parameters(10_000, 1_000, 100_000, 2_500, 3, 100)
QUICK = Parameters(2_000, 1_000, 100_000, 500, 1, 20)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="otwamp benchmarks; prints one JSON object."
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            f"smaller sessions ({QUICK.search_packets}-packet probes, one RTT run, "
            f"{QUICK.setup_rounds} set-ups per mode)"
        ),
    )
    parser.add_argument(
        "--only", action="append", choices=NAMES, metavar="NAME", help=f"one of {', '.join(NAMES)}"
    )
    return parser.parse_args(argv)


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return round(ours / theirs, 2)


def _versus(ours: float | None, stamped_echo: float | None) -> JsonObject:
    excess = None if ours is None or stamped_echo is None else round(ours - stamped_echo, 3)
    return {
        "twamp": ours,
        "stamped_echo": stamped_echo,
        "ratio": _ratio(ours, stamped_echo),
        "excess_us": excess,
    }


def _stat(summary: JsonObject | None, key: str, stat: str) -> Any:
    part = None if summary is None else summary.get(key)
    return None if part is None else part.get(stat)


def _comparison(
    rtt: JsonObject, plain: JsonObject | None, stamped: JsonObject | None
) -> JsonObject:
    """otwamp's RTT set against the baseline echo of the same run."""
    return {
        "note": (
            "rtt: (T4-T1)-(T3-T2), the same formula and clocks for otwamp and the stamped "
            "echo; round_trip_wall: T4-T1, which adds the reflector's processing (T3-T2); "
            "plain_echo_user_rtt: a send-to-receive round trip timed in the sender's "
            "user space, reflector and both wake-ups included"
        ),
        "rtt_median_us": _versus(
            rtt["median_us"], None if stamped is None else stamped["median_us"]
        ),
        "rtt_p99_us": _versus(rtt["p99_us"], None if stamped is None else stamped["p99_us"]),
        "round_trip_wall_median_us": _versus(
            _stat(rtt, "round_trip_wall", "median_us"),
            _stat(stamped, "round_trip_wall", "median_us"),
        ),
        "processing_median_us": _versus(
            _stat(rtt, "processing", "median_us"), _stat(stamped, "processing", "median_us")
        ),
        "plain_echo_user_rtt_median_us": None if plain is None else plain["median_us"],
        "plain_echo_user_rtt_p99_us": None if plain is None else plain["p99_us"],
    }


def _zero_loss(search: JsonObject) -> JsonObject:
    """The headline figures of a zero-loss search, then the search itself."""
    return {
        "zero_loss_pps": search["zero_loss_pps"],
        "zero_loss_achieved_pps": search["zero_loss_achieved_pps"],
        "zero_loss_confirmed": search["confirmed"],
        "zero_loss_limited_by": search["limited_by"],
        "zero_loss_search": search,
    }


def _run(names: tuple[str, ...], params: Parameters, result: JsonObject) -> None:
    interval = 1.0 / RTT_RATE
    with ExitStack() as stack:
        port, secrets = 0, None
        if set(names) & (TWAMP_SERVER | {"setup_ikev2"}):
            secrets = stack.enter_context(bench_secrets())
        if set(names) & TWAMP_SERVER:
            port = stack.enter_context(otwamp_server(secrets))
        if "setup" in names:
            assert secrets is not None
            try:  # otwamp's client internals: a refactoring may move them
                from bench.setup_time import setup_benchmark
            except ImportError as exc:
                raise BenchError(f"setup: cannot import otwamp's client code: {exc}") from None
            log(f"control set-up, {params.setup_rounds} per mode")
            result["control_setup"] = setup_benchmark(port, secrets, params.setup_rounds)
        if "setup_ikev2" in names:
            assert secrets is not None
            try:
                from bench.setup_time import ikev2_setup_benchmark
            except ImportError as exc:
                raise BenchError(f"setup_ikev2: cannot import otwamp's code: {exc}") from None
            log(f"control set-up, IKEv2-derived key vs pass-phrase, {params.setup_rounds} each")
            result["control_setup_ikev2"] = ikev2_setup_benchmark(secrets, params.setup_rounds)
        echoes: dict[str, int] = {}
        if "baseline" in names:
            for mode in ("plain", "stamped"):
                echoes[mode] = stack.enter_context(echo_server(mode))
        echo_runs: dict[str, list[EchoRun]] = {mode: [] for mode in echoes}
        ping_runs: list[PingRun] = []
        for repeat in range(params.repeats if {"baseline", "rtt"} & set(names) else 0):
            for mode, echo_port in echoes.items():
                run = send_paced(echo_port, mode, params.rtt_packets, interval)
                echo_runs[mode].append(run)
                log(f"baseline {mode} echo, run {repeat + 1}: lost {run.lost}")
            if "rtt" in names:
                ping = run_ping(port, params.rtt_packets, interval)
                ping_runs.append(ping)
                log(f"otwamp ping at {RTT_RATE} pps, run {repeat + 1}: lost {ping.lost}")
        baseline = {
            f"udp_echo_{mode}_{RTT_RATE}pps": echo_summary(runs, RTT_RATE)
            for mode, runs in echo_runs.items()
        }
        if baseline:
            result["baseline"] = baseline
        twamp: JsonObject = {}
        if "zero_loss" in names:
            twamp |= _zero_loss(_search(port, params, "open", secrets))
        if ping_runs:
            twamp[f"rtt_{RTT_RATE}pps"] = rtt_summary(ping_runs, RTT_RATE)
        if twamp:
            result["twamp_open"] = twamp
        for name, (mode, key, _target) in ZERO_LOSS.items():
            if name in names and mode != "open":
                result[key] = _zero_loss(_search(port, params, mode, secrets))
        owamp = [d for d in DIRECTIONS if f"owamp_{d}" in names]
        if owamp:
            owamp_port = stack.enter_context(otwamp_server(protocol="OWAMP"))
            result["owamp_open"] = {
                direction: _zero_loss(_owamp_search(owamp_port, params, direction))
                for direction in owamp
            }
        if "sustained" in names:  # while the server runs
            log(f"sustained: {SUSTAINED_PACKETS:,} packets at {SUSTAINED_RATE:,} pps")
            result["sustained"] = run_sustained(port)
    rtt = twamp.get(f"rtt_{RTT_RATE}pps")
    if rtt is not None and baseline:
        result["comparison"] = _comparison(
            rtt,
            baseline.get(f"udp_echo_plain_{RTT_RATE}pps"),
            baseline.get(f"udp_echo_stamped_{RTT_RATE}pps"),
        )
    if "ike" in names:
        result["ike"] = run_ike(quick=params == QUICK)
    result["targets"] = _targets(result)


def _search(port: int, params: Parameters, mode: str, secrets: Secrets | None) -> JsonObject:
    return zero_loss_search(
        ping_sessions(port, params.search_packets, security_arguments(mode, secrets)),
        params.search_packets,
        params.search_start_pps,
        params.search_cap_pps,
        label="" if mode == "open" else f" ({mode})",
    )


def _owamp_search(port: int, params: Parameters, direction: str) -> JsonObject:
    return zero_loss_search(
        owping_sessions(port, direction, params.search_packets),
        params.search_packets,
        params.search_start_pps,
        params.search_cap_pps,
        label=f" (OWAMP {direction})",
    )


def _zero_loss_target(twamp: JsonObject, target: int) -> JsonObject:
    rate, achieved = twamp["zero_loss_pps"], twamp["zero_loss_achieved_pps"]
    return {
        "target": f">= {target}",
        "measured": rate,
        "achieved_pps": achieved,
        # the sender must really have kept (nearly) the target rate, too
        "pass": bool(
            twamp["zero_loss_confirmed"]
            and rate >= target
            and achieved is not None
            and achieved >= 0.95 * target
        ),
    }


def _setup_target(summary: JsonObject, count: int) -> JsonObject:
    median = summary["median_ms"]
    return {
        "target": f"<= {TARGET_SETUP_MS:g} (median, connect to Start-Ack, Count {count})",
        "measured": median,
        "p95_ms": summary["p95_ms"],
        "max_ms": summary["max_ms"],
        "pass": bool(
            median is not None
            and summary["error_count"] == 0
            and summary["pbkdf2_counts"] == [count]
            and median <= TARGET_SETUP_MS
        ),
    }


def _ikev2_setup_target(setup: JsonObject) -> JsonObject:
    """Per secured mode: the ikev2 median within the tolerance of the pass-phrase median."""
    tolerance = setup["tolerance"]
    measured: JsonObject = {}
    for mode, part in setup["modes"].items():
        ikev2, passphrase = part["ikev2"], part["passphrase"]
        ours, theirs = ikev2["median_ms"], passphrase["median_ms"]
        limit = None if theirs is None else round(theirs * (1 + tolerance), 3)
        derived = ikev2["key_sources"] == ["ikev2"] and all(
            int(word, 16) & TwampMode.IKEV2_DERIVED for word in ikev2["mode_words"]
        )
        measured[mode] = part["versus"] | {
            "limit_ms": limit,
            "pass": bool(
                ours is not None
                and limit is not None
                and derived
                and ikev2["error_count"] == 0
                and passphrase["error_count"] == 0
                and ours <= limit
            ),
        }
    return {
        "target": (
            f"ikev2 median <= passphrase median x {1 + tolerance:g} in each secured mode "
            "(connect to Start-Ack, same server, same run, IKE SA already set up)"
        ),
        "tolerance": tolerance,
        "measured": measured,
        "pass": bool(measured) and all(m["pass"] for m in measured.values()),
    }


def _targets(result: JsonObject) -> JsonObject:
    targets: JsonObject = {}
    twamp = result.get("twamp_open", {})
    for _mode, key, target in ZERO_LOSS.values():
        figures = result.get(key, {})
        if "zero_loss_pps" in figures:
            suffix = "" if key == "twamp_open" else "_" + key.removeprefix("twamp_")
            targets[f"zero_loss_pps{suffix}"] = _zero_loss_target(figures, target)
    setup = result.get("control_setup")
    if setup is not None:
        for mode, summary in setup["modes"].items():
            if mode != "open":  # the secured modes
                targets[f"setup_ms_{mode}"] = _setup_target(summary, setup["pbkdf2_count"])
    for direction, figures in result.get("owamp_open", {}).items():
        targets[f"owamp_zero_loss_pps_{direction}"] = _zero_loss_target(
            figures, TARGET_OWAMP_ZERO_LOSS_PPS
        )
    ikev2 = result.get("control_setup_ikev2")
    if ikev2 is not None:
        targets["setup_ms_ikev2_vs_passphrase"] = _ikev2_setup_target(ikev2)
    rtt = twamp.get(f"rtt_{RTT_RATE}pps")
    if rtt is not None:
        measured = rtt["median_us"]
        targets[f"rtt_{RTT_RATE}pps_median_us"] = {
            "target": f"<= {TARGET_RTT_MEDIAN_US:g}",
            "measured": measured,
            "pass": measured is not None and rtt["lost"] == 0 and measured <= TARGET_RTT_MEDIAN_US,
        }
    sustained = result.get("sustained")
    if sustained is not None:
        rss = sustained["client_max_rss_mb"]
        targets["sustained_zero_loss_rss_mb"] = {
            "target": f"0 lost of {SUSTAINED_PACKETS:,} at {SUSTAINED_RATE:,} pps, "
            f"client RSS <= {SUSTAINED_MAX_RSS_MB} MB",
            "measured": {"lost": sustained["lost"], "client_max_rss_mb": rss},
            "pass": sustained["lost"] == 0 and rss <= SUSTAINED_MAX_RSS_MB,
        }
    ike = None if "ike" not in result else ike_target(result["ike"])
    if ike is not None:
        targets["ike_sas_per_s"] = ike
    return targets


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and print the JSON object; return the exit status."""
    args = _arguments(argv)
    names = tuple(args.only) if args.only else NAMES
    params = QUICK if args.quick else FULL
    began = time.perf_counter()
    result: JsonObject = {
        "bench": "otwamp",
        "run": "quick" if args.quick else "full",
        "benchmarks": list(names),
        "started_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_facts(),
        "parameters": asdict(params) | {"rtt_rate_pps": RTT_RATE},
    }
    return finish_run(result, lambda: _run(names, params, result), began, BenchError)


if __name__ == "__main__":
    sys.exit(main())
