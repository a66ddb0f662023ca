"""The mesh of issue 11, short: 4 agents in network namespaces for 40 s (``make mesh``: 16 for
10 minutes, bench/mesh.py). Certificates of one throwaway CA key every session; TWAMP
authenticated every 10 s and continuous OWAMP between all 12 directed pairs go to one
PostgreSQL; a real Prometheus scrapes the 4 agents. Every pair has results, no session fails
(those running when all agents stop at once aside: their servers go too, R14), Prometheus's
values are the archive's, and nothing is left behind: namespaces, agents, Prometheus, the
cluster.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.mesh.meshrun import MeshOptions, measure, running_mesh

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs prometheus"),
]
AGENTS = 4
DURATION = 40.0  # s: the first OWAMP sessions (60 packets every 0.5 s) end after ~31 s


def leftovers() -> list[str]:
    """Our namespaces and uplink that still exist."""
    tag = f"-{os.getpid()}"
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=False)
    found = [n for n in names.stdout.split() if n.startswith("msh") and n.endswith(tag)]
    return found + ([f"msh{tag}"] if f"msh{tag}@" in links.stdout else [])


def test_a_mesh_of_agents_measures_every_pair(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and ip netns")
    with running_mesh(tmp_path, MeshOptions(agents=AGENTS)) as mesh:
        figures = measure(mesh, DURATION)
        processes = [node.process.process for node in mesh.nodes if node.process is not None]
        cluster = mesh.cluster.root
    logs = "\n".join(path.read_text() for path in sorted(tmp_path.glob("m*.log")))
    assert figures["pairs_expected"] == AGENTS * (AGENTS - 1)
    assert figures["pairs_with_results"] == AGENTS * (AGENTS - 1), (figures, logs)
    assert figures["failed_sessions_by_cause"] == {}, (figures, logs)
    assert figures["sessions"]["twamp"] >= 3 * AGENTS * (AGENTS - 1)
    assert figures["exit_statuses"] == [0]
    assert "Traceback" not in logs
    check = figures["prometheus"]["check"]
    assert figures["prometheus"]["targets_up"] == AGENTS
    assert check["equal"] and check["values_compared"] >= 100, check
    per_agent = figures["per_agent"]["each"]
    assert len(per_agent) == AGENTS and all(a["rss_mib"] > 0 for a in per_agent.values())
    assert figures["archive"]["bytes_per_session"] > 0
    # nothing left behind
    assert all(process.poll() is not None for process in processes)
    assert not cluster.exists()
    prometheus = subprocess.run(["pgrep", "-f", "--", f"tsdb.path={tmp_path}"], check=False)
    assert prometheus.returncode == 1
    assert leftovers() == []
