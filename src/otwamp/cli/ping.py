"""``otwamp ping``: a TWAMP measurement (RFC 5357)."""

import asyncio
import json
import sys
from typing import Any

import click

from otwamp.cli.errors import CliError, one_line_errors
from otwamp.cli.logs import setup_logging
from otwamp.cli.measure import (
    Protocol,
    measurement_options,
    network_reason,
    run_with_keys,
    settings_from,
)
from otwamp.cli.report import ike_sa_json, with_ike_sa
from otwamp.drivers.control_client import PingSettings
from otwamp.drivers.twamp_client import TWAMP_PORT, PingOutcome, ping
from otwamp.results.metrics import summarize_twamp
from otwamp.results.records import TwampSessionRecord
from otwamp.results.report import raw_lines, render_text, timestamps_json, to_json
from otwamp.wire.registry import TwampMode
from otwamp.wire.twamp_features import EXTENSION_NAMES
from otwamp.wire.twamp_test import (
    REFLECTOR_AUTH_SIZE,
    REFLECTOR_OPEN_SIZE,
    SENDER_AUTH_SIZE,
    SENDER_OPEN_SIZE,
)

TWAMP = Protocol(
    name="TWAMP",
    port=TWAMP_PORT,
    modes=(
        TwampMode.UNAUTHENTICATED,
        TwampMode.AUTHENTICATED,
        TwampMode.ENCRYPTED,
        TwampMode.MIXED,
    ),
    padding_help=(
        "Octets of Packet Padding in each test packet. Default: enough for equal sizes both ways "
        f"({REFLECTOR_OPEN_SIZE - SENDER_OPEN_SIZE} in open and mixed mode, "
        f"{REFLECTOR_AUTH_SIZE - SENDER_AUTH_SIZE} in authenticated and encrypted mode; "
        "RFC 5357 §4.2.1)."
    ),
    schedule_help="Only this client knows it: TWAMP does not send it (RFC 5357 §4.1.1).",
    wait_help=(
        "Seconds to wait for late replies after the last packet; sent as Timeout (RFC 5357 §3.5)."
    ),
)


@click.command(name="ping")
@measurement_options(TWAMP)
@click.option(
    "--start-n",
    is_flag=True,
    help=(
        "Start and stop the session with Start-N-Sessions / Stop-N-Sessions when the server "
        "offers Individual Session Control (RFC 5938)."
    ),
)
@click.option(
    "--reflect-octets",
    type=click.IntRange(min=0, max=0xFFFF),
    metavar="N",
    help=(
        "Ask the reflector to return N octets of our padding (Reflect Octets, RFC 6038); "
        "replies are checked. Fails if the server does not offer it."
    ),
)
@one_line_errors
def ping_command(
    target: str,
    as_json: bool,
    raw: bool,
    percentiles: bool,
    verbose: int,
    start_n: bool,
    reflect_octets: int | None,
    **options: Any,
) -> None:
    """Measure round-trip and one-way delay, loss and jitter with TWAMP (RFC 5357).

    HOST[:PORT] is the TWAMP server (port 862 by default). Symmetrical Size (RFC 6038,
    without --padding) and DSCP and ECN Monitoring (RFC 7750) are used when offered.
    """
    setup_logging(verbose)
    settings = settings_from(target, TWAMP, options, start_n=start_n, reflect_octets=reflect_octets)
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
    tally = {} if outcome.tally is None else outcome.tally.to_json()
    if as_json:
        extensions = {"twamp_extensions": _extension_names(outcome.modes)} | tally
        body = to_json(summary) | timestamps_json(summary) | extensions
        body |= ike_sa_json(outcome.ike_spis)
        click.echo(json.dumps(body, indent=2))
    else:
        text = render_text(summary, percentiles)
        lines = [] if outcome.tally is None else outcome.tally.lines()
        if outcome.modes:
            lines.insert(0, f"TWAMP extensions: {', '.join(_extension_names(outcome.modes))}")
        click.echo(with_ike_sa("\n".join([text, *lines]), outcome.ike_spis))


def _extension_names(modes: int) -> list[str]:
    """The optional modes used, by their --twamp-extensions names."""
    return [name for name, bit in EXTENSION_NAMES.items() if modes & bit]
