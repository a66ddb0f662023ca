"""The soak's clients: random ``otwamp ping``/``owping`` measurements in every mode and key source.

Each client is a process forked by :mod:`bench.soak_zygote` running the CLI's
``main()``. A few are SIGKILLed at a random moment of their session. A client
that ends on its own either completed (exit 0) or failed; its cause is its
``otwamp: ...`` line, made a template (addresses and numbers replaced).
"""

import contextlib
import json
import math
import os
import queue
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench.machine import ROOT
from bench.soak_watch import template
from bench.stats import JsonObject

TWAMP_MODES = ("open", "authenticated", "encrypted", "mixed")  # RFC 5357 §3.1
OWAMP_MODES = ("open", "authenticated", "encrypted")  # RFC 4656 §3.1
KEY_SOURCES = ("passphrase", "ike-broker", "ike-embedded")  # -u/-k; RFC 7717 via otwamp ike
OWAMP_DIRECTIONS = ((), ("--to",), ("--from",))
MIN_INTERVAL, MAX_INTERVAL = 0.01, 0.5  # seconds between packets, log-uniform
MIN_SESSION = 2.0  # seconds of test traffic, at least
ZYGOTE_START = 30.0  # seconds for the zygote to import otwamp


@dataclass(frozen=True, slots=True)
class Kind:
    """What a client measures: protocol, mode and (secured modes) where its key comes from."""

    protocol: str  # "twamp" or "owamp"
    mode: str
    key_source: str | None

    @property
    def label(self) -> str:
        """``protocol/mode[/key source]``."""
        return "/".join(part for part in (self.protocol, self.mode, self.key_source) if part)


def kinds() -> list[Kind]:
    """Every protocol, mode and key-source combination."""
    result = []
    for protocol, modes in (("twamp", TWAMP_MODES), ("owamp", OWAMP_MODES)):
        for mode in modes:
            sources: Sequence[str | None] = (None,) if mode == "open" else KEY_SOURCES
            result += [Kind(protocol, mode, source) for source in sources]
    return result


@dataclass(frozen=True, slots=True)
class Targets:
    """Where the clients go and the keys they use."""

    host: str
    twamp_port: int
    owamp_port: int
    identity: str
    keyfile: Path
    broker: Path  # the client-side otwamp ike's key broker
    embedded: tuple[Path, ...]  # IKE configurations, each with its own port: one client each


@dataclass
class Client:
    """One measurement process."""

    id: int
    kind: Kind
    argv: list[str]
    out: Path
    err: Path
    ike_config: Path | None = None  # from the embedded pool, returned when the client ends
    kill_at: float | None = None
    pid: int | None = None
    status: int | None = None
    cpu_s: float | None = None
    killed: bool = False

    def cause(self) -> str:
        """Why it failed: its ``otwamp:`` line as a template, or what else it left."""
        try:
            lines = self.err.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        said = [line for line in lines if line.startswith("otwamp: ")]
        if any(line.startswith("Traceback") for line in lines):
            return f"traceback: {template(lines[-1]) if lines else '?'}"
        if said:
            return template(said[-1], numbers=False)
        return f"exit status {self.status} without an otwamp: line"


def _plan(rng: random.Random, longest: float) -> tuple[list[str], float]:
    """Random count, interval and schedule: the arguments and the expected seconds of traffic."""
    interval = math.exp(rng.uniform(math.log(MIN_INTERVAL), math.log(MAX_INTERVAL)))
    seconds = rng.uniform(MIN_SESSION, longest)
    count = max(2, round(seconds / interval))
    schedule = rng.choice(("fixed", "poisson"))
    arguments = ["-c", str(count), "-i", f"{interval:.4f}", "--schedule", schedule]
    return arguments, count * interval


def _key_arguments(kind: Kind, targets: Targets, ike_config: Path | None) -> list[str]:
    if kind.mode == "open":
        return []
    arguments = ["-A", kind.mode]
    if kind.key_source == "passphrase":
        return [*arguments, "-u", targets.identity, "-k", str(targets.keyfile)]
    if kind.key_source == "ike-broker":
        return [*arguments, "--key-source", "ike", "--ike-socket", str(targets.broker)]
    return [*arguments, "--key-source", "ike", "--ike-config", str(ike_config)]


class Zygote:
    """The fork server (``python -m bench.soak_zygote``) and a thread reading its reports."""

    def __init__(self) -> None:
        self.reports: queue.Queue[dict[str, Any]] = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.soak_zygote"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._stdin: IO[bytes] = self.process.stdin
        self._reader = threading.Thread(
            target=self._read, args=(self.process.stdout,), name="zygote-reader", daemon=True
        )
        self._reader.start()
        ready = self.reports.get(timeout=ZYGOTE_START)
        if not ready.get("ready"):
            raise RuntimeError(f"the zygote did not start: {ready}")

    def _read(self, stdout: IO[bytes]) -> None:
        for line in stdout:
            self.reports.put(json.loads(line))
        self.reports.put({"eof": True})

    def spawn(self, client: Client) -> None:
        """Ask for ``otwamp ARGV`` as a new process; its pid arrives in :attr:`reports`."""
        request = {
            "id": client.id,
            "argv": client.argv,
            "out": str(client.out),
            "err": str(client.err),
        }
        self._stdin.write((json.dumps(request) + "\n").encode())
        self._stdin.flush()

    def close(self) -> None:
        """EOF: the zygote SIGKILLs what still runs, reaps it and exits."""
        with contextlib.suppress(OSError):
            self._stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reader.join(5)


