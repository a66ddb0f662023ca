"""``python -m bench.soak [--duration SECONDS]``: a mixed load against one ``otwamp server``; JSON.

One ``otwamp server`` on 127.0.0.2 offers every mode with a pass-phrase file
and an embedded IKEv2 responder (``--ike-config``). Against it, for
``--duration`` seconds (default 600, what ``make soak`` runs):

* about ``--concurrency`` (100) measurements at any time, ``otwamp ping`` and
  ``otwamp owping`` in every mode (open, authenticated, encrypted, and mixed
  for TWAMP), keyed by the pass-phrase or by IKEv2 (RFC 7717: through a
  client-side ``otwamp ike`` and its key broker, or an embedded initiator),
  with random counts, intervals and schedules. Each is a process of its own,
  forked from a zygote that imported the CLI once (``bench.soak_zygote``:
  0.45 s of imports per process would take more CPU than the machine has);
  ``--kill-share`` of them are SIGKILLed at a random moment of their session;
* a flood of stray datagrams (random and test-packet-shaped) at the server's
  test-port range from other ports, ``--flood-pps`` a second (5,000);
* a probe that connects to the TWAMP control port every 100 ms and times
  connect-to-Server-Greeting: the server greets on accept, so this is its
  event loop's lag, measured from outside; the same probe against a process
  that only greets (``bench.soak_greeter``) shows what the loaded machine's
  CPU scheduling alone costs.

The load (clients, their ``otwamp ike``, the flood) runs at ``--load-nice``
(10): on a real deployment the server does not share its CPUs with a
hundred measurement clients, and at equal priority the probe times how
much of two cores those clients leave it (p99 80-170 ms, max 0.5 s) rather
than the server's own work (p99 under 5 ms with the load at nice 10).

It prints one JSON object: sessions started, completed, killed and failed by
cause (the clients' ``otwamp:`` lines), the server's RSS and fd count after
warm-up, in the middle and at the end with their growth (``bounded``: at most
10 % above the first figure), the probe's p50/p99/max, and the server's log
lines by cause. Every process it starts is stopped at the end, on failure and
on Ctrl-C; all traffic stays in 127.0.0.0/8. Exit status 0 when the server
survived with a bounded footprint, 1 otherwise. Progress goes to stderr.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

from bench.machine import CpuMeter, load_average, machine_facts
from bench.procs import otwamp_command
from bench.soak_load import Fleet, Targets
from bench.soak_watch import LagProbe, Sample, footprint, log_causes, sample_process
from bench.soak_zygote import die_with_parent
from bench.stats import JsonObject

SERVER_HOST = "127.0.0.2"  # otwamp server and its IKE responder
CLIENT_HOST = "127.0.0.1"  # the clients, their otwamp ike and the flood's sources
PROBE_HOST = "127.0.0.3"  # the lag probe, so that it counts against no client's limits
GREETER_HOST = "127.0.0.4"  # the lag probe's control (bench.soak_greeter)
SERVER_ID, CLIENT_ID = "fqdn:server.soak.test", "fqdn:client.soak.test"
IDENTITY = "soak"
START_TIMEOUT = 20.0
TICK = 0.05  # seconds per round of the main loop
SAMPLE_EVERY = 1.0  # seconds between RSS/fd samples
DRAIN_GRACE = 20.0  # seconds after the longest session for the last clients to end
SETTLE = 3.0  # seconds after the drain before the idle figures
RAMP_SECONDS = 5.0  # the clients start over this long, not all at once
PROGRESS_EVERY = 60  # seconds between progress lines


@dataclass(frozen=True, slots=True)
class Options:
    """One soak run."""

    duration: float
    concurrency: int
    flood_pps: int
    kill_share: float
    longest: float  # seconds of test traffic of the longest session
    warmup: float
    seed: int
    log_dir: Path | None  # where to keep the server's, otwamp ike's and failed clients' logs
    load_nice: int  # the load processes' nice value; the server and the greeter stay at 0


def _arguments(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (600)")
    parser.add_argument("--concurrency", type=int, default=100, help="measurements at once (100)")
    parser.add_argument("--flood-pps", type=int, default=5000, help="stray datagrams a second")
    parser.add_argument("--kill-share", type=float, default=0.04, help="clients SIGKILLed (0.04)")
    parser.add_argument("--longest", type=float, help="longest session, s (duration/4, <= 40)")
    parser.add_argument("--warmup", type=float, help="s before the first figure (duration/10)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    parser.add_argument("--log-dir", type=Path, help="keep the logs in this directory")
    parser.add_argument(
        "--load-nice", type=int, default=10, help="nice value of the clients and flood (10)"
    )
    args = parser.parse_args(argv)
    duration = args.duration
    return Options(
        duration=duration,
        concurrency=args.concurrency,
        flood_pps=args.flood_pps,
        kill_share=args.kill_share,
        longest=args.longest or min(40.0, max(4.0, duration / 4)),
        warmup=args.warmup or min(60.0, max(10.0, duration / 10)),
        seed=args.seed if args.seed is not None else random.randrange(1 << 32),
        log_dir=args.log_dir,
        load_nice=args.load_nice,
    )


def log(message: str) -> None:
    """Progress on stderr."""
    print(f"soak: {message}", file=sys.stderr, flush=True)


# --- files: keys, IKE and server configurations ---------------------------------------------


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _bindable_udp(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_span(host: str, count: int, rng: random.Random) -> tuple[int, int]:
    """``count`` consecutive free UDP ports on ``host`` below the ephemeral range."""
    for _ in range(100):
        low = rng.randint(20000, 32000 - count)
        if all(_bindable_udp(host, port) for port in range(low, low + count)):
            return low, low + count - 1
    raise RuntimeError(f"no {count} free UDP ports on {host}")


def _private(path: Path, text: str) -> Path:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(text)
    return path


def _ike_config(
    path: Path, me: tuple[str, int, str], peer: tuple[str, int, str], psk: str, extra: str = ""
) -> Path:
    """An ``otwamp ike`` TOML file (docs/IKE.md) with one PSK peer."""
    (address, port, identity), (peer_address, peer_port, peer_id) = me, peer
    return _private(
        path,
        f'[local]\naddress = "{address}"\nport = {port}\nid = "{identity}"\n{extra}\n'
        f'[[peers]]\nid = "{peer_id}"\naddress = "{peer_address}"\nport = {peer_port}\n'
        f'psk = "{psk}"\n',
    )


@dataclass(frozen=True, slots=True)
class Files:
    """Everything the processes read."""

    keyfile: Path
    server_config: Path
    server_settings: dict[str, int]
    responder: Path
    initiator: Path  # the client-side otwamp ike, with its key broker
    broker: Path
    embedded: tuple[Path, ...]  # one per concurrent embedded initiator


def _server_settings(concurrency: int, warmup: float) -> dict[str, int]:
    """[server] keys that let ``concurrency`` clients of one address in, and keep finished OWAMP
    sessions (RFC 4656 §3.8) no longer than the warm-up, so that their store is full by the
    first figure; those keys the server knows."""
    wanted = {
        "keep_sessions_for": round(warmup),
        "max_control_sessions": 2 * concurrency + 32,
        "max_connections_per_source": 2 * concurrency + 16,
        "max_sessions_per_source": 4 * concurrency + 64,
    }
    try:
        from otwamp.cli.config import _KEYS as known  # the keys the [server] table takes
    except ImportError:
        known = {"max_control_sessions"}
    return {key: value for key, value in wanted.items() if key in known}


def write_files(directory: Path, concurrency: int, warmup: float, rng: random.Random) -> Files:
    """The pass-phrase file, the server's configuration and the IKE configurations (one PSK)."""
    keyfile = _private(
        directory / "keys.pfs", f"{IDENTITY}\t{os.urandom(16).hex().encode().hex()}\n"
    )
    settings = _server_settings(concurrency, warmup)
    server_config = directory / "server.toml"
    server_config.write_text(
        "[server]\n" + "".join(f"{key} = {value}\n" for key, value in settings.items())
    )
    psk = os.urandom(24).hex()
    server = (SERVER_HOST, _free_udp_port(SERVER_HOST), SERVER_ID)
    daemon = (CLIENT_HOST, _free_udp_port(CLIENT_HOST), CLIENT_ID)
    broker = directory / "ike.sock"
    responder = _ike_config(directory / "responder.toml", server, daemon, psk)
    initiator = _ike_config(
        directory / "initiator.toml", daemon, server, psk, f'broker = "{broker}"\n'
    )
    with initiator.open("a", encoding="ascii") as file:
        file.write("initiate = true\n")  # the SA the broker hands out, set up at once
    # About 5 kinds in 17 use one each. Below the ephemeral range, where the clients' own
    # sockets would take a port while no embedded initiator holds it.
    low, high = free_span(CLIENT_HOST, concurrency // 3 + 2, rng)
    embedded = tuple(
        _ike_config(
            directory / f"embedded-{port}.toml", (CLIENT_HOST, port, CLIENT_ID), server, psk
        )
        for port in range(low, high + 1)
    )
    return Files(keyfile, server_config, settings, responder, initiator, broker, embedded)


# --- processes ------------------------------------------------------------------------------


@contextmanager
def started(args: list[str], log_path: Path) -> Iterator["subprocess.Popen[bytes]"]:
    """A process with stdout and stderr in ``log_path``; SIGTERM (then SIGKILL) at the end."""
    with log_path.open("wb") as sink:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            # started before any thread of ours: the child runs no lock-holding code
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )
    try:
        yield process
    finally:
        stop(process)


