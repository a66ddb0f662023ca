"""``otwamp ike``: the IKEv2 daemon (RFC 7296, childless, RFC 6023) and the commands that ask it
through its key broker: ``status``, ``rekey SA`` and ``delete SA``.

The configuration format is documented in ``otwamp.ike.config`` and docs/IKE.md.
"""

import asyncio
import ipaddress
import json
import re
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from otwamp.cli.addresses import parse_endpoint
from otwamp.cli.errors import CliError, one_line_errors
from otwamp.cli.logs import setup_logging
from otwamp.control.server_policy import fmt
from otwamp.errors import OtwampError
from otwamp.ike.broker import query
from otwamp.ike.config import DEFAULT_BROKER, DaemonConfig, load
from otwamp.ike.service import run
from otwamp.ike.timers import EXCHANGE_TIMEOUT

STATUS_TIMEOUT = 5.0  # seconds to wait for the daemon's answer
EXCHANGE_MARGIN = 5.0  # ... beyond the daemon's own wait for its peer, for rekey and delete
_SPIS = re.compile(r"([0-9a-fA-F]{16})[/_]([0-9a-fA-F]{16})")
F = TypeVar("F", bound=Callable[..., Any])


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


def _socket_option(command: F) -> F:
    """``--socket PATH``, the daemon's key broker socket."""
    return click.option(
        "--socket",
        "socket_path",
        type=click.Path(dir_okay=False, readable=False, path_type=Path),
        help=f"The daemon's key broker socket (default: the config's broker, or {DEFAULT_BROKER}).",
    )(command)


def _socket(ctx: click.Context, socket_path: Path | None) -> Path:
    """``--socket``, else the broker of ``otwamp ike --config FILE``, else the default."""
    if socket_path is not None:
        return socket_path
    config_file: Path | None = ctx.obj
    broker = None if config_file is None else load(config_file).broker
    return broker or DEFAULT_BROKER


@ike.command(name="status")
@_socket_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_context
@one_line_errors
def status(ctx: click.Context, socket_path: Path | None, as_json: bool) -> None:
    """List the IKE SAs: SPIs, peer, IDs, algorithms, role and age (never keys)."""
    answer = _ask(_socket(ctx, socket_path), {"op": "status"})
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
            f"{_spis(sa)}  {_peer(sa):<20}  "
            f"{sa['local_id']} <-> {sa['remote_id']}  {sa['suite']}  {sa['role']}  "
            f"{sa['age']:g}s"
        )


_SA_HELP = (
    "SA is SPIi/SPIr (or SPIi_SPIr) in hex as `otwamp ike status` prints them, or a peer's "
    "address, ADDR or ADDR:PORT ([ADDR]:PORT for IPv6): then every SA with that peer."
)


def _sa_command(name: str) -> Callable[[F], F]:
    """``otwamp ike NAME SA [--socket PATH] [--json]``: an exchange on the SAs SA names."""

    def decorate(command: F) -> F:
        decorators = (
            ike.command(name=name, epilog=_SA_HELP),
            click.argument("sa"),
            _socket_option,
            click.option(
                "--json", "as_json", is_flag=True, help="Print the daemon's answer as JSON."
            ),
            click.pass_context,
            one_line_errors,
        )
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return decorate


def _exchange(
    ctx: click.Context, op: str, sa: str, socket_path: Path | None, as_json: bool
) -> list[dict[str, Any]]:
    """The daemon's answers to ``op`` on the SAs ``sa`` names (none once printed as JSON)."""
    request = {"op": op, **_selector(sa)}
    answer = _ask(_socket(ctx, socket_path), request, EXCHANGE_TIMEOUT + EXCHANGE_MARGIN)
    done: list[dict[str, Any]] = answer["rekeyed" if op == "rekey" else "deleted"]
    if as_json:
        click.echo(json.dumps(done, indent=2))
        return []
    return done


@_sa_command("rekey")
def rekey(ctx: click.Context, sa: str, socket_path: Path | None, as_json: bool) -> None:
    """Rekey an IKE SA now (RFC 7296 §2.18): new SPIs and a new IPPM key, the old SA deleted."""
    for pair in _exchange(ctx, "rekey", sa, socket_path, as_json):
        old, new = pair["old"], pair["new"]
        click.echo(f"rekeyed IKE SA {_spis(old)} with {_peer(old)} to {_spis(new)}")


@_sa_command("delete")
def delete(ctx: click.Context, sa: str, socket_path: Path | None, as_json: bool) -> None:
    """Delete an IKE SA now (RFC 7296 §1.4.1); sessions already keyed by it keep their key."""
    for gone in _exchange(ctx, "delete", sa, socket_path, as_json):
        unanswered = "" if gone["answered"] else " (the peer did not answer: forgotten here)"
        click.echo(f"deleted IKE SA {_spis(gone)} with {_peer(gone)}{unanswered}")


def _selector(text: str) -> dict[str, Any]:
    """The broker's SA selector for ``SPIi/SPIr``, ``SPIi_SPIr``, ``ADDR`` or ``ADDR:PORT``."""
    spis = _SPIS.fullmatch(text.strip())
    if spis:
        return {"spi_i": spis[1].lower(), "spi_r": spis[2].lower()}
    try:
        host, port = parse_endpoint(text, 0)
        ipaddress.ip_address(host)
    except (OtwampError, ValueError):
        raise CliError(
            f"{text!r}: name an SA by SPIi/SPIr (16 hex digits each) or by peer address"
        ) from None
    return {"host": host} if port == 0 else {"host": host, "port": port}


def _spis(sa: dict[str, Any]) -> str:
    return f"{sa['spi_i']}/{sa['spi_r']}"


def _peer(sa: dict[str, Any]) -> str:
    return fmt(str(sa["host"]), int(sa["port"]))


def _ask(path: Path, request: dict[str, Any], timeout: float = STATUS_TIMEOUT) -> dict[str, Any]:
    """One broker request; a daemon that is not running is a one-line error."""
    try:
        answer = asyncio.run(asyncio.wait_for(query(path, request), timeout))
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
