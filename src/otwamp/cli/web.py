"""``otwamp web``: serve the dashboard over an archive, read-only, on loopback by default."""

import asyncio
import logging
import signal
from pathlib import Path
from typing import Any

import click

from otwamp.archive import DEFAULT_ARCHIVE
from otwamp.archive.query import Reader
from otwamp.cli.addresses import format_endpoint
from otwamp.cli.errors import CliError, one_line_errors
from otwamp.cli.logs import setup_logging

log = logging.getLogger("otwamp.web")


@click.command(name="web")
@click.option(
    "--archive",
    "location",
    envvar="OTWAMP_ARCHIVE",
    metavar="PATH|URL",
    help=f"The archive: a SQLite file or a postgresql:// URL (default {DEFAULT_ARCHIVE}).",
)
@click.option(
    "--listen", metavar="ADDR[:PORT]", help="Where to serve the pages (default 127.0.0.1:8862)."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, readable=False, path_type=Path),
    help="TOML file with a [web] table (thresholds per pair, docs/WEB.md).",
)
@click.option("--loss-amber", type=float, metavar="PCT", help="Amber above this loss (0.1).")
@click.option("--loss-red", type=float, metavar="PCT", help="Red above this loss (1).")
@click.option("--delay-amber", type=float, metavar="MS", help="Amber above this delay (none).")
@click.option("--delay-red", type=float, metavar="MS", help="Red above this delay (none).")
@click.option(
    "--stale-after", metavar="DURATION", help="Grey a pair whose last session is older (10m)."
)
@click.option("--window", metavar="DURATION", help="The grid shows pairs measured within (1d).")
@click.option("--refresh", metavar="DURATION", help="How often the grid updates itself (10s).")
@click.option("-v", "--verbose", count=True, help="Log requests' failures and more on stderr.")
@one_line_errors
def web_command(location: str | None, config_file: Path | None, verbose: int, **flags: Any) -> None:
    """Serve the dashboard: the mesh grid and each pair's history, from an archive.

    Read-only (GET only). It binds to loopback unless --listen says otherwise.
    """
    try:
        from otwamp.web import load_web_config, serving, web_settings
    except ImportError:
        raise CliError("the dashboard needs aiohttp: pip install 'otwamp[agent]'") from None
    setup_logging(verbose + 1)
    table = load_web_config(config_file) if config_file else {}
    settings = web_settings(table, flags)
    location = location or table.get("archive") or DEFAULT_ARCHIVE

    async def run() -> None:
        await (await Reader.open(location)).close()  # a bad location is one line, now
        try:
            async with serving(location, settings) as addresses:
                for host, port in addresses:
                    log.info("dashboard on http://%s/", format_endpoint(host, port))
                await _until_signal()
        except OSError as exc:
            where = format_endpoint(*settings.listen)
            raise CliError(f"cannot listen on {where}: {exc.strerror or exc}") from None

    asyncio.run(run())


async def _until_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
