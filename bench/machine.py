"""Facts about the machine a benchmark ran on, recorded next to its figures."""

import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _first_line_with(path: str, prefix: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            for line in file:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _git_commit() -> str | None:
    """The checked-out commit, read only; None outside a git work tree."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


class CpuMeter:
    """How busy the CPUs were during a run, and how much of that was not this suite.

    Other work on the machine (a test suite, a build) competes with the
    sender and the reflector for the 2 CPUs and moves every figure, so the
    share of CPU time others took is reported next to the figures.
    """

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, list[int], float]:
        with open("/proc/stat", encoding="ascii") as file:
            fields = [int(value) for value in file.readline().split()[1:]]
        ours = sum(
            usage.ru_utime + usage.ru_stime
            for usage in (
                resource.getrusage(resource.RUSAGE_SELF),
                resource.getrusage(resource.RUSAGE_CHILDREN),
            )
        )
        return time.monotonic(), fields, ours

    def report(self) -> dict[str, float]:
        """Shares of the machine's CPU time since construction, 0..1."""
        (t0, before, ours0), (t1, after, ours1) = self._start, self._sample()
        tick = os.sysconf("SC_CLK_TCK")
        delta = [(b - a) / tick for a, b in zip(before, after, strict=True)]
        # /proc/stat: user nice system idle iowait irq softirq steal ...
        busy = delta[0] + delta[1] + delta[2] + delta[5] + delta[6]
        capacity = max((t1 - t0) * len(os.sched_getaffinity(0)), 1e-9)
        return {
            "busy_share": round(busy / capacity, 3),
            "bench_share": round((ours1 - ours0) / capacity, 3),
            "others_share": round(max(busy - (ours1 - ours0), 0.0) / capacity, 3),
            "steal_share": round(delta[7] / capacity, 3) if len(delta) > 7 else 0.0,
        }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages: other work competing for the CPUs."""
    return [round(value, 2) for value in os.getloadavg()]


def machine_facts() -> dict[str, Any]:
    """CPU count, CPU model, Python, kernel, load and the code under test."""
    from otwamp import __version__

    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": _first_line_with("/proc/cpuinfo", "model name"),
        "cpu_governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "kernel": platform.release(),
        "system": platform.system(),
        "machine": platform.machine(),
        "loadavg_at_start": load_average(),
        "otwamp_version": __version__,
        "git_commit": _git_commit(),
    }


def finish_run(
    result: dict[str, Any], run: Callable[[], None], began: float, error: type[Exception]
) -> int:
    """Run a bench into ``result``, add timing, load and the targets' verdict, print it as
    JSON; the exit status: 0 all targets met, 1 some missed, 2 the bench failed (``error``)."""
    status, meter = 0, CpuMeter()
    try:
        run()
    except error as exc:
        result["error"] = str(exc)
        status = 2
    result["elapsed_s"] = round(time.perf_counter() - began, 1)
    result["machine"]["loadavg_at_end"] = load_average()
    result["machine"]["cpu_during_run"] = meter.report()
    targets = result.get("targets", {})
    result["pass"] = status == 0 and all(t["pass"] for t in targets.values())
    if status == 0 and not result["pass"]:
        status = 1
    print(json.dumps(result, indent=2))
    return status
