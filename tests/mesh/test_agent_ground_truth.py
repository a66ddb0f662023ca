"""Ground truth through the agent (issue 11): two ``otwamp agent`` processes in network
namespaces with the link emulator between them (tests/netem, docs/EMULATOR.md).

Agent B only serves; agent A measures B, first with TWAMP (authenticated), then with OWAMP
(authenticated, both directions), each until its SQLite archive holds three sessions; A's
SIGTERM waits for the running session, so the emulator's report for the phase covers exactly
the archived sessions. Read back with ``otwamp results list --json``: the mean one-way and
round-trip delays (weighted by packets received) are within 50 µs of the delays the emulator
applied and within 50 µs plus the jitter's bound of the configured ones; the losses equal
its drops and lie inside their 99 % binomial interval.
"""

import json
import os
import shutil
import signal
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.agent.agents import Agent
from tests.e2e.ike_support import Logged, wait_until
from tests.e2e.processes import otwamp_command, run_cli
from tests.netem.binomial import binomial_interval
from tests.netem.namespaces import (
    A_ADDRESS,
    B_ADDRESS,
    REALTIME,
    TEST_PORTS,
    RunningEmulator,
    Topology,
    emulating,
    wired,
)

pytestmark = pytest.mark.netns

TOLERANCE_US = 50.0
A2B, A2B_US, A2B_JITTER_US, A2B_LOSS = "delay=3ms,jitter=1ms,loss=4%", 3000.0, 1000.0, 0.04
B2A, B2A_US, B2A_JITTER_US, B2A_LOSS = (
    "delay=2ms,jitter=600us,shape=normal,loss=3%",
    2000.0,
    600.0,
    0.03,
)
SESSIONS = 3
SERVER = f"""
[agent.server]
modes = "authenticated"
keyfile = "keys.pfs"
test_ports = "{TEST_PORTS[0]}-{TEST_PORTS[1]}"
"""
TEST = """
[[test]]
name = "truth"
protocol = "{protocol}"
targets = "b"
identity = "alice"
keyfile = "keys.pfs"
modes = "authenticated"
packets = 250
interval = 0.004
every = "3s"
"""


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and ip netns")
    with wired(f"msh{os.getpid()}") as wired_topology:
        yield wired_topology


def write_files(directory: Path) -> None:
    (directory / "mesh.toml").write_text(
        f'[[members]]\nname = "a"\naddress = "{A_ADDRESS}"\n\n'
        f'[[members]]\nname = "b"\naddress = "{B_ADDRESS}"\n'
    )
    (directory / "keys.pfs").write_text("alice\t" + b"ground truth".hex() + "\n")
    (directory / "keys.pfs").chmod(0o600)


def agent(topology: Topology, netns: str, directory: Path, name: str, tests: str) -> Logged:
    """``otwamp agent`` NAME in ``netns`` (real-time, as the netem tests run otwamp)."""
    config = directory / f"{name}.toml"
    config.write_text(
        f'[agent]\nname = "{name}"\nmesh = "mesh.toml"\narchive = "{name}.db"\n'
        f'metrics = "off"\n' + SERVER + textwrap.dedent(tests)
    )
    command = [*topology.exec_in(netns), *REALTIME, *otwamp_command(), "agent", "--config"]
    process = Logged([*command, str(config)], config.with_suffix(".log"))
    process.wait_for(" jobs of ")
    return process


def sessions(archive: Path) -> list[dict[str, Any]]:
    done = run_cli("results", "list", "--json", "--archive", str(archive))
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


