"""``otwamp``: the command-line entry point."""

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path

import click

from otwamp import __version__
from otwamp.cli.config import load_server_config, server_settings
from otwamp.cli.errors import CliError, one_line_errors
from otwamp.cli.ike import ike
from otwamp.cli.keys import keys
from otwamp.cli.owping import owping_command
from otwamp.cli.ping import ping_command
from otwamp.drivers.control_server import ServerSettings, TestPorts
from otwamp.drivers.ike_lookup import EmbeddedLookup
from otwamp.drivers.owamp_server import OwampServer
from otwamp.drivers.twamp_server import TwampServer
from otwamp.ike.config import load as load_ike_config
from otwamp.ike.service import IkeService
from otwamp.keys.ikev2 import IkeServerKeys


@click.group()
@click.version_option(__version__, prog_name="otwamp")
def main() -> None:
    """OWAMP/TWAMP measurements, secured with keys from IKEv2 (RFC 7717)."""


main.add_command(keys)
main.add_command(ike)
main.add_command(ping_command)
main.add_command(owping_command)


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
@click.option(
    "--owamp-listen",
    "owamp_listen",
    multiple=True,
    metavar="ADDR[:PORT]",
    help="Address to serve OWAMP-Control on, repeatable; 'off' for none. Default: all, 861.",
)
@click.option(
    "--ike-config",
    type=click.Path(dir_okay=False, path_type=Path),
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
    help="Accept an IKE SA whose peer is not the control client (NAT; D7).",
)
@click.option("-v", "--verbose", count=True, help="Debug log output.")
@one_line_errors
def server(
    listen: tuple[str, ...],
    owamp_listen: tuple[str, ...],
    test_ports: str | None,
    max_control_sessions: int | None,
    control_timeout: float | None,
    config_file: Path | None,
    modes: str | None,
    keyfile: Path | None,
    ike_config: Path | None,
    ike_socket: Path | None,
    ike_check_peer: bool | None,
    verbose: int,
) -> None:
    """Run an OWAMP (RFC 4656) and TWAMP (RFC 5357) server: reflector, receiver and sender."""
    _setup_logging(verbose + 1)
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
                "keyfile": keyfile,
                "ike_config": ike_config,
                "ike_socket": ike_socket,
                "ike_check_peer": ike_check_peer,
            },
        )
        asyncio.run(_serve(settings))
    except OSError as exc:
        raise CliError(f"cannot listen: {exc.strerror or exc}") from None


async def _serve(settings: ServerSettings) -> None:
    """Serve TWAMP and OWAMP until SIGINT or SIGTERM; taken default addresses are skipped."""
    log = logging.getLogger("otwamp.server")
    async with contextlib.AsyncExitStack() as stack:
        if settings.ike_config is not None:
            service = IkeService(load_ike_config(settings.ike_config))
            await service.start()
            stack.push_async_callback(service.stop)
            keys = IkeServerKeys(EmbeddedLookup(service), settings.ike_check_peer)
            settings = replace(settings, key_sources=(*settings.key_sources, keys))
        await _serve_protocols(settings, log)


async def _serve_protocols(settings: ServerSettings, log: logging.Logger) -> None:
    """Serve both protocols until SIGINT or SIGTERM."""
    ports = TestPorts(settings.test_ports)
    defaults = ServerSettings()
    servers = [TwampServer(settings, ports), OwampServer(settings, ports)]
    started = []
    for server, default in zip(servers, (defaults.listen, defaults.owamp_listen), strict=True):
        try:
            await server.start()
        except OSError as exc:
            if server.listen != default:
                raise
            log.warning(
                "%s not served: cannot listen on its default addresses: %s",
                server.NAME,
                exc.strerror or exc,
            )
        else:
            started.append(server)
    if not servers[0].clock.synchronized:
        log.warning("the clock is not synchronized: one-way delays will be flagged unsync")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    for server in started:
        await server.close()


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(asctime)s otwamp %(levelname)s %(message)s", stream=sys.stderr
    )
