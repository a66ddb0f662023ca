"""``sustained``: long sessions at a high rate, their loss and both ends' memory (issue 15).

``python -m bench.sustained [--packets N] [--rate PPS] [--records N]`` starts
its own ``otwamp server`` processes and prints one JSON object with the
targets; ``python -m bench --only sustained`` runs the TWAMP part against the
suite's server.

* ``twamp``: ``otwamp ping`` of 1,000,000 packets at 20,000 pps in open mode,
  run twice: with ``--json``, for the loss and the client's peak resident
  memory (``wait4``'s ru_maxrss) as a user runs it, then with ``--raw
  --json``, whose per-packet T1s give the rate the sender really kept (the
  summary has no per-packet times) and whose RSS is that of ``--raw``.
* ``owamp_to``: ``otwamp owping --to`` of as many packets at the same rate
  with ``--raw --json``: the server's receiver keeps every record for
  Fetch-Session, the client fetches them all and prints a line per packet.

For both, the server's RSS is read from /proc every 0.2 s during the
session (its peak), with its VmHWM (peak over its whole life: the suite's
earlier benchmarks used the same server).

* ``records``: what a session's records cost a packet, at the size of the
  issue's target (10,000,000 packets): a process of its own builds the
  records of a TWAMP sender (``SentLog`` and ``ReplyLog``) or of an OWAMP
  receiver (``Arrivals``) through their append paths, then computes the
  summary; its peak RSS after each, less that of a process that built none,
  divided by the packets, is what the records cost and what the summary
  adds for a moment.

Sessions of 10,000,000 packets at 20,000 pps would take 500 s each: each
end's RSS at that size (``projection_10m``, the targets' figure; the TWAMP
client's with ``--json`` and with ``--raw --json``) is its
growth over the 1,000,000-packet session, from a 1,000-packet session's
client or the server's RSS before, scaled linearly; ``records`` adds
beside it that RSS plus the records' cost of the 9,000,000 packets more.
``limits`` says what else bounds a session's size.
"""

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from bench.machine import finish_run, machine_facts
from bench.owamp import OwpingRun
from bench.owamp import _add_record as add_arrival
from bench.procs import BenchError, otwamp_command, otwamp_server
from bench.stats import JsonObject
from bench.twamp import PingRun, SenderRun, log
from bench.twamp import _add_record as add_reply
from otwamp.control.server_policy import ServerPolicy

PACKETS = 1_000_000
BASE_PACKETS = 1_000  # a session whose per-packet memory is next to nothing
RATE = 20_000  # pps
TARGET_PACKETS = 10_000_000  # the session: under 1 GB RSS at both ends
MAX_RSS_MB = 1024
WAIT = 2.0  # seconds, --wait
OWPING_WAIT = 1.0  # seconds, owping's --wait
SAMPLE_S = 0.2  # how often a server's RSS is read
OVERRUN_S = 300.0  # a client still running this long after its session is stopped
KIB_PER_MB = 1024
R = TypeVar("R", bound=SenderRun)


# --- resident memory ------------------------------------------------------------


def _status_kb(pid: int, key: str) -> int | None:
    """A /proc/PID/status figure in kB (VmRSS, VmHWM), None once the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    return next((int(line.split()[1]) for line in lines if line.startswith(f"{key}:")), None)


def _mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / KIB_PER_MB, 1)


def server_pid(protocol: str) -> int | None:
    """This process's ``otwamp server`` child serving ``protocol`` ("TWAMP" or "OWAMP")."""
    off = "--owamp-listen" if protocol == "TWAMP" else "--listen"  # bench.procs: the other one
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except (OSError, ValueError):
            continue  # not a process, or gone
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        serving = off in argv and argv[argv.index(off) + 1 :][:1] == ["off"]
        if parent == os.getpid() and "server" in argv and serving:
            return int(entry.name)
    return None