def phase(
    topology: Topology, directory: Path, emulator: RunningEmulator, protocol: str
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A measures B with ``protocol`` until SESSIONS are archived; (sessions, truth)."""
    archive = directory / "a.db"
    archive.unlink(missing_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(f"{archive}{suffix}").unlink(missing_ok=True)
    a = agent(topology, topology.a, directory, "a", TEST.format(protocol=protocol))
    reader = Agent("a", A_ADDRESS, directory / "a.toml", archive)  # polls the SQLite file
    try:
        wait_until(lambda: len({r["start_ns"] for r in reader.rows()}) >= SESSIONS, protocol, 40)
    finally:
        assert a.stop(signal.SIGTERM) == 0, a.log()
    found = sessions(archive)
    assert "Traceback" not in a.log()
    assert all(s["failure"] is None for s in found), found
    return found, emulator.report()


def mean_us(parts: list[tuple[float, int]]) -> float:
    """The mean of several sessions' means, weighted by their counts, in µs."""
    total = sum(count for _, count in parts)
    return sum(mean * count for mean, count in parts) / total * 1e6


def assert_delay(measured: float, truth: dict[str, Any], configured: float, jitter: float) -> None:
    applied = truth["delay_us"]["mean"]
    assert abs(measured - applied) <= TOLERANCE_US, (measured, applied)
    assert abs(measured - configured) <= TOLERANCE_US + jitter, (measured, configured)


def assert_loss(lost: int, truth: dict[str, Any], probability: float) -> None:
    # otwamp's loss is the emulator's exactly (above); this checks the emulator's draws, and
    # at 99 % one run in a hundred fails for each of the four directions checked.
    low, high = binomial_interval(truth["arrived"], probability, confidence=0.9999)
    assert lost == truth["dropped"], (lost, truth["dropped"])
    assert low <= lost <= high, (lost, low, high)


def test_agents_measure_what_the_emulator_did(topology: Topology, tmp_path: Path) -> None:
    write_files(tmp_path)
    b = agent(topology, topology.b, tmp_path, "b", "")
    ports = f"{TEST_PORTS[0]}-{TEST_PORTS[1]}"
    arguments = ["--udp-ports", ports, "--seed", "51", "--a2b", A2B, "--b2a", B2A]
    try:
        with emulating(topology, *arguments) as emulator:
            twamp, twamp_truth = phase(topology, tmp_path, emulator, "twamp")
            owamp, owamp_truth = phase(topology, tmp_path, emulator, "owamp")
    finally:
        assert b.stop(signal.SIGTERM) == 0, b.log()

    a2b, b2a = twamp_truth["a2b"], twamp_truth["b2a"]
    assert sum(s["packets"]["sent"] for s in twamp) == a2b["arrived"]
    forward = mean_us([(s["forward"]["delay"]["mean"], s["packets"]["received"]) for s in twamp])
    backward = mean_us([(s["backward"]["delay"]["mean"], s["packets"]["received"]) for s in twamp])
    rtt = mean_us([(s["rtt"]["mean"], s["packets"]["received"]) for s in twamp])
    print(json.dumps({"twamp_us": [forward, backward, rtt], "applied_us": [
        a2b["delay_us"]["mean"], b2a["delay_us"]["mean"]]}))  # fmt: skip
    assert_delay(forward, a2b, A2B_US, A2B_JITTER_US)
    assert_delay(backward, b2a, B2A_US, B2A_JITTER_US)
    applied_rtt = {"delay_us": {"mean": a2b["delay_us"]["mean"] + b2a["delay_us"]["mean"]}}
    assert_delay(rtt, applied_rtt, A2B_US + B2A_US, A2B_JITTER_US + B2A_JITTER_US)
    assert_loss(sum(s["forward"]["lost"] for s in twamp), a2b, A2B_LOSS)
    assert_loss(sum(s["backward"]["lost"] for s in twamp), b2a, B2A_LOSS)

    for direction, side, configured, jitter, loss in (
        ("to", "a2b", A2B_US, A2B_JITTER_US, A2B_LOSS),
        ("from", "b2a", B2A_US, B2A_JITTER_US, B2A_LOSS),
    ):
        runs = [s for s in owamp if s["direction"] == direction]
        truth = owamp_truth[side]
        assert len(runs) >= SESSIONS
        assert sum(s["packets"]["sent"] for s in runs) == truth["arrived"]
        delay = mean_us([(s["delay"]["mean"], s["packets"]["received"]) for s in runs])
        print(json.dumps({f"owamp_{direction}_us": delay, "applied_us": truth["delay_us"]["mean"]}))
        assert_delay(delay, truth, configured, jitter)
        assert_loss(sum(s["packets"]["lost"] for s in runs), truth, loss)
