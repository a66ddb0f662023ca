"""``otwamp ping``: a TWAMP measurement (RFC 5357)."""

import asyncio
import json
import sys
from typing import Any

import click

from otwamp.cli.errors import CliError, one_line_errors
from otwamp.cli.measure import measurement_options, network_reason, run_with_keys, settings_from
from otwamp.cli.report import ike_sa_json, with_ike_sa
from otwamp.drivers.control_client import PingSettings
from otwamp.drivers.twamp_client import TWAMP_PORT, PingOutcome, ping
from otwamp.results.metrics import summarize_twamp
from otwamp.results.records import TwampSessionRecord
from otwamp.results.report import raw_lines, render_text, to_json


@click.command(name="ping")
@measurement_options
@one_line_errors
def ping_command(target: str, as_json: bool, raw: bool, percentiles: bool, **options: Any) -> None:
    """Measure round-trip and one-way delay, loss and jitter with TWAMP (RFC 5357)."""
    settings = settings_from(target, TWAMP_PORT, options)
    try:
        outcome = asyncio.run(run_with_keys(settings, lambda: _ping_with_progress(settings)))
    except OSError as exc:
        raise CliError(network_reason(exc, target, "TWAMP")) from None
    _report(outcome, as_json=as_json, raw=raw, percentiles=percentiles)
    if outcome.problem:
        raise CliError(f"{outcome.problem}; the results above are partial")


async def _ping_with_progress(settings: PingSettings) -> PingOutcome:
    expected = settings.count * settings.interval
    if not sys.stderr.isatty() or expected < 2.0:
        return await ping(settings)
    live: list[TwampSessionRecord] = []
    task = asyncio.create_task(ping(settings, live.append))
    while not task.done():
        await asyncio.wait({task}, timeout=0.5)
        if live:  # a live progress line on the terminal
            record = live[0]
            sys.stderr.write(
                f"\r{len(record.sent)}/{settings.count} sent, {len(record.replies)} replies "
            )
            sys.stderr.flush()
    sys.stderr.write("\r\033[K")
    return task.result()


def _report(outcome: PingOutcome, *, as_json: bool, raw: bool, percentiles: bool) -> None:
    if raw:
        for line in raw_lines(outcome.record, json_lines=as_json):
            click.echo(line)
        return
    summary = summarize_twamp(outcome.record)
    if as_json:
        click.echo(json.dumps(to_json(summary) | ike_sa_json(outcome.ike_spis), indent=2))
    else:
        click.echo(with_ike_sa(render_text(summary, percentiles), outcome.ike_spis))