class RssWatch:
    """The peak VmRSS of a process while it is watched, read every SAMPLE_S in a thread."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.before_kb = None if pid is None else _status_kb(pid, "VmRSS")
        self.peak_kb = self.before_kb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> "RssWatch":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        while self.pid is not None and not self._stop.wait(SAMPLE_S):
            rss = _status_kb(self.pid, "VmRSS")
            if rss is not None and (self.peak_kb is None or rss > self.peak_kb):
                self.peak_kb = rss

    def figures(self) -> JsonObject:
        """The server's RSS before the session, its peak during it, the difference, and its
        lifetime peak."""
        pid, before, peak = self.pid, self.before_kb, self.peak_kb
        return {
            "server_rss_before_mb": _mb(before),
            "server_peak_rss_mb": _mb(peak),
            "server_growth_mb": None if before is None or peak is None else _mb(peak - before),
            "server_hwm_mb": None if pid is None else _mb(_status_kb(pid, "VmHWM")),
        }


# --- one client process -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClientRun:
    """A client process that ran to its end: its output and what it cost."""

    stdout: IO[bytes]  # at its start
    error: str | None  # the last line of stderr when it failed
    max_rss_mb: float
    wall_s: float


@contextmanager
def run_client(command: Sequence[str], limit_s: float) -> Iterator[ClientRun]:
    """Run ``command`` to its end (killed after ``limit_s``), its stdout in a temporary file.

    Its peak RSS comes from ``wait4`` in a small process between (``run_measured``):
    Linux carries the forking process's peak into a child's ru_maxrss across exec, and
    this one holds a session's per-packet figures.
    """
    with ExitStack() as files:
        out, err, rss = (files.enter_context(tempfile.TemporaryFile()) for _ in range(3))
        measured = [sys.executable, "-m", "bench.sustained", "--rss-fd", str(rss.fileno())]
        began = time.perf_counter()
        process = subprocess.Popen(
            [*measured, "--run", *command],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            pass_fds=(rss.fileno(),),
            start_new_session=True,  # the watchdog kills both
        )
        watchdog = threading.Timer(limit_s, os.killpg, (process.pid, signal.SIGKILL))
        watchdog.start()
        try:
            process.wait()
        finally:
            watchdog.cancel()
        wall = time.perf_counter() - began
        err.seek(0)
        reason = err.read().decode(errors="replace").strip().splitlines()
        error = None
        if process.returncode != 0:
            error = reason[-1] if reason else f"{command[1]} exited {process.returncode}"
        rss.seek(0)
        max_rss_kb = int(rss.read() or 0)
        out.seek(0)
        yield ClientRun(out, error, round(max_rss_kb / KIB_PER_MB, 1), round(wall, 1))


def run_measured(command: Sequence[str], rss_fd: int) -> int:
    """Run ``command``, write its peak RSS (kB) to ``rss_fd``; its exit status."""
    process = subprocess.Popen(command)
    _pid, status, usage = os.wait4(process.pid, 0)  # its own rusage, not all children's
    process.returncode = os.waitstatus_to_exitcode(status)
    os.write(rss_fd, str(usage.ru_maxrss).encode())
    return process.returncode if process.returncode >= 0 else 128 - process.returncode


def _command(program: str, port: int, packets: int, rate: int, extra: Sequence[str]) -> list[str]:
    return [
        *otwamp_command(),
        program,
        f"127.0.0.1:{port}",
        *extra,
        "-c",
        str(packets),
        "-i",
        repr(1.0 / rate),
    ]


def _raw_session(
    run: R, command: list[str], server: int | None, add: Callable[[R, JsonObject], None]
) -> JsonObject:
    """Run a ``--raw --json`` session into ``run``, one record at a time: its figures."""
    with RssWatch(server) as watch, run_client(command, _limit(run)) as client:
        for line in client.stdout:
            add(run, json.loads(line))
    achieved, lag = run.achieved_pps, run.max_send_lag_us
    return {
        "sent": run.sent,
        "received": run.received,
        "lost": run.lost,
        "duplicates": run.duplicates,
        "achieved_pps": None if achieved is None else round(achieved),
        "max_send_lag_us": lag,
        "client_max_rss_mb": client.max_rss_mb,
        "wall_s": client.wall_s,
        "error": client.error,
    } | watch.figures()


def _limit(run: SenderRun) -> float:
    return run.count * run.interval + OVERRUN_S


# --- the sessions ------------------------------------------------------------------


def run_sustained(port: int, packets: int = PACKETS, rate: int = RATE) -> JsonObject:
    """The TWAMP session with ``--json`` (loss, memory), then ``--raw --json`` (the rate)."""
    server = server_pid("TWAMP")
    command = _command("ping", port, packets, rate, ["--wait", repr(WAIT)])
    run = PingRun(packets, 1.0 / rate)
    base = _base_rss(_command("ping", port, BASE_PACKETS, rate, ["--json"]))
    with RssWatch(server) as watch, run_client([*command, "--json"], _limit(run)) as client:
        summary = None if client.error is not None else json.load(client.stdout)
    counts = {} if summary is None else summary["packets"]
    rtt = None if summary is None else summary["rtt"]["median"]
    log(f"sustained: TWAMP --json done, lost {counts.get('lost')}; now --raw --json")
    raw = _raw_session(run, [*command, "--raw", "--json"], server, add_reply)
    return (
        {
            "packets": packets,
            "rate_pps": rate,
            "sent": counts.get("sent"),
            "lost": counts.get("lost"),
            "duplicates": counts.get("duplicates"),
            "kernel_drops": counts.get("kernel_drops"),
            "rtt_median_us": None if rtt is None else round(rtt * 1e6, 3),
            "client_max_rss_mb": client.max_rss_mb,
            "client_base_rss_mb": base,
            "wall_s": client.wall_s,
            "error": client.error,
        }
        | watch.figures()
        | {"raw": raw}
    )


def run_owamp_sustained(port: int, packets: int = PACKETS, rate: int = RATE) -> JsonObject:
    """``otwamp owping --to`` with ``--raw --json``: the server keeps and serves every record."""
    run = OwpingRun(packets, 1.0 / rate, direction="to")
    extra = ["--to", "--wait", repr(OWPING_WAIT), "--raw", "--json"]
    base = _base_rss(_command("owping", port, BASE_PACKETS, rate, extra))
    figures = _raw_session(
        run, _command("owping", port, packets, rate, extra), server_pid("OWAMP"), add_arrival
    )
    return (
        {"packets": packets, "rate_pps": rate, "skipped": run.skipped}
        | figures
        | {"client_base_rss_mb": base}
    )


def _base_rss(command: list[str]) -> float:
    """The peak RSS (MB) of a client in a session of BASE_PACKETS: what it costs without
    the per-packet memory."""
    with run_client(command, OVERRUN_S) as client:
        if client.error is not None:
            raise BenchError(f"a {BASE_PACKETS}-packet session failed: {client.error}")
        return client.max_rss_mb


def _scaled(base: float | None, rss: float | None, packets: int) -> float | None:
    """An RSS of ``rss`` MB at ``packets`` packets and ``base`` at none, at TARGET_PACKETS."""
    if base is None or rss is None:
        return None
    return round(base + (rss - base) * TARGET_PACKETS / packets, 1)


def projections(twamp: JsonObject, owamp: JsonObject) -> JsonObject:
    """Each end's RSS at TARGET_PACKETS: what grew over the session, scaled linearly.

    Everything that grows with the packets counts (records, schedules, fetched
    data, the summary's columns, ``--raw``'s index of replies); what is there
    from the start does not. ``twamp_client_raw`` is the ``--raw --json`` run,
    from the ``--json`` run's base.
    """
    raw = twamp["raw"] | {"packets": twamp["packets"], "base": twamp["client_base_rss_mb"]}
    ends = {
        "twamp_client": (twamp, "client_base_rss_mb", "client_max_rss_mb"),
        "twamp_client_raw": (raw, "base", "client_max_rss_mb"),
        "twamp_server": (twamp, "server_rss_before_mb", "server_peak_rss_mb"),
        "owamp_client": (owamp, "client_base_rss_mb", "client_max_rss_mb"),
        "owamp_server": (owamp, "server_rss_before_mb", "server_peak_rss_mb"),
    }
    return {
        end: _scaled(part[base], part[rss], part["packets"])
        for end, (part, base, rss) in ends.items()
    }


# --- the records' cost at 10,000,000 packets ---------------------------------------


def build_records(protocol: str, packets: int) -> Callable[[], object]:
    """Build ``packets`` packets' records of ``protocol`` (the child's work); their summary."""
    from otwamp.results.metrics import summarize_twamp
    from otwamp.results.owamp import summarize_owamp
    from otwamp.results.records import (
        OwampSessionRecord,
        Reply,
        Sent,
        Stamp,
        TwampSessionRecord,
    )
    from otwamp.wire.timestamp import ErrorEstimate, ns_to_ntp

    start = time.time_ns()
    if protocol == "twamp":
        twamp = TwampSessionRecord(bytes(16), "open", "none")
        sent, replies = twamp.sent_log, twamp.reply_log
        for seq in range(packets):
            t1 = start + seq * 50_000
            t1_stamp, t2, t3, t4 = (
                Stamp(t1 + offset, False, 1e-3) for offset in (0, 30_000, 33_000, 60_000)
            )
            sent.append(Sent(seq, t1_stamp, t1 + 700))
            replies.append(Reply(seq, seq, t1_stamp, t2, t3, t4, 64, 64))
        return lambda: summarize_twamp(twamp)
    elif protocol == "owamp":
        owamp = OwampSessionRecord(bytes(16), "to", "open", "none", packets)
        arrivals = owamp.arrivals
        sent_code = arrivals.estimates.wire_code(ErrorEstimate.from_seconds(1e-3, False).to_int())
        received_code = arrivals.estimates.code(Stamp(0, False, 1e-3))
        for seq in range(packets):  # the receiver's path (session.owamp_receiver)
            t1 = start + seq * 50_000
            arrivals.add(seq, ns_to_ntp(t1), sent_code, t1 + 30_000, received_code, 64)
        return lambda: summarize_owamp(owamp)
    return lambda: None


def _child(protocol: str, packets: int) -> JsonObject:
    """A process's peak RSS (kB) once it built ``packets`` packets' records and once it
    summarized them, and its seconds."""
    began = time.perf_counter()
    command = [sys.executable, "-m", "bench.sustained", "--build", protocol, str(packets)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"building {protocol} records failed: {done.stderr.strip()[-300:]}")
    figures: JsonObject = json.loads(done.stdout)
    return figures | {"seconds": round(time.perf_counter() - began, 1)}


def record_costs(packets: int, measured: dict[str, float | None], session: int) -> JsonObject:
    """Each protocol's records at ``packets`` packets, and each end's RSS at TARGET_PACKETS
    as ``measured``, its RSS (MB) in a ``session``-packet session, plus their cost for
    the packets more: a lower bound when more than records grows (``projections``).

    ``records_octets_per_packet`` is what the records hold, ``peak_octets_per_packet``
    what the summary adds for a moment (its columns by sequence number): a client
    needs both, a server only the records (it serves them, it does not summarize).
    """
    empty = _child("none", 0)["peak_kb"]
    costs: JsonObject = {"packets": packets, "empty_process_rss_mb": _mb(empty)}
    ends = {"twamp": [("twamp_client", "peak")], "owamp": [("owamp_server", "records")]}
    ends["owamp"].append(("owamp_client", "peak"))
    for protocol, its_ends in ends.items():
        log(f"sustained: {protocol} records of {packets:,} packets in a process of their own")
        child = _child(protocol, packets)
        octets = {
            "records": (child["built_kb"] - empty) * 1024 / packets,
            "peak": (child["peak_kb"] - empty) * 1024 / packets,
        }
        part: JsonObject = {
            "records_rss_mb": _mb(child["built_kb"]),
            "peak_rss_mb": _mb(child["peak_kb"]),
            "records_octets_per_packet": round(octets["records"], 1),
            "peak_octets_per_packet": round(octets["peak"], 1),
            "seconds": child["seconds"],
        }
        for end, cost in its_ends:
            rss, more = measured[end], octets[cost] * (TARGET_PACKETS - session) / 2**20
            part[f"{end}_rss_mb_10m_from_records"] = None if rss is None else round(rss + more, 1)
        costs[protocol] = part
    # The reflector keeps no per-packet record: its RSS does not grow with the session.
    costs["twamp"]["twamp_server_rss_mb_10m_from_records"] = measured["twamp_server"]
    return costs


# What bounds a session's size besides memory (otwamp.cli.measure, otwamp.control.server_policy).
LIMITS: JsonObject = {
    "client_count_max": 10_000_000,
    "owamp_server_max_packets": ServerPolicy().max_packets,
    "owamp_server_max_packets_per_connection": ServerPolicy().max_packets_per_connection,
    "note": (
        "otwamp ping and owping accept -c up to 10,000,000; otwamp server's defaults take "
        "one OWAMP session of as many (max_packets and max_packets_per_connection, [server] "
        "config; docs/DECISIONS.md R24), its records 24 octets a packet. "
        "A TWAMP reflector has no such limit: it keeps nothing per packet."
    ),
}


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sustained", description="long sessions: loss and memory (issue 15)"
    )
    parser.add_argument("--packets", type=int, default=PACKETS, help="packets per session")
    parser.add_argument("--rate", type=int, default=RATE, help="packets per second")
    parser.add_argument(
        "--records", type=int, default=TARGET_PACKETS, help="packets of the records' cost (0: none)"
    )
    parser.add_argument("--build", nargs=2, metavar=("PROTOCOL", "PACKETS"), help=argparse.SUPPRESS)
    parser.add_argument("--rss-fd", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--run", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _rss_target(measured: Any) -> JsonObject:
    return {
        "target": f"<= {MAX_RSS_MB} MB",
        "measured": measured,
        "pass": measured is not None and measured <= MAX_RSS_MB,
    }


def targets(result: JsonObject) -> JsonObject:
    """The issue's targets, each with what was measured and whether it is met."""
    found: JsonObject = {}
    for key in ("twamp", "owamp_to"):
        part = result.get(key)
        if part is None:
            continue
        raw = part.get("raw", part)  # the TWAMP session's rate is in its --raw run
        achieved = raw["achieved_pps"]
        found[f"{key}_zero_loss"] = {
            "target": f"0 lost of {part['packets']:,} at {part['rate_pps']:,} pps, "
            "the sender within 5 % of the rate",
            "measured": {"lost": part["lost"], "achieved_pps": achieved},
            "pass": part["error"] is None
            and part["lost"] == 0
            and raw["lost"] == 0
            and achieved is not None
            and achieved >= 0.95 * part["rate_pps"],
        }
        found[f"{key}_client_rss_mb"] = _rss_target(part["client_max_rss_mb"])
    records = result.get("records")
    for protocol in ("twamp", "owamp"):
        cost = None if records is None else records[protocol]
        if cost is None:
            continue
        octets = cost["records_octets_per_packet"]
        found[f"{protocol}_records_octets_per_packet"] = {
            "target": "<= 64",
            "measured": octets,
            "pass": octets <= 64,
        }
    for end, projected in result.get("projection_10m", {}).items():
        found[f"{end}_rss_10m_mb"] = _rss_target(projected)
    return found


