"""``otwamp``: the command-line entry point."""

import asyncio
import errno
import json
import logging
import signal
import socket
import sys
from pathlib import Path

import click

from otwamp import __version__
from otwamp.cli.addresses import parse_endpoint
from otwamp.cli.config import load_server_config, server_settings
from otwamp.cli.dscp import parse_dscp
from otwamp.cli.errors import CliError, one_line_errors
from otwamp.cli.keys import keys
from otwamp.cli.modes import parse_modes
from otwamp.control.security import DEFAULT_MAX_COUNT
from otwamp.drivers.control_client import PingSettings
from otwamp.drivers.twamp_client import TWAMP_PORT, PingOutcome, ping
from otwamp.drivers.twamp_server import TwampServer
from otwamp.errors import ConfigError
from otwamp.keys.passphrase import IdentityKeys, PassphraseFile
from otwamp.results.metrics import summarize_twamp
from otwamp.results.records import TwampSessionRecord
from otwamp.results.report import raw_lines, render_text, to_json
from otwamp.session.schedule import Schedule

MAX_PADDING = 65_507 - 14


@click.group()
@click.version_option(__version__, prog_name="otwamp")
def main() -> None:
    """OWAMP/TWAMP measurements, secured with keys from IKEv2 (RFC 7717)."""


main.add_command(keys)


@main.command()
@click.option(
    "--listen",
    "listen",
    multiple=True,
    metavar="ADDR[:PORT]",
    help="Address to serve TWAMP-Control on, repeatable; IPv6 as [::1]:862. Default: all, 862.",
)
@click.option(
    "--test-ports", metavar="LO-HI", help="UDP ports for test sessions. Default: any free port."
)
@click.option(
    "--max-sessions",
    "max_control_sessions",
    type=click.IntRange(min=1),
    help="Most control connections at once (default 64).",
)
@click.option(
    "--control-timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds a control connection may stay idle (default 900, SERVWAIT).",
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file with a [server] table.",
)
@click.option(
    "--modes", help="Modes to offer: open, authenticated, encrypted, mixed (default open)."
)
@click.option(
    "--keyfile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Pass-phrase file (identity<TAB>hex).",
)
@click.option("-v", "--verbose", count=True, help="Debug log output.")
@one_line_errors
def server(
    listen: tuple[str, ...],
    test_ports: str | None,
    max_control_sessions: int | None,
    control_timeout: float | None,
    config_file: Path | None,
    modes: str | None,
    keyfile: Path | None,
    verbose: int,
) -> None:
    """Run a TWAMP server and Session-Reflector (RFC 5357)."""
    _setup_logging(verbose + 1)
    try:
        table = load_server_config(config_file) if config_file else {}
        settings = server_settings(
            table,
            {
                "listen": listen,
                "test_ports": test_ports,
                "max_control_sessions": max_control_sessions,
                "control_timeout": control_timeout,
                "modes": modes,
                "keyfile": keyfile,
            },
        )
        asyncio.run(_serve(TwampServer(settings)))
    except OSError as exc:
        raise CliError(f"cannot listen: {exc.strerror or exc}") from None


async def _serve(server: TwampServer) -> None:
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logging.getLogger("otwamp.server").info("shutting down")
    await server.close()


@main.command(name="ping")
@click.argument("target", metavar="HOST[:PORT]")
@click.option(
    "-c",
    "--count",
    type=click.IntRange(min=1, max=10_000_000),
    default=100,
    show_default=True,
    help="Test packets to send.",
)
@click.option(
    "-i",
    "--interval",
    type=click.FloatRange(min=0),
    default=0.1,
    show_default=True,
    help="Seconds between packets (mean, for poisson).",
)
@click.option(
    "--schedule", type=click.Choice(["fixed", "poisson"]), default="fixed", show_default=True
)
@click.option(
    "--padding",
    type=click.IntRange(min=0, max=MAX_PADDING),
    help="Octets of Packet Padding (default: equal sizes both ways, 27 or 64).",
)
@click.option(
    "--dscp",
    default="0",
    show_default=True,
    help="DSCP of test packets: a name (EF, AF41, CS5...) or 0-63.",
)
@click.option("-4", "ipv4", is_flag=True, help="Use IPv4 only.")
@click.option("-6", "ipv6", is_flag=True, help="Use IPv6 only.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Seconds to wait for replies after the last packet.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object (with --raw: one JSON record per packet).",
)
@click.option("--raw", is_flag=True, help="Print one line per packet.")
@click.option("-a", "--percentiles", is_flag=True, help="Add percentiles to the report.")
@click.option(
    "-A",
    "--auth-modes",
    "modes",
    default="open",
    show_default=True,
    help="Acceptable modes, strongest used: open, authenticated, encrypted, mixed.",
)
@click.option("-u", "--identity", help="Identity (KeyID) in the pass-phrase file.")
@click.option(
    "-k",
    "--keyfile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Pass-phrase file (identity<TAB>hex).",
)
@click.option(
    "--max-count",
    type=click.IntRange(min=1024),
    default=DEFAULT_MAX_COUNT,
    show_default=True,
    help="Highest PBKDF2 Count to accept from a server.",
)
@one_line_errors
def ping_command(
    target: str,
    count: int,
    interval: float,
    schedule: str,
    padding: int | None,
    dscp: str,
    ipv4: bool,
    ipv6: bool,
    wait: float,
    as_json: bool,
    raw: bool,
    percentiles: bool,
    modes: str,
    identity: str | None,
    keyfile: Path | None,
    max_count: int,
) -> None:
    """Measure round-trip and one-way delay, loss and jitter with TWAMP (RFC 5357)."""
    _setup_logging(0)
    if ipv4 and ipv6:
        raise click.UsageError("-4 and -6 exclude each other")
    try:
        host, port = parse_endpoint(target, TWAMP_PORT)
        settings = PingSettings(
            host=host,
            port=port,
            family=socket.AF_INET if ipv4 else socket.AF_INET6 if ipv6 else socket.AF_UNSPEC,
            count=count,
            interval=interval,
            schedule=Schedule(schedule),
            padding=padding,
            dscp=parse_dscp(dscp),
            wait=wait,
            modes=parse_modes(modes),
            keys=_client_keys(identity, keyfile),
            max_count=max_count,
        )
        outcome = asyncio.run(_ping_with_progress(settings))
    except OSError as exc:
        raise CliError(_network_reason(exc, target)) from None
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
        click.echo(json.dumps(to_json(summary), indent=2))
    else:
        click.echo(render_text(summary, percentiles))


def _client_keys(identity: str | None, keyfile: Path | None) -> IdentityKeys | None:
    """The client's pass-phrase key, from -u and -k together."""
    if (identity is None) != (keyfile is None):
        raise ConfigError("-u IDENTITY and -k FILE go together")
    if identity is None or keyfile is None:
        return None
    return IdentityKeys(PassphraseFile.load(keyfile), identity)


def _network_reason(exc: OSError, target: str) -> str:
    """A one-line reason for a failed connection."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {target}: {exc.strerror}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {target} refused (no TWAMP server listening?)"
    if isinstance(exc, TimeoutError):
        return f"timed out connecting to {target}"
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"no route to {target}"
    return f"{target}: {exc.strerror or exc}"


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(asctime)s otwamp %(levelname)s %(message)s", stream=sys.stderr
    )