def niced(command: list[str], nice: int) -> list[str]:
    """``command`` at the nice value ``nice`` (the load, never the server)."""
    return ["nice", "-n", str(nice), *command]


def stop(process: "subprocess.Popen[bytes]", timeout: float = 10.0) -> int:
    """SIGTERM, wait, SIGKILL; the exit status."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def wait_for(process: "subprocess.Popen[bytes]", log_path: Path, text: str) -> str:
    """Wait until ``text`` is in the log; the log so far. RuntimeError if the process dies."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        content = log_path.read_text(errors="replace")
        if text in content:
            return content
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{process.args!r} did not log {text!r}:\n{content}")
        time.sleep(0.05)


def _listening_port(content: str, protocol: str) -> int:
    marker = f"listening for {protocol}-Control on {SERVER_HOST}:"
    return int(content.split(marker, 1)[1].split(maxsplit=1)[0])


@contextmanager
def flooding(span: tuple[int, int], pps: int, result: JsonObject, nice: int) -> Iterator[None]:
    """``bench.soak_flood`` at the test ports for the block; its counts into ``result``."""
    ports = f"{span[0]}-{span[1]}"
    process = subprocess.Popen(
        niced([sys.executable, "-m", "bench.soak_flood", SERVER_HOST, ports, str(pps)], nice),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )
    began = time.monotonic()
    try:
        yield
    finally:
        out = b""
        try:
            out, _ = process.communicate(timeout=10)  # closes its stdin: it stops
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        elapsed = time.monotonic() - began
        counts = json.loads(out) if out.strip() else {}
        result.update(
            target=f"{SERVER_HOST}:{span[0]}-{span[1]}",
            pps_asked=pps,
            sent=counts.get("sent"),
            send_errors=counts.get("errors"),
            achieved_pps=round(counts.get("sent", 0) / max(elapsed, 1e-9)),
        )


