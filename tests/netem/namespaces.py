"""Two hosts joined through the link emulator: three network namespaces and two veth pairs.

    NAMEA: a 10.77.0.1/24 fd77::1/64 ── ma  NAMEM  mb ── b 10.77.0.2/24 fd77::2/64 :NAMEB

The middle namespace has no addresses (IPv6 is off there): its kernel ignores the frames, and
the emulator (``emulator.py``, run in NAMEM) is the only way across. The veth pairs are made
inside the namespaces, so their names never meet other tests' in the root namespace. All three
namespaces share the host's clock, so one-way delays between A and B are meaningful.

For manual use: ``python -m tests.netem.namespaces up NAME`` (``down NAME`` removes them).
"""

import contextlib
import json
import select
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.conftest import LISTENING, OWAMP_LISTENING, wait_for_text
from tests.e2e.processes import otwamp_command, stop_process

REPOSITORY = Path(__file__).resolve().parents[2]
A_ADDRESS, B_ADDRESS = "10.77.0.1", "10.77.0.2"
A_ADDRESS6, B_ADDRESS6 = "fd77::1", "fd77::2"
TWAMP_PORT, OWAMP_PORT, TEST_PORTS = 862, 861, (20000, 20099)
# otwamp runs real-time too (below the emulator's priority, 10): the other work of a busy
# machine then cannot come between a timestamp and its packet, and the figures are otwamp's.
REALTIME = ["chrt", "--fifo", "5"]


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass(frozen=True)
class Topology:
    """The namespaces of host A, host B and the link between them."""

    a: str
    b: str
    middle: str

    def exec_in(self, netns: str) -> list[str]:
        """The command prefix that runs a program inside ``netns``."""
        return ["ip", "netns", "exec", netns]

    def otwamp_in_a(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """``otwamp *args`` run on host A; never raises on a non-zero exit."""
        return subprocess.run(
            [*self.exec_in(self.a), *REALTIME, *otwamp_command(), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def create(name: str) -> Topology:
    """Make ``{name}A``, ``{name}B`` and ``{name}M`` wired as the module docstring draws."""
    topology = Topology(f"{name}A", f"{name}B", f"{name}M")
    try:
        for netns in (topology.a, topology.b, topology.middle):
            ip("netns", "add", netns)
            ip("-n", netns, "link", "set", "lo", "up")
        subprocess.run(
            [
                *topology.exec_in(topology.middle),
                "sysctl",
                "-qw",
                "net.ipv6.conf.all.disable_ipv6=1",
            ],
            check=True,
        )
        for netns, inner, outer, address, address6 in (
            (topology.a, "ma", "a", A_ADDRESS, A_ADDRESS6),
            (topology.b, "mb", "b", B_ADDRESS, B_ADDRESS6),
        ):
            ip(
                "-n",
                netns,
                "link",
                "add",
                "name",
                outer,
                "type",
                "veth",
                "peer",
                "name",
                inner,
                "netns",
                topology.middle,
            )
            ip("-n", netns, "address", "add", f"{address}/24", "dev", outer)
            ip("-n", netns, "address", "add", f"{address6}/64", "dev", outer, "nodad")
            ip("-n", netns, "link", "set", "dev", outer, "up")
            ip("-n", topology.middle, "link", "set", "dev", inner, "up")
    except BaseException:
        destroy(topology)
        raise
    return topology


def destroy(topology: Topology) -> None:
    """Delete the namespaces (their veths go with them); those already gone are skipped."""
    for netns in (topology.a, topology.b, topology.middle):
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)


@contextlib.contextmanager
def wired(name: str) -> Iterator[Topology]:
    """:func:`create` for the duration of the block."""
    topology = create(name)
    try:
        yield topology
    finally:
        destroy(topology)


@contextlib.contextmanager
def otwamp_server(topology: Topology, log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``otwamp server *args`` on host B: TWAMP on 862, OWAMP on 861, test ports 20000-20099."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                *topology.exec_in(topology.b),
                *REALTIME,
                *otwamp_command(),
                "server",
                "--listen",
                f"{B_ADDRESS}:{TWAMP_PORT}",
                "--owamp-listen",
                f"{B_ADDRESS}:{OWAMP_PORT}",
                "--test-ports",
                f"{TEST_PORTS[0]}-{TEST_PORTS[1]}",
                *args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_text(log, f"{LISTENING} {B_ADDRESS}:{TWAMP_PORT}", process)
        wait_for_text(log, f"{OWAMP_LISTENING} {B_ADDRESS}:{OWAMP_PORT}", process)
        yield process
    finally:
        stop_process(process)


class RunningEmulator:
    """``python -m tests.netem.emulator`` in the middle namespace, driven over its stdin."""

    def __init__(self, topology: Topology, *args: str, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.process = subprocess.Popen(
            [
                *topology.exec_in(topology.middle),
                sys.executable,
                "-m",
                "tests.netem.emulator",
                *args,
            ],
            cwd=REPOSITORY,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if self._read()["event"] != "ready":
            raise RuntimeError("the emulator did not start")

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], self.timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            stop_process(self.process)  # type: ignore[arg-type]
            raise RuntimeError(f"the emulator said nothing (exit status {self.process.returncode})")
        document: dict[str, Any] = json.loads(line)
        return document

    def report(self) -> dict[str, Any]:
        """What it did since the last report (``Emulator.report``); the counts restart."""
        assert self.process.stdin is not None
        self.process.stdin.write("report\n")
        self.process.stdin.flush()
        return self._read()

    def stop(self) -> dict[str, Any]:
        """Its last report, and it exits."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        report = self._read()
        self.process.wait(self.timeout)
        return report

    def kill(self) -> None:
        stop_process(self.process)  # type: ignore[arg-type]


@contextlib.contextmanager
def emulating(topology: Topology, *args: str) -> Iterator[RunningEmulator]:
    """The emulator with ``args`` (see ``python -m tests.netem.emulator --help``) for the block."""
    emulator = RunningEmulator(topology, *args)
    try:
        yield emulator
    finally:
        emulator.kill()


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        sys.exit("usage: python -m tests.netem.namespaces up|down NAME")
    topology = Topology(f"{argv[1]}A", f"{argv[1]}B", f"{argv[1]}M")
    if argv[0] == "up":
        create(argv[1])
        print(
            f"{topology.a} ({A_ADDRESS}) <-> {topology.middle} (ma, mb) <-> {topology.b} "
            f"({B_ADDRESS}); run the emulator with ip netns exec {topology.middle}"
        )
    else:
        destroy(topology)


if __name__ == "__main__":
    main(sys.argv[1:])
