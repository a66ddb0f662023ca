"""``otwamp ike``: the IKEv2 daemon (RFC 7296, childless, RFC 6023) and ``otwamp ike status``.

The configuration format is documented in ``otwamp.ike.config`` and docs/IKE.md.
"""

import asyncio
import json
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from otwamp.cli.errors import CliError, one_line_errors
from otwamp.cli.logs import setup_logging
from otwamp.ike.broker import query
from otwamp.ike.config import DEFAULT_BROKER, DaemonConfig, load
from otwamp.ike.service import run

STATUS_TIMEOUT = 5.0  # seconds to wait for the daemon's answer


@click.group(invoke_without_command=True)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, readable=False, path_type=Path),
    help="TOML file: [local] and [[peers]] (docs/IKE.md).",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug log output.")
@click.pass_context
@one_line_errors
def ike(ctx: click.Context, config_file: Path | None, verbose: bool) -> None:
    """Run the IKEv2 daemon in the foreground until SIGINT or SIGTERM (RFC 7717 keys).

    It sets up childless IKE SAs with the configured peers, logs one line per established,
    rekeyed or deleted SA to stderr, and hands IPPM keys out on its key broker socket.
    """
    if ctx.invoked_subcommand is not None:
        ctx.obj = config_file
        return
    if config_file is None:
        raise click.UsageError("otwamp ike needs --config FILE (or a command such as status)")
    config = load(config_file)
    if config.broker is None:
        config = replace(config, broker=DEFAULT_BROKER)
    setup_logging(2 if verbose else 1)
    try:
        asyncio.run(_serve(config))
    except OSError as error:
        raise CliError(f"cannot listen on {error.strerror or error}") from None


async def _serve(config: DaemonConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run(config, stop)


@ike.command(name="status")
@click.option(
    "--socket",
    "socket_path",
    type=click.Path(dir_okay=False, readable=False, path_type=Path),
    help=f"The daemon's key broker socket (default: the config's broker, or {DEFAULT_BROKER}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@one_line_errors
def status(ctx: click.Context, socket_path: Path | None, as_json: bool) -> None:
    """List the IKE SAs: SPIs, peer, IDs, algorithms, role and age (never keys)."""
    if socket_path is None:
        config_file: Path | None = ctx.obj
        broker = None if config_file is None else load(config_file).broker
        socket_path = broker or DEFAULT_BROKER
    answer = _ask(socket_path, {"op": "status"})
    sas: list[dict[str, Any]] = answer["sas"]
    half_open = answer.get("half_open")
    if as_json:
        click.echo(json.dumps({"sas": sas, "half_open": half_open}, indent=2))
        return
    if half_open is not None:
        click.echo(f"{half_open} half-open IKE SAs")
    if not sas:
        click.echo("no IKE SAs")
        return
    click.echo("SPIi/SPIr                          peer                  IDs (local <-> remote)")
    for sa in sas:
        click.echo(
            f"{sa['spi_i']}/{sa['spi_r']}  {sa['peer']:<20}  "
            f"{sa['local_id']} <-> {sa['remote_id']}  {sa['suite']}  {sa['role']}  "
            f"{sa['age']:g}s"
        )


def _ask(path: Path, request: dict[str, Any]) -> dict[str, Any]:
    """One broker request; a daemon that is not running is a one-line error."""
    try:
        answer = asyncio.run(asyncio.wait_for(query(path, request), STATUS_TIMEOUT))
    except (OSError, TimeoutError) as error:
        reason = "no answer" if isinstance(error, TimeoutError) else error.strerror or error
        raise CliError(
            f"no IKE daemon answers on {path} ({reason}): is otwamp ike running?"
        ) from None
    except ValueError:
        raise CliError(f"{path}: the answer is not a key broker's") from None
    if not answer.get("ok"):
        raise CliError(f"{path}: {answer.get('error', 'request refused')}")
    return answer