@contextmanager
def greeter() -> Iterator[int]:
    """``bench.soak_greeter`` for the block; yields its port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.soak_greeter", GREETER_HOST],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            raise RuntimeError(f"the greeter did not start (said {line!r})")
        yield int(line)
    finally:
        try:
            process.communicate(timeout=10)  # closes its stdin: it stops
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


# --- the run --------------------------------------------------------------------------------


@dataclass
class Run:
    """What the main loop records (times in seconds since ``began``, a monotonic moment)."""

    began: float
    samples: list[Sample] = field(default_factory=list)
    concurrency: list[tuple[float, int]] = field(default_factory=list)
    server_died_at: float | None = None
    load_s: float = 0.0
    drain_s: float = 0.0


def _keep_up(options: Options, fleet: Fleet, now: float, started_so_far: int) -> int:
    """Start clients up to the concurrency (during the ramp, at its pace); how many in all."""
    ramp_rate = options.concurrency / RAMP_SECONDS
    while len(fleet.running) < options.concurrency and (
        now >= RAMP_SECONDS or started_so_far < ramp_rate * (now + TICK)
    ):
        fleet.start_one(now)
        started_so_far += 1
    return started_so_far


def _drive(options: Options, fleet: Fleet, server: "subprocess.Popen[bytes]") -> Run:
    """Keep the load up for the duration, then let the last clients end."""
    run = Run(time.monotonic())
    next_sample, started_so_far = 0.0, 0
    drain_until = options.duration + options.longest + DRAIN_GRACE
    while True:
        now = time.monotonic() - run.began
        fleet.poll(now)
        if server.poll() is not None:
            run.server_died_at = round(now, 1)
            log(f"the server exited with status {server.returncode} at {now:.0f} s")
            break
        if now < options.duration:
            started_so_far = _keep_up(options, fleet, now, started_so_far)
        elif not fleet.running or now > drain_until:
            break
        if now >= next_sample:
            sample = sample_process(server.pid, now)
            if sample is not None:
                run.samples.append(sample)
            run.concurrency.append((now, len(fleet.running)))
            if round(next_sample) % PROGRESS_EVERY == 0 and next_sample:
                log(f"{now:.0f} s: {len(fleet.running)} running, {len(fleet.finished)} ended")
            next_sample += SAMPLE_EVERY
        time.sleep(TICK)
    run.load_s = min(now, options.duration)
    run.drain_s = max(now - options.duration, 0.0)
    return run


def _concurrency(run: Run, options: Options) -> JsonObject:
    values = [n for at, n in run.concurrency if options.warmup <= at <= options.duration]
    return {
        "target": options.concurrency,
        "mean_after_warmup": round(sum(values) / len(values), 1) if values else None,
        "min_after_warmup": min(values, default=None),
        "max": max((n for _, n in run.concurrency), default=None),
    }


def _idle(pid: int) -> JsonObject | None:
    sample = sample_process(pid, 0.0)
    return None if sample is None else {"rss_kib": sample.rss_kib, "fds": sample.fds}


CONTROL_NOTE = (
    "the same probe against a process that only greets (bench.soak_greeter) on the same "
    "machine at the same time: the lag CPU scheduling alone causes"
)
CLIENTS_HOW = (
    "processes forked from a zygote that imported otwamp's CLI once, each running "
    "`otwamp ping`/`otwamp owping` (the CLI's main()) with its own sockets, exit status and "
    "otwamp: line; a fresh `otwamp` process costs about 0.45 s of CPU in imports, "
    "too much for 2 cores at several starts a second"
)


@dataclass(frozen=True, slots=True)
class Server:
    """The running ``otwamp server`` and its control ports."""

    process: "subprocess.Popen[bytes]"
    log: Path
    twamp_port: int
    owamp_port: int


def _start_server(stack: ExitStack, files: Files, span: tuple[int, int], directory: Path) -> Server:
    """``otwamp server`` on SERVER_HOST, every mode, both key sources; its ports from its log."""
    log_path = directory / "server.log"
    command = [
        *otwamp_command(),
        "server",
        *("--listen", f"{SERVER_HOST}:0", "--owamp-listen", f"{SERVER_HOST}:0"),
        *("--test-ports", f"{span[0]}-{span[1]}"),
        *("--modes", "open,authenticated,encrypted,mixed"),
        *("--keyfile", str(files.keyfile), "--ike-config", str(files.responder)),
        *("--config", str(files.server_config)),
    ]
    process = stack.enter_context(started(command, log_path))
    wait_for(process, log_path, "listening for OWAMP-Control")
    content = wait_for(process, log_path, "listening for TWAMP-Control")
    return Server(
        process, log_path, _listening_port(content, "TWAMP"), _listening_port(content, "OWAMP")
    )


def _start_ike(stack: ExitStack, files: Files, directory: Path, nice: int) -> None:
    """The clients' ``otwamp ike`` with its key broker, which sets up an SA with the server."""
    log_path = directory / "ike.log"
    command = niced([*otwamp_command(), "ike", "--config", str(files.initiator)], nice)
    process = stack.enter_context(started(command, log_path))
    wait_for(process, log_path, "key broker on")


