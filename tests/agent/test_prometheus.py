"""A real Prometheus scrapes an agent's /metrics every second; through its query API the values
equal the archive's for the same sessions."""

import json
import math
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.agent.agents import running, write_agent, write_mesh
from tests.e2e.ike_support import free_port, wait_until

pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs prometheus")

SERVER = 'modes = "open"\n'
TESTS = """
[[test]]
name = "rtt"
protocol = "twamp"
targets = "mesh"
packets = 20
interval = 0.05
every = "2s"

[[test]]
name = "owd"
protocol = "owamp"
targets = "mesh"
packets = 20
interval = 0.05
every = "2s"
"""
QUANTILES = {"min": "0", "median": "0.5", "p95": "0.95", "p99": "0.99", "max": "1"}


def query(port: int, expression: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    with urllib.request.urlopen(url, timeout=5) as answer:
        document = json.load(answer)
    assert document["status"] == "success", document
    result: list[dict[str, Any]] = document["data"]["result"]
    return result


def value(port: int, expression: str) -> float:
    result = query(port, expression)
    assert len(result) == 1, (expression, result)
    return float(result[0]["value"][1])


def test_prometheus_sees_what_the_archive_holds(tmp_path: Path) -> None:
    write_mesh(tmp_path)
    metrics = free_port("127.0.0.1")
    a = write_agent(tmp_path, "a", SERVER, TESTS, extra=f'metrics = "127.0.0.1:{metrics}"\n')
    b = write_agent(tmp_path, "b", SERVER, "")
    web = free_port("127.0.0.1")
    (tmp_path / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"
        f"  - job_name: otwamp\n    static_configs:\n      - targets: ['127.0.0.1:{metrics}']\n"
    )
    with running(b, a):
        prometheus = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{web}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "prometheus.log").open("wb"),
        )
        try:
            wait_until(lambda: len(a.rows("sid IS NOT NULL")) >= 3, "a's first sessions", 20)
            assert b.process is not None
            b.process.stop()  # nothing more to measure: the last sessions stay the last
            time.sleep(3)  # a's sessions then running end
            settled = time.time()

            def scraped_twice() -> bool:
                """Two scrapes after the archive settled: the last one over 1 s after it."""
                try:
                    last = query(web, 'timestamp(up{job="otwamp"} == 1)')
                except OSError:
                    return False
                return bool(last) and float(last[0]["value"][1]) > settled + 1.05

            wait_until(scraped_twice, "two scrapes by Prometheus", 30)
            check(web, a.rows("sid IS NOT NULL ORDER BY id"), a.rows())
        finally:
            prometheus.terminate()
            prometheus.wait(10)


def same(sample: float, stored: float | None) -> bool:
    """A sample equals the archive's value exactly; NaN stands for none (a session cut short)."""
    return math.isnan(sample) if stored is None else sample == stored


def check(port: int, measured: list[dict[str, Any]], every: list[dict[str, Any]]) -> None:
    """Each metric equals the archive's value for the last session that measured it."""
    last: dict[tuple[str, str | None], dict[str, Any]] = {}
    for row in measured:
        last[(row["protocol"], row["direction"])] = row
    twamp = last[("twamp", None)]
    labels = 'test="rtt",target="b"'
    for stat, quantile in QUANTILES.items():
        sample = value(port, f'otwamp_rtt_seconds{{{labels},quantile="{quantile}"}}')
        assert same(sample, twamp[f"rtt_{stat}"])
        for prefix, direction in (("fwd", "forward"), ("bwd", "backward")):
            selector = f'{labels},direction="{direction}",quantile="{quantile}"'
            sample = value(port, f"otwamp_delay_seconds{{{selector}}}")
            assert same(sample, twamp[f"{prefix}_delay_{stat}"])
    for prefix, direction in (("fwd", "forward"), ("bwd", "backward")):
        jitter = value(port, f'otwamp_jitter_seconds{{{labels},direction="{direction}"}}')
        assert same(jitter, twamp[f"{prefix}_ipdv_jitter"])
    loss = value(port, f'otwamp_loss_ratio{{{labels},direction="round-trip"}}')
    assert loss == twamp["packets_lost"] / twamp["packets_sent"]
    for direction in ("to", "from"):
        owamp = last[("owamp", direction)]
        selector = f'test="owd",target="b",direction="{direction}"'
        for stat, quantile in QUANTILES.items():
            sample = value(port, f'otwamp_delay_seconds{{{selector},quantile="{quantile}"}}')
            assert same(sample, owamp[f"fwd_delay_{stat}"])
        jitter = value(port, f"otwamp_jitter_seconds{{{selector}}}")
        assert same(jitter, owamp["fwd_ipdv_jitter"])
        sent = sum(r["packets_sent"] for r in measured if r["direction"] == direction)
        assert value(port, f"otwamp_packets_sent_total{{{selector}}}") == sent
    # a value that is a number on both sides, at least: the comparison is not all NaN
    assert any(row["rtt_median"] is not None for row in measured if row["protocol"] == "twamp")
    runs = {
        test: len({r["start_ns"] for r in every if r["test"] == test and r["failure"] is None})
        for test in ("rtt", "owd")
    }
    for test, count in runs.items():
        ok = query(port, f'otwamp_sessions_total{{test="{test}",target="b",result="ok"}}')
        assert ok and float(ok[0]["value"][1]) == count
    sas = query(port, "otwamp_ike_sas")
    assert not sas or math.isclose(float(sas[0]["value"][1]), 0.0)
