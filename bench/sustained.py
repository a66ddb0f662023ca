"""``sustained``: one long ``otwamp ping`` session at a high rate, its loss and memory (issue 15).

A million packets at 20,000 pps in open mode against ``otwamp server``: the
zero-loss search probes 10,000 packets, this holds the rate for 50 s, and
reports the client's peak resident memory (``wait4``'s ru_maxrss), which the
records' columns bound (about 60 octets a packet, ``results.records``).
"""

import json
import os
import subprocess
import tempfile
import time

from bench.procs import otwamp_command
from bench.stats import JsonObject

PACKETS = 1_000_000
RATE = 20_000  # pps
MAX_RSS_MB = 1024  # for the million packets; the issue asks it of 10,000,000


def run_sustained(port: int, packets: int = PACKETS, rate: int = RATE) -> JsonObject:
    """Run the session; its counts, RTT, achieved rate and the client's peak RSS."""
    command = [*otwamp_command(), "ping", f"127.0.0.1:{port}", "-c", str(packets)]
    command += ["-i", repr(1.0 / rate), "--wait", "2", "--json"]
    began = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(process.pid, 0)  # its own rusage, not all children's
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    wall = time.perf_counter() - began
    summary = json.loads(stdout) if process.returncode == 0 else None
    packets_json = {} if summary is None else summary["packets"]
    return {
        "packets": packets,
        "rate_pps": rate,
        "sent": packets_json.get("sent"),
        "lost": packets_json.get("lost"),
        "duplicates": packets_json.get("duplicates"),
        "kernel_drops": packets_json.get("kernel_drops"),
        "rtt_median_us": None
        if summary is None or summary["rtt"]["median"] is None
        else round(summary["rtt"]["median"] * 1e6, 3),
        "client_max_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "wall_s": round(wall, 1),
        "error": None if process.returncode == 0 else stderr.decode(errors="replace")[-300:],
    }
