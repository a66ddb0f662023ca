"""A pair's time series, downsampled on the server, as columns for the charts and for CSV.

The range is cut into at most ``points`` equal buckets (query.buckets
aggregates them in SQL), so a week of 10-second sessions,
60,480 rows, reaches the browser as a thousand points per line. A bucket's
time is its first session's start; a bucket of one session holds that
session's own figures, so zooming in far enough shows every session as
archived.

Columns (delays and jitter in seconds, as archived; loss in percent):
``t`` (seconds since the epoch), ``sessions``, ``failed``; TWAMP:
``rtt_min``, ``rtt_median``, ``rtt_p95``, ``loss_pct`` and per direction
``forward_*``/``backward_*``; OWAMP: per direction ``to_*``/``from_*``, each
``delay_min``, ``delay_median``, ``delay_p95``, ``jitter``, ``unsync``
(sessions whose clocks were not synchronized) and, OWAMP only, ``loss_pct``.
"""

import csv
import io
from collections.abc import Sequence
from typing import Any

from otwamp.archive.query import Histogram
from otwamp.archive.rows import iso_time
from otwamp.results.stats import NS_PER_S
from otwamp.web.grid import percent

Columns = dict[str, list[Any]]
WAY_FIGURES = ("delay_min", "delay_median", "delay_p95", "jitter", "unsync")
# Where each direction's figures are: (name, row direction, column prefix).
WAYS = {
    "twamp": (("forward", None, "fwd"), ("backward", None, "bwd")),
    "owamp": (("to", "to", "fwd"), ("from", "from", "fwd")),
}
MIN_BUCKET_NS = 1_000_000
HISTOGRAM_NAMES = {None: "round trip", "to": "to", "from": "from"}


def bucket_width(since_ns: int, until_ns: int, points: int) -> int:
    """Nanoseconds per bucket: at most ``points`` buckets over the range, at least 1 ms."""
    return max(MIN_BUCKET_NS, -(-(until_ns - since_ns) // points))  # ceiling


def series_columns(protocol: str, buckets: Sequence[dict[str, Any]]) -> Columns:
    """The chart columns of query.buckets' rows, one entry per bucket with any session."""
    by_bucket: dict[int, dict[str | None, dict[str, Any]]] = {}
    for row in buckets:
        by_bucket.setdefault(row["bucket"], {})[row["direction"]] = row
    columns: Columns = {"t": [], "sessions": [], "failed": []}
    if protocol == "twamp":
        columns |= {"rtt_min": [], "rtt_median": [], "rtt_p95": [], "loss_pct": []}
    for name, _, _ in WAYS[protocol]:
        columns |= {f"{name}_{figure}": [] for figure in WAY_FIGURES}
        if protocol == "owamp":
            columns[f"{name}_loss_pct"] = []
    for _, rows in sorted(by_bucket.items()):
        first = min(row["first_ns"] for row in rows.values())
        columns["t"].append(first / NS_PER_S)
        columns["sessions"].append(sum(row["sessions"] for row in rows.values()))
        columns["failed"].append(sum(row["failed"] for row in rows.values()))
        whole = rows.get(None, {})
        if protocol == "twamp":
            for figure in ("rtt_min", "rtt_median", "rtt_p95"):
                columns[figure].append(whole.get(figure))
            columns["loss_pct"].append(percent(whole.get("lost"), whole.get("measured")))
        for name, direction, prefix in WAYS[protocol]:
            row = rows.get(direction, {})
            for figure in WAY_FIGURES:
                columns[f"{name}_{figure}"].append(row.get(f"{prefix}_{figure}"))
            if protocol == "owamp":
                loss = percent(row.get("lost"), row.get("measured"))
                columns[f"{name}_loss_pct"].append(loss)
    return columns


def histogram_json(histogram: Histogram | None, bins: int) -> dict[str, Any]:
    """Bin edges (seconds) and counts per direction; no edges when there is no delay."""
    if histogram is None:
        return {"edges": [], "counts": {}}
    step = (histogram.high - histogram.low) / bins
    return {
        "edges": [histogram.low + step * i for i in range(bins + 1)],
        "counts": {HISTOGRAM_NAMES[d]: counts for d, counts in histogram.counts.items()},
    }


def columns_csv(columns: Columns) -> str:
    """CSV of the columns, one line per point, its time also as ISO 8601."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = list(columns)
    writer.writerow(["time", *names])
    for i, t in enumerate(columns["t"]):
        writer.writerow([iso_time(round(t * NS_PER_S)), *(columns[n][i] for n in names)])
    return out.getvalue()


def objects_csv(objects: Sequence[dict[str, Any]]) -> str:
    """CSV of flat objects, the union of their keys (in order of first appearance) as header."""
    out = io.StringIO()
    header = list(dict.fromkeys(key for obj in objects for key in obj))
    writer = csv.DictWriter(out, header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(objects)
    return out.getvalue()
