"""The agent's Prometheus metrics, served at ``/metrics`` (R17: aiohttp, a registry of our own).

Per test, target and direction, the last session's figures, taken from the
archive rows of that session (archive.rows.archive_rows: the values the
archive stores, so both say the same); counters of sessions by result and
of packets; and the IKE SAs in use. docs/AGENT.md lists them.
"""

import logging
import math
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from otwamp.archive.rows import Measurement, archive_rows, typed
from otwamp.archive.schema import COLUMNS
from otwamp.cli.addresses import format_endpoint

log = logging.getLogger("otwamp.agent")
QUANTILES = {"min": "0", "median": "0.5", "p95": "0.95", "p99": "0.99", "max": "1"}
TARGET = ("test", "target")
DIRECTED = ("test", "target", "direction")


def _value(value: Any) -> float:
    """A column's value as a sample; NaN when the session had none (no packet arrived)."""
    return math.nan if value is None else float(value)


class AgentMetrics:
    """The metrics of one agent, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._series: dict[tuple[str, str], set[tuple[Gauge, tuple[str, ...]]]] = {}
        registry = self.registry
        self.rtt = Gauge(
            "otwamp_rtt_seconds",
            "TWAMP round-trip time of the last session (quantile 0 is the minimum, 1 the maximum)",
            [*TARGET, "quantile"],
            registry=registry,
        )
        self.delay = Gauge(
            "otwamp_delay_seconds",
            "One-way delay of the last session: TWAMP forward/backward, OWAMP to/from the target",
            [*DIRECTED, "quantile"],
            registry=registry,
        )
        self.jitter = Gauge(
            "otwamp_jitter_seconds",
            "IPDV jitter of the last session (RFC 3393)",
            DIRECTED,
            registry=registry,
        )
        self.loss = Gauge(
            "otwamp_loss_ratio",
            "Packets lost over packets sent in the last session (TWAMP: round-trip)",
            DIRECTED,
            registry=registry,
        )
        self.sync = Gauge(
            "otwamp_clock_synchronized",
            "1 if both clocks were synchronized for the last session's one-way delays",
            DIRECTED,
            registry=registry,
        )
        self.last = Gauge(
            "otwamp_last_session_end_timestamp_seconds",
            "When the last session that measured something ended (Unix time)",
            TARGET,
            registry=registry,
        )
        self.sessions = Counter(
            "otwamp_sessions",
            "Sessions by result: ok, partial (ended early), failed (no session)",
            [*TARGET, "result"],
            registry=registry,
        )
        self.sent = Counter("otwamp_packets_sent", "Test packets sent", DIRECTED, registry=registry)
        self.lost = Counter("otwamp_packets_lost", "Test packets lost", DIRECTED, registry=registry)
        self.ike_sas = Gauge(
            "otwamp_ike_sas", "IKE SAs of the embedded IKEv2 daemon", registry=registry
        )

    def count_ike_sas(self, count: Callable[[], int]) -> None:
        """Read the number of IKE SAs from ``count`` at each scrape."""
        self.ike_sas.set_function(lambda: float(count()))

    def observe(self, measurement: Measurement, target: str) -> None:
        """Record a finished measurement (one TWAMP row, or an OWAMP row per direction)."""
        rows = [typed(COLUMNS, row.values) for row in archive_rows(measurement, keep_records=False)]
        test = measurement.test
        if measurement.outcome is None:
            result = "failed"
        else:
            result = "partial" if rows[0]["failure"] else "ok"
        self.sessions.labels(test, target, result).inc()
        measured = [row for row in rows if row["sid"] is not None]
        for row in measured:
            self._row(test, target, row)
        if measured:
            self._set(self.last, (test, target), measurement.end_ns / 1e9)

    def _row(self, test: str, target: str, row: dict[str, Any]) -> None:
        twamp = row["protocol"] == "twamp"
        overall = "round-trip" if twamp else row["direction"]
        if twamp:
            for stat, quantile in QUANTILES.items():
                self._set(self.rtt, (test, target, quantile), row[f"rtt_{stat}"])
        prefixes = {"fwd": "forward", "bwd": "backward"} if twamp else {"fwd": overall}
        for prefix, direction in prefixes.items():
            for stat, quantile in QUANTILES.items():
                value = row[f"{prefix}_delay_{stat}"]
                self._set(self.delay, (test, target, direction, quantile), value)
            self._set(self.jitter, (test, target, direction), row[f"{prefix}_ipdv_jitter"])
            self._set(self.sync, (test, target, direction), 1.0 if row[f"{prefix}_sync"] else 0.0)
        sent, lost = row["packets_sent"] or 0, row["packets_lost"] or 0
        self._set(self.loss, (test, target, overall), lost / sent if sent else None)
        self.sent.labels(test, target, overall).inc(sent)
        self.lost.labels(test, target, overall).inc(lost)

    def _set(self, gauge: Gauge, labels: tuple[str, ...], value: Any) -> None:
        gauge.labels(*labels).set(_value(value))
        self._series.setdefault((labels[0], labels[1]), set()).add((gauge, labels))

    def forget(self, kept: Iterable[tuple[str, str]]) -> None:
        """Drop the last-session series of (test, target) pairs no longer planned."""
        keep = set(kept)
        for pair in [pair for pair in self._series if pair not in keep]:
            for gauge, labels in self._series.pop(pair):
                gauge.remove(*labels)

    def exposition(self) -> bytes:
        """The text format of every metric."""
        return generate_latest(self.registry)


async def serve_metrics(metrics: AgentMetrics, host: str, port: int) -> web.AppRunner:
    """Serve ``/metrics`` on ``host:port`` until the runner is cleaned up."""

    async def handle(_: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/metrics", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    log.info("metrics on http://%s/metrics", format_endpoint(host, port))
    return runner
