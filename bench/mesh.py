"""``python -m bench.mesh [--agents 16] [--duration 600]``: issue 11's mesh, one JSON object.

N ``otwamp agent`` processes, each in a network namespace of its own on one bridge, keyed by
IKEv2 certificates of one throwaway CA, run TWAMP authenticated every 10 s and continuous OWAMP
between all N (N - 1) directed pairs into one throwaway PostgreSQL, scraped by a real
Prometheus (``tests/mesh/meshrun.py`` builds and removes all of it). After ``--duration``
seconds it prints: pairs with results (N (N - 1) wanted), failed sessions by cause (none
wanted), sessions per minute, CPU seconds and RSS per agent, archive bytes per session,
Prometheus's series and whether its values equal the archive's, with the machine's load.
Exit status 0 when all of that holds, 1 otherwise. Needs root (ip netns), PostgreSQL and
Prometheus (scripts/install-debian-deps.sh). ``make mesh`` runs the 16-agent, 10-minute one.
"""

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

from bench.machine import CpuMeter, load_average, machine_facts
from tests.mesh.meshrun import MeshOptions, measure, running_mesh


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mesh", description=__doc__)
    parser.add_argument("--agents", type=int, default=16, help="members of the mesh (16)")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (600)")
    parser.add_argument("--keep", type=Path, help="write the files and logs here and keep them")
    arguments = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("otwamp: bench.mesh needs root (network namespaces)", file=sys.stderr)
        return 1
    if arguments.keep is not None and arguments.keep.exists() and any(arguments.keep.iterdir()):
        print(f"otwamp: {arguments.keep} is not empty", file=sys.stderr)
        return 1
    options = MeshOptions(agents=arguments.agents)
    meter = CpuMeter()
    with contextlib.ExitStack() as stack:
        directory = arguments.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        directory.mkdir(parents=True, exist_ok=True)
        mesh = stack.enter_context(running_mesh(directory, options))
        figures = measure(mesh, arguments.duration)
    wanted = figures["pairs_expected"]
    ok = (
        figures["pairs_with_results"] == wanted
        and not figures["failed_sessions_by_cause"]
        and figures["prometheus"]["check"]["equal"]
    )
    report = {
        "benchmark": "mesh",
        "ok": ok,
        **figures,
        "machine": {**machine_facts(), "load_average_end": load_average(), **meter.report()},
    }
    print(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
