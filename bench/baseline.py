"""Summaries of the baseline echo runs (see ``bench.echo``)."""

from collections.abc import Callable

from bench.echo import EchoRun
from bench.stats import JsonObject, distribution_us, median


def _pooled(runs: list[EchoRun], pick: Callable[[EchoRun], list[int]]) -> list[int]:
    return [value for run in runs for value in pick(run)]


def echo_summary(runs: list[EchoRun], rate: int) -> JsonObject:
    """Pooled figures of repeated echo sessions at ``rate``.

    ``median_us``/``p99_us`` are of the user-space round trip for the plain
    echo, and of (T4 - T1) - (T3 - T2) for the stamped one.
    """
    stamped = bool(runs) and runs[0].mode == "stamped"
    main: Callable[[EchoRun], list[int]] = (
        (lambda run: run.rtt_ns) if stamped else (lambda run: run.user_rtt_ns)
    )
    headline = distribution_us(_pooled(runs, main))
    per_run = [distribution_us(main(run)) for run in runs]
    summary: JsonObject = {
        "rate_pps": rate,
        "packets_per_run": runs[0].count if runs else 0,
        "runs": len(runs),
        "received": sum(run.received for run in runs),
        "lost": sum(run.lost for run in runs),
        "metric": "(T4-T1)-(T3-T2)" if stamped else "user-space send-to-receive",
        "median_us": None if headline is None else headline["median_us"],
        "p99_us": None if headline is None else headline["p99_us"],
        "per_run_median_us": [None if d is None else d["median_us"] for d in per_run],
        "median_of_run_medians_us": median(d["median_us"] for d in per_run if d is not None),
        "user_rtt": distribution_us(_pooled(runs, lambda run: run.user_rtt_ns)),
    }
    if stamped:
        summary["rtt"] = headline
        summary["round_trip_wall"] = distribution_us(_pooled(runs, lambda run: run.wall_ns))
        summary["processing"] = distribution_us(_pooled(runs, lambda run: run.processing_ns))
    return summary