@dataclass
class Fleet:
    """Keeps ``concurrency`` clients running, kills a share of them, and tallies how they end."""

    targets: Targets
    directory: Path
    concurrency: int
    longest: float  # seconds of test traffic of the longest session
    kill_share: float
    rng: random.Random
    zygote: Zygote = field(default_factory=Zygote)
    running: dict[int, Client] = field(default_factory=dict)
    finished: list[Client] = field(default_factory=list)
    _free_configs: list[Path] = field(default_factory=list)
    _deck: list[Kind] = field(default_factory=list)  # every kind once, in a random order
    _next_id: int = 0

    def __post_init__(self) -> None:
        self._free_configs = list(self.targets.embedded)

    def _next_kind(self) -> Kind:
        """The next kind of the deck that can start now (embedded IKE: a configuration is free);
        so every kind runs as often as any other, give or take one."""
        if not self._deck:
            self._deck = kinds()
            self.rng.shuffle(self._deck)
        for index, kind in enumerate(self._deck):
            if kind.key_source != "ike-embedded" or self._free_configs:
                return self._deck.pop(index)
        self._deck += self.rng.sample(kinds(), k=len(kinds()))  # only embedded ones were left
        return self._next_kind()

    def start_one(self, now: float) -> None:
        """Start a client of the next kind, with a random count, interval and schedule."""
        kind = self._next_kind()
        config = self._free_configs.pop() if kind.key_source == "ike-embedded" else None
        plan, expected = _plan(self.rng, self.longest)
        port = self.targets.twamp_port if kind.protocol == "twamp" else self.targets.owamp_port
        command = "ping" if kind.protocol == "twamp" else "owping"
        direction = list(self.rng.choice(OWAMP_DIRECTIONS)) if kind.protocol == "owamp" else []
        argv = [command, f"{self.targets.host}:{port}", *plan, *direction]
        argv += _key_arguments(kind, self.targets, config)
        self._next_id += 1
        stem = self.directory / f"client-{self._next_id}"
        client = Client(
            self._next_id,
            kind,
            argv,
            stem.with_suffix(".out"),
            stem.with_suffix(".err"),
            config,
        )
        if self.rng.random() < self.kill_share:
            client.kill_at = now + self.rng.uniform(0.2, 1.0) * (expected + 0.5)
        self.running[client.id] = client
        self.zygote.spawn(client)

    def poll(self, now: float) -> None:
        """Take the zygote's reports, and SIGKILL the clients whose time has come."""
        while True:
            try:
                report = self.zygote.reports.get_nowait()
            except queue.Empty:
                break
            self._take(report)
        for client in self.running.values():
            if (
                client.kill_at is not None
                and client.kill_at <= now
                and client.pid
                and not client.killed
            ):
                try:
                    os.kill(client.pid, signal.SIGKILL)
                    client.killed = True
                except ProcessLookupError:
                    pass

    def _take(self, report: dict[str, Any]) -> None:
        if report.get("eof"):
            raise RuntimeError("the zygote exited")
        client = self.running.get(report["id"])
        if client is None:
            return
        if "pid" in report:
            client.pid = report["pid"]
            return
        client.status, client.cpu_s = report["status"], report["cpu"]
        client.killed = client.killed and client.status == -signal.SIGKILL
        if client.ike_config is not None:
            self._free_configs.append(client.ike_config)
        self.finished.append(self.running.pop(client.id))

    def close(self) -> None:
        """Stop the zygote and with it every client still running."""
        self.zygote.close()

    def report(self, wall_s: float) -> JsonObject:
        """Sessions started, completed, killed and failed by cause; by kind."""
        done = self.finished
        killed = [c for c in done if c.killed]
        ended = [c for c in done if not c.killed]
        failures: Counter[str] = Counter()
        failed_kinds: dict[str, Counter[str]] = {}
        for client in (c for c in ended if c.status != 0):
            cause = client.cause()
            failures[cause] += 1
            failed_kinds.setdefault(cause, Counter())[client.kind.label] += 1
        by_kind: dict[str, Counter[str]] = {}
        for client in done:
            tally = by_kind.setdefault(client.kind.label, Counter())
            tally["started"] += 1
            tally[
                "killed" if client.killed else "completed" if client.status == 0 else "failed"
            ] += 1
        cpu = [c.cpu_s for c in done if c.cpu_s is not None]
        return {
            "started": self._next_id,
            "ended": len(done),
            "completed": sum(c.status == 0 for c in ended),
            "failed": sum(failures.values()),
            "killed": len(killed),
            "still_running_at_the_end": len(self.running),
            "failures_by_cause": dict(failures.most_common()),
            "failed_kinds_by_cause": {c: dict(k.most_common()) for c, k in failed_kinds.items()},
            "by_kind": {label: dict(tally) for label, tally in sorted(by_kind.items())},
            "client_cpu_s_mean": round(sum(cpu) / len(cpu), 4) if cpu else None,
            "sessions_per_minute": round(len(done) * 60 / max(wall_s, 1e-9), 1),
        }
