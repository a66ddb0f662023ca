"""``python -m bench.stamp [--quick]``: the STAMP reflector's zero-loss rate, as one JSON object.

An ``otwamp server`` reflects STAMP only (``--stamp-listen 127.0.0.1:PORT
--stamp-mode stateless``, unauthenticated, no TLVs) and each probe is an
``otwamp stamp ... --raw --json`` process, searched and judged exactly as
TWAMP's ``zero_loss`` (``bench.twamp.zero_loss_search``: no loss, no
duplicates, the rate really kept by the sender). The target is 40,000 pps
(issue 13). Like the other benchmarks, the figures come from the packets'
own timestamps; exit status 0 when the target is met, 1 when missed, 2 when
the reflector could not run.
"""

import argparse
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

from bench.machine import load_average, machine_facts
from bench.procs import BenchError, otwamp_command
from bench.stats import JsonObject
from bench.twamp import REPLY_WAIT, PingRun, Session, _add_record, run_client, zero_loss_search

TARGET_PPS = 40_000
READY = b"STAMP reflector ("
START_TIMEOUT = 10.0


@contextlib.contextmanager
def stamp_reflector(mode: str = "stateless") -> Iterator[int]:
    """``otwamp server`` reflecting STAMP on 127.0.0.1 and a free UDP port; yields the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [*otwamp_command(), "server", "--listen", "off", "--owamp-listen", "off"]
    command += ["--stamp-listen", f"127.0.0.1:{port}", "--stamp-mode", mode]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                log.seek(0)
                if READY in log.read():
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise BenchError(f"the STAMP reflector did not start: {log.read()!r}")
                time.sleep(0.05)
            yield port
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def stamp_sessions(port: int, count: int) -> Session:
    """``count``-packet ``otwamp stamp`` sessions, for ``zero_loss_search``."""
    return lambda rate: run_client(
        PingRun(count, 1.0 / rate), "stamp", port, (), REPLY_WAIT, _add_record
    )


def main(argv: list[str] | None = None) -> int:
    """Run the search and print the JSON object."""
    parser = argparse.ArgumentParser(prog="python -m bench.stamp")
    parser.add_argument("--quick", action="store_true", help="2,000-packet probes, not 10,000")
    args = parser.parse_args(argv)
    count = 2_000 if args.quick else 10_000
    result: JsonObject = {"machine": machine_facts(), "load_before": load_average()}
    try:
        with stamp_reflector() as port:
            search = zero_loss_search(
                stamp_sessions(port, count), count, 1_000, 100_000, label=" (STAMP stateless)"
            )
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    result["stamp_stateless_open"] = {
        "zero_loss_pps": search["zero_loss_pps"],
        "zero_loss_achieved_pps": search["zero_loss_achieved_pps"],
        "zero_loss_confirmed": search["confirmed"],
        "zero_loss_limited_by": search["limited_by"],
        "zero_loss_search": search,
    }
    met = (search["zero_loss_pps"] or 0) >= TARGET_PPS
    result["targets"] = {
        "stamp_zero_loss_pps": {
            "target": f">= {TARGET_PPS}",
            "measured": search["zero_loss_pps"],
            "met": met,
        }
    }
    result["load_after"] = load_average()
    print(json.dumps(result, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
