"""``otwamp owping``: OWAMP measurements to and from a server (RFC 4656)."""

import asyncio
import json
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
from otwamp.drivers.owamp_client import OWAMP_PORT, OwpingOutcome, owping
from otwamp.errors import ConfigError
from otwamp.results.owamp import raw_lines, render_text, summarize_owamp, to_json
from otwamp.wire.registry import TwampMode

OWAMP = Protocol(
    name="OWAMP",
    port=OWAMP_PORT,
    modes=(TwampMode.UNAUTHENTICATED, TwampMode.AUTHENTICATED, TwampMode.ENCRYPTED),
    padding_help="Octets of Packet Padding in each test packet (default 0; RFC 4656 §3.5).",
    schedule_help=(
        "The receiver learns it from Request-Session: slot type 1 or 0 (RFC 4656 §3.6)."
    ),
    wait_help=(
        "Seconds after its send time at which a packet counts as lost; "
        "sent as Timeout (RFC 4656 §3.5)."
    ),
)


@click.command(name="owping")
@measurement_options(OWAMP)
@click.option("--to", "to_only", is_flag=True, help="Measure only towards the server.")
@click.option("--from", "from_only", is_flag=True, help="Measure only from the server.")
@one_line_errors
def owping_command(
    target: str,
    as_json: bool,
    raw: bool,
    percentiles: bool,
    to_only: bool,
    from_only: bool,
    verbose: int,
    **options: Any,
) -> None:
    """Measure one-way delay, loss and jitter to and from a server with OWAMP (RFC 4656).

    HOST[:PORT] is the OWAMP server (port 861 by default).
    """
    setup_logging(verbose)
    directions = (
        ("to",)
        if to_only and not from_only
        else ("from",)
        if from_only and not to_only
        else ("to", "from")
    )
    settings = settings_from(target, OWAMP, options, directions=directions)
    if TwampMode.MIXED in settings.modes:
        raise ConfigError(
            "OWAMP has no mixed mode (RFC 5618 is TWAMP only): use open, authenticated or encrypted"
        )
    try:
        outcome = asyncio.run(run_with_keys(settings, lambda: owping(settings)))
    except OSError as exc:
        raise CliError(network_reason(exc, target, "OWAMP")) from None
    _report(outcome, as_json=as_json, raw=raw, percentiles=percentiles)
    if outcome.problem:
        raise CliError(f"{outcome.problem}; the results above are partial")


def _report(outcome: OwpingOutcome, *, as_json: bool, raw: bool, percentiles: bool) -> None:
    if raw:
        for record in (outcome.to, outcome.from_):
            if record is not None:
                for line in raw_lines(record, json_lines=as_json):
                    click.echo(line)
        return
    to = summarize_owamp(outcome.to) if outcome.to else None
    from_ = summarize_owamp(outcome.from_) if outcome.from_ else None
    if as_json:
        document = to_json(to, from_, outcome.mode, outcome.key_source)
        click.echo(json.dumps(document | ike_sa_json(outcome.ike_spis), indent=2))
    else:
        click.echo(with_ike_sa(render_text(to, from_, percentiles), outcome.ike_spis))