def _keep_logs(directory: Path, fleet: Fleet, log_dir: Path | None) -> None:
    """Copy the server's and otwamp ike's logs and the failed clients' stderr to ``log_dir``."""
    if log_dir is None:
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    for name in ("server.log", "ike.log"):
        shutil.copyfile(directory / name, log_dir / name)
    for client in fleet.finished:
        if client.status != 0 and not client.killed:
            text = client.err.read_text(errors="replace")
            (log_dir / client.err.name).write_text(f"{' '.join(client.argv)}\n{text}")


def soak(options: Options) -> JsonObject:
    """Run the soak; the JSON object to print."""
    rng = random.Random(options.seed)
    result: JsonObject = {"duration_s": options.duration, "warmup_s": options.warmup}
    machine = machine_facts()  # the load average before the soak
    meter = CpuMeter()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="otwamp-soak-") as temporary, ExitStack() as stack:
        directory = Path(temporary)
        span = free_span(SERVER_HOST, 3 * options.concurrency + 64, rng)
        files = write_files(directory, options.concurrency, options.warmup, rng)
        server = _start_server(stack, files, span, directory)
        _start_ike(
            stack, files, directory, options.load_nice
        )  # both before any thread: they get PDEATHSIG
        idle_before = _idle(server.process.pid)
        targets = Targets(
            SERVER_HOST,
            server.twamp_port,
            server.owamp_port,
            IDENTITY,
            files.keyfile,
            files.broker,
            files.embedded,
        )
        fleet = Fleet(
            targets, directory, options.concurrency, options.longest, options.kill_share, rng
        )
        stack.callback(fleet.close)
        os.setpriority(os.PRIO_PROCESS, fleet.zygote.process.pid, options.load_nice)  # forks too
        flood: JsonObject = {}
        stack.enter_context(flooding(span, options.flood_pps, flood, options.load_nice))
        probe = LagProbe((SERVER_HOST, server.twamp_port), PROBE_HOST)
        control = LagProbe((GREETER_HOST, stack.enter_context(greeter())), PROBE_HOST)
        for each in (probe, control):
            each.start()
            stack.callback(each.stop)
        log(f"server pid {server.process.pid}, seed {options.seed}, logs in {directory}")
        run = _drive(options, fleet, server.process)
        probe.stop()
        control.stop()
        fleet.close()
        time.sleep(SETTLE)  # the server closes what the last clients left
        idle_after = _idle(server.process.pid)
        stack.close()  # flood, otwamp ike, server, in the reverse order of their start
        _keep_logs(directory, fleet, options.log_dir)
        result["server"] = {
            "crashed": run.server_died_at is not None,
            "died_at_s": run.server_died_at,
            "exit_status_on_sigterm": server.process.returncode,
            "settings": files.server_settings,
            "footprint": footprint(run.samples, options.warmup, options.duration),
            "idle_before_load": idle_before,
            "idle_after_drain": idle_after,
        }
        result["wall_s"] = round(time.monotonic() - began, 1)
        result["load_s"], result["drain_s"] = round(run.load_s, 1), round(run.drain_s, 1)
        result["clients"] = {
            "how": CLIENTS_HOW,
            "nice": options.load_nice,  # the flood's and the clients' otwamp ike's too
            "concurrency": _concurrency(run, options),
        }
        result["sessions"] = fleet.report(run.load_s + run.drain_s)
        result["flood"] = flood
        result["event_loop_lag"] = probe.report(run.began) | {
            "after_warmup": probe.after(run.began + options.warmup),
            "control": control.report(run.began) | {"note": CONTROL_NOTE},
        }
        result["server_log"] = log_causes(server.log.read_text(errors="replace"))
    result["cpu"] = meter.report()
    result["machine"] = machine | {"loadavg_at_end": load_average()}
    result["seed"] = options.seed
    return result


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None, out: IO[str] = sys.stdout) -> int:
    """Run, print the JSON object; 0 when the server survived with a bounded footprint."""
    options = _arguments(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        result = soak(options)
    except KeyboardInterrupt:
        log("interrupted: every process stopped, no figures")
        return 130
    print(json.dumps(result, indent=2), file=out, flush=True)
    server = result["server"]
    return 0 if not server["crashed"] and server["footprint"]["bounded"] else 1


if __name__ == "__main__":
    sys.exit(main())
