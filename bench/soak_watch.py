"""What the soak watches from outside the server: its memory and fds, its event loop, its log."""

import os
import re
import socket
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bench.stats import JsonObject
from otwamp.results.stats import percentile

GREETING_SIZE = 64  # Server-Greeting, RFC 4656 §3.1 (TWAMP: RFC 5357 §3.1)
PROBE_EVERY = 0.1  # seconds between lag probes
PROBE_TIMEOUT = 5.0
BOUND = 1.10  # "bounded": at most 10 % above the first figure after warm-up
_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d (\d\d):(\d\d):(\d\d),\d+ otwamp (\w+) (.*)$")
# Variable parts of a message, most specific first, so that a cause is one template.
_VARIABLE = (
    (re.compile(r"(?<!\S)/\S+"), "PATH"),
    (re.compile(r"\[[0-9a-fA-F:.]+\]:\d+|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "ADDR"),
    (re.compile(r"\b[0-9a-f]{8,}\b"), "HEX"),
    (re.compile(r"\b\d+(?:\.\d+)?\b"), "N"),
)
# otwamp.lograte's summaries: a suffix of the next line of the cause, or a line of their own.
_LEFT_OUT = re.compile(r" \((\d+) more like this left out\)$")
_LEFT_OUT_LINE = re.compile(r"^(\d+) more like .* left out$")


def template(message: str, numbers: bool = True) -> str:
    """``message`` with paths, addresses, hex strings and (unless told) numbers replaced."""
    for pattern, placeholder in _VARIABLE if numbers else _VARIABLE[:-1]:
        message = pattern.sub(placeholder, message)
    return message.strip()


# --- memory and file descriptors ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """The server's resident memory and open fds at one moment."""

    at: float  # seconds since the load began
    rss_kib: int
    fds: int
    cpu_s: float  # user + system time of the server so far


def sample_process(pid: int, at: float) -> Sample | None:
    """VmRSS, the fd count and the CPU time of ``pid`` from /proc; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    ticks = stat.rsplit(")", 1)[1].split()[11:13]  # utime, stime: fields 14 and 15, proc(5)
    cpu = sum(int(tick) for tick in ticks) / os.sysconf("SC_CLK_TCK")
    return Sample(at, int(match.group(1)) if match else 0, fds, cpu)


def _window_max(samples: list[Sample], start: float, end: float) -> Sample | None:
    inside = [s for s in samples if start <= s.at <= end]
    if not inside:
        return None
    return Sample(end, max(s.rss_kib for s in inside), max(s.fds for s in inside), inside[-1].cpu_s)


def footprint(samples: list[Sample], warmup: float, duration: float) -> JsonObject:
    """RSS and fds at start (after warm-up), middle and end, and their growth.

    Each figure is the highest sample in a window (a tenth of the measured
    time, at least 5 s) ending at that point: the fd count follows the
    sessions being set up and torn down at that instant, a window's peak does not.
    """
    window = max(5.0, (duration - warmup) / 10)
    points = {
        "start": warmup + window,
        "middle": (warmup + window + duration) / 2,
        "end": duration,
    }
    figures = {name: _window_max(samples, at - window, at) for name, at in points.items()}
    result: JsonObject = {"window_s": round(window, 1)}
    for name, figure in figures.items():
        result[name] = None if figure is None else {"rss_kib": figure.rss_kib, "fds": figure.fds}
    first = figures["start"]
    growth: JsonObject = {}
    if first is not None:
        for name in ("middle", "end"):
            later = figures[name]
            if later is not None:
                growth[name] = {
                    "rss": round(later.rss_kib / max(first.rss_kib, 1), 3),
                    "fds": round(later.fds / max(first.fds, 1), 3),
                }
    result["growth_after_warmup"] = growth
    result["bounded"] = bool(growth) and all(
        ratio <= BOUND for ratios in growth.values() for ratio in ratios.values()
    )
    result["peak"] = {
        "rss_kib": max((s.rss_kib for s in samples), default=None),
        "fds": max((s.fds for s in samples), default=None),
    }
    step = max(len(samples) // 10, 1)
    result["timeline_s_rss_kib_fds"] = [[round(s.at), s.rss_kib, s.fds] for s in samples[::step]]
    after = [s for s in samples if warmup <= s.at <= duration]
    if len(after) > 1:
        busy = (after[-1].cpu_s - after[0].cpu_s) / max(after[-1].at - after[0].at, 1e-9)
        result["server_cpu_share_after_warmup"] = round(busy, 3)  # of one core
    return result


# --- event-loop lag -----------------------------------------------------------------------


@dataclass
class LagProbe:
    """Times connect-to-Server-Greeting on the TWAMP control port every 100 ms, in a thread.

    The server writes its greeting as soon as it accepts, so the time is how
    long its event loop took to get round to the new connection.
    """

    server: tuple[str, int]
    source: str
    samples_ms: list[float] = field(default_factory=list)
    at: list[float] = field(default_factory=list)  # when each sample was taken, monotonic
    failures: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        """Probe until :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="lag-probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop probing and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(PROBE_TIMEOUT * 2)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                lag = self._probe_once()
                self.samples_ms.append(lag)
                self.at.append(time.monotonic())
            except OSError as exc:
                self.failures[template(str(exc)) or type(exc).__name__] += 1
            next_at += PROBE_EVERY
            self._stop.wait(max(next_at - time.monotonic(), 0.0))

    def _probe_once(self) -> float:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(PROBE_TIMEOUT)
            sock.bind((self.source, 0))
            began = time.perf_counter()
            sock.connect(self.server)
            received = 0
            while received < GREETING_SIZE:
                chunk = sock.recv(GREETING_SIZE - received)
                if not chunk:
                    raise ConnectionError("closed before the Server-Greeting")
                received += len(chunk)
            return (time.perf_counter() - began) * 1000

    def report(self, since: float, worst: int = 5) -> JsonObject:
        """p50, p99 and max of the lag in ms, after warm-up too, the worst probes (seconds
        since ``since`` and ms), and the probes that failed, by cause."""
        figures = self._figures(self.samples_ms)
        figures["every_ms"] = PROBE_EVERY * 1000
        timed = sorted(zip(self.samples_ms, self.at, strict=True), reverse=True)[:worst]
        figures["worst"] = [[round(at - since, 1), round(lag, 1)] for lag, at in timed]
        figures["failed"] = dict(self.failures)
        return figures

    def after(self, moment: float) -> JsonObject:
        """p50, p99 and max of the probes from ``moment`` (monotonic) on."""
        return self._figures(
            [lag for lag, at in zip(self.samples_ms, self.at, strict=True) if at >= moment]
        )

    @staticmethod
    def _figures(samples: list[float]) -> JsonObject:
        ordered = sorted(round(lag * 1000) for lag in samples)  # µs: otwamp's percentile
        figures: JsonObject = {"probes": len(ordered)}
        for name, rank in (("p50_ms", 50), ("p99_ms", 99)):
            figures[name] = round(percentile(ordered, rank) / 1000, 2) if ordered else None
        figures["max_ms"] = round(ordered[-1] / 1000, 2) if ordered else None
        return figures


# --- the server's log ---------------------------------------------------------------------


def log_causes(text: str, limit: int = 30) -> JsonObject:
    """The server's log lines by cause (level and template): how many, the most in one second
    and how many the log's rate limit left out (it lets a few per cause and second through)."""
    counts: Counter[str] = Counter()
    left_out: Counter[str] = Counter()  # what the rate limit kept out, as its lines say
    per_second: dict[str, Counter[str]] = defaultdict(Counter)
    other = tracebacks = 0
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if match is None:
            tracebacks += line.startswith("Traceback")
            other += 1
            continue
        hour, minute, second, level, message = match.groups()
        summary = _LEFT_OUT.search(message) or _LEFT_OUT_LINE.match(message)
        cause = f"{level} {template(_LEFT_OUT.sub('', message))}"
        counts[cause] += 1
        per_second[cause][f"{hour}{minute}{second}"] += 1
        left_out[cause] += int(summary.group(1)) if summary else 0
    causes = [
        {
            "cause": cause,
            "lines": lines,
            "max_per_second": max(per_second[cause].values()),
            "left_out": left_out[cause],
        }
        for cause, lines in counts.most_common(limit)
    ]
    shown = sum(lines for _, lines in counts.most_common(limit))
    return {
        "lines": sum(counts.values()) + other,
        "causes": len(counts),
        "by_cause": causes,
        "other_causes_lines": sum(counts.values()) - shown,
        "lines_outside_the_format": other,
        "tracebacks": tracebacks,
        "first_traceback": _first_traceback(text),
    }


def _first_traceback(text: str, lines: int = 40) -> list[str] | None:
    """The first traceback in the log and the lines around it, for the report."""
    found = text.find("Traceback")
    if found < 0:
        return None
    begin = text.rfind("\n", 0, found - 1) + 1  # the log line that introduced it
    first, *rest = text[begin:].splitlines()[:lines]
    tail = [line for line in rest if _LOG_LINE.match(line)][:1]  # where the next record begins
    return [first, *rest[: rest.index(tail[0]) if tail else None]]
