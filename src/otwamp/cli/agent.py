"""``otwamp agent``: serve, measure on a schedule, archive, export (docs/AGENT.md)."""

import asyncio
from pathlib import Path

import click

from otwamp.agent.config import load_agent_config
from otwamp.agent.plan import describe, make_plan, with_mesh_peers
from otwamp.agent.service import ike_config_file, run_agent
from otwamp.cli.errors import CliError, one_line_errors
from otwamp.cli.logs import setup_logging

FILE = click.Path(dir_okay=False, readable=False, path_type=Path)


@click.command(name="agent")
@click.option("--config", "config_file", type=FILE, help="Run the agent with this TOML file.")
@click.option("--check", "check_file", type=FILE, help="Check this TOML file and print the plan.")
@click.option(
    "-v", "--verbose", count=True, help="More log output on stderr: -v adds DEBUG (default INFO)."
)
@one_line_errors
def agent_command(config_file: Path | None, check_file: Path | None, verbose: int) -> None:
    """Serve TWAMP/OWAMP, measure the configured targets or mesh on a schedule, archive the
    results and export them to Prometheus, in one process.

    SIGHUP reloads the configuration; SIGTERM stops. A configuration error is one line naming
    the file, the line and the key, exit status 1.
    """
    if (config_file is None) == (check_file is None):
        raise CliError("give --config FILE to run, or --check FILE to check")
    config = load_agent_config(config_file or check_file)  # type: ignore[arg-type]
    plan = make_plan(config)
    ike_file = ike_config_file(config)
    if ike_file is not None:
        with_mesh_peers(ike_file, config)  # the mesh's identities parse
    if check_file is not None:
        click.echo(describe(config, plan))
        return
    setup_logging(verbose + 1)
    try:
        asyncio.run(run_agent(config))
    except OSError as exc:
        raise CliError(f"cannot listen: {exc.strerror or exc}") from None