def _run(args: argparse.Namespace, result: JsonObject) -> None:
    with ExitStack() as stack:
        twamp_port = stack.enter_context(otwamp_server())
        log(f"sustained: TWAMP, {args.packets:,} packets at {args.rate:,} pps")
        result["twamp"] = run_sustained(twamp_port, args.packets, args.rate)
        owamp_port = stack.enter_context(otwamp_server(protocol="OWAMP"))
        log(f"sustained: OWAMP --to, {args.packets:,} packets at {args.rate:,} pps")
        result["owamp_to"] = run_owamp_sustained(owamp_port, args.packets, args.rate)
    if args.records:
        twamp, owamp = result["twamp"], result["owamp_to"]
        measured = {
            "twamp_client": twamp["client_max_rss_mb"],
            "twamp_server": twamp["server_peak_rss_mb"],
            "owamp_client": owamp["client_max_rss_mb"],
            "owamp_server": owamp["server_peak_rss_mb"],
        }
        result["records"] = record_costs(args.records, measured, args.packets)
    result["projection_10m"] = projections(result["twamp"], result["owamp_to"])
    result["limits"] = LIMITS
    result["targets"] = targets(result)


def main(argv: list[str] | None = None) -> int:
    """Run the sessions and the records' measurement; print the JSON object."""
    args = _arguments(argv)
    if args.run is not None:  # between ``run_client`` and a client
        return run_measured(args.run, args.rss_fd)
    if args.build is not None:  # the child of ``record_costs``
        protocol, packets = args.build
        summarize = build_records(protocol, int(packets))
        built = _status_kb(os.getpid(), "VmHWM")  # not ru_maxrss: see ``run_client``
        summarize()
        peak = _status_kb(os.getpid(), "VmHWM")
        print(json.dumps({"built_kb": built, "peak_kb": peak}))
        return 0
    result: JsonObject = {
        "bench": "otwamp-sustained",
        "started_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_facts(),
        "parameters": {"packets": args.packets, "rate_pps": args.rate, "records": args.records},
    }
    return finish_run(result, lambda: _run(args, result), time.perf_counter(), BenchError)


if __name__ == "__main__":
    sys.exit(main())
