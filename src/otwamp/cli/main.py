"""``otwamp``: the command-line entry point."""

import asyncio
import logging
import signal
from pathlib import Path

import click

from otwamp import __version__
from otwamp.cli.agent import agent_command
from otwamp.cli.config import MIB, load_server_config, server_settings
from otwamp.cli.errors import CliError, one_line_errors
from otwamp.cli.ike import ike
from otwamp.cli.keys import keys
from otwamp.cli.listen import usable_listeners
from otwamp.cli.logs import setup_logging
from otwamp.cli.owping import owping_command
from otwamp.cli.ping import ping_command
from otwamp.cli.results import results
from otwamp.cli.serving import exit_now, serving
from otwamp.cli.stamp import (
    stamp_command,
    stamp_flags,
    stamp_reflector_settings,
    stamp_server_options,
)
from otwamp.cli.strongswan import strongswan_options
from otwamp.cli.web import web_command
from otwamp.drivers.control_server import ServerSettings
from otwamp.drivers.stamp_reflector import StampReflectorSettings

DEFAULTS = ServerSettings()


@click.group()
@click.version_option(__version__, prog_name="otwamp")
def main() -> None:
    """OWAMP/TWAMP measurements, secured with keys from IKEv2 (RFC 7717)."""


main.add_command(keys)
main.add_command(ike)
main.add_command(ping_command)
main.add_command(owping_command)
main.add_command(results)
main.add_command(stamp_command)
main.add_command(web_command)
main.add_command(agent_command)


@main.command()
@click.option(
    "--listen",
    "listen",
    multiple=True,
    metavar="ADDR[:PORT]",
    help=(
        "Address to serve TWAMP-Control on, repeatable; IPv6 as [::1]:862; 'off' for none. "
        "Default: all, 862."
    ),
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
    type=click.Path(dir_okay=False, readable=False, path_type=Path),
    help="TOML file with a [server] table.",
)
@click.option(
    "--modes", help="Modes to offer: open, authenticated, encrypted, mixed (default open)."
)
@click.option(
    "--twamp-extensions",
    "twamp_extensions",
    metavar="LIST",
    help=(
        "Optional TWAMP modes to offer, comma-separated: individual (RFC 5938), "
        "reflect-octets, symmetrical-size (RFC 6038), dscp-ecn (RFC 7750); all; none "
        "(the default)."
    ),
)
@click.option(
    "--keyfile",
    type=click.Path(dir_okay=False, readable=False, path_type=Path),
    help="Pass-phrase file (identity<TAB>hex).",
)
@click.option(
    "--owamp-listen",
    "owamp_listen",
    multiple=True,
    metavar="ADDR[:PORT]",
    help="Address to serve OWAMP-Control on, repeatable; 'off' for none. Default: all, 861.",
)
@click.option(
    "--ike-config",
    type=click.Path(dir_okay=False, readable=False, path_type=Path),
    help="Run an embedded IKEv2 daemon with this configuration for RFC 7717 keys.",
)
@click.option(
    "--ike-socket",
    type=click.Path(path_type=Path),
    help="Take RFC 7717 keys from the otwamp ike key broker at this socket.",
)
@click.option(
    "--no-ike-peer-check",
    "ike_check_peer",
    flag_value=False,
    default=None,
    help=(
        "Accept an IKE SA whose peer address is not the control client's "
        "(a client behind NAT); by default they must match."
    ),
)
@click.option(
    "--keep-sessions-for",
    "keep_sessions_for",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help=(
        "How long finished OWAMP sessions stay fetchable with Fetch-Session from another "
        f"connection (RFC 4656 §3.8; default {DEFAULTS.keep_sessions_for:g})."
    ),
)
@click.option(
    "--keep-sessions-mib",
    "keep_sessions_mib",
    type=click.FloatRange(min=0, min_open=True),
    metavar="MIB",
    help=(
        "At most this many MiB of those sessions' records, all clients together "
        f"(default {DEFAULTS.keep_sessions_bytes / MIB:g})."
    ),
)
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="More log output on stderr: -v adds DEBUG (the default is INFO).",
)
@strongswan_options
@stamp_server_options
@one_line_errors
def server(
    listen: tuple[str, ...],
    owamp_listen: tuple[str, ...],
    test_ports: str | None,
    max_control_sessions: int | None,
    control_timeout: float | None,
    config_file: Path | None,
    modes: str | None,
    twamp_extensions: str | None,
    keyfile: Path | None,
    ike_config: Path | None,
    ike_socket: Path | None,
    ike_check_peer: bool | None,
    keep_sessions_for: float | None,
    keep_sessions_mib: float | None,
    verbose: int,
    stamp_listen: tuple[str, ...],
    stamp_mode: str | None,
    stamp_keyfile: Path | None,
    stamp_key_source: str | None,
    **strongswan: str | bool | None,
) -> None:
    """Run an OWAMP (RFC 4656) and TWAMP (RFC 5357) server: reflector, receiver and sender.

    It exits with status 1 and one line on stderr when it has no address to listen on.
    """
    setup_logging(verbose + 1)
    try:
        table = load_server_config(config_file) if config_file else {}
        settings = server_settings(
            table,
            {
                "listen": listen,
                "owamp_listen": owamp_listen,
                "test_ports": test_ports,
                "max_control_sessions": max_control_sessions,
                "control_timeout": control_timeout,
                "modes": modes,
                "twamp_extensions": twamp_extensions,
                "keyfile": keyfile,
                "ike_config": ike_config,
                "ike_socket": ike_socket,
                "ike_check_peer": ike_check_peer,
                "keep_sessions_for": keep_sessions_for,
                "keep_sessions_mib": keep_sessions_mib,
                **strongswan,
            },
        )
        flags = stamp_flags(
            stamp_listen=stamp_listen,
            stamp_mode=stamp_mode,
            stamp_keyfile=stamp_keyfile,
            stamp_key_source=stamp_key_source,
        )
        stamp = stamp_reflector_settings(table | flags)
        only_stamp = bool(stamp.endpoints) and not settings.listen and not settings.owamp_listen
        asyncio.run(_serve(settings if only_stamp else usable_listeners(settings), stamp))
    except OSError as exc:
        raise CliError(f"cannot listen: {exc.strerror or exc}") from None


async def _serve(settings: ServerSettings, stamp: StampReflectorSettings) -> None:
    """Serve TWAMP and OWAMP, with the embedded IKE daemon if configured, until a signal."""
    async with serving(settings, stamp):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        logging.getLogger("otwamp.server").info(
            "shutting down (a second SIGINT or SIGTERM exits at once)"
        )
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, exit_now, sig)
