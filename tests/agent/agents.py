"""Two ``otwamp agent`` processes on 127.0.0.1 and 127.0.0.2 that measure each other.

Import as ``from tests.agent.agents import ...``. Each agent is a real process
with its own configuration file, SQLite archive and log; the mesh file is shared.
"""

import contextlib
import sqlite3
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.ike_support import Logged, free_port, otwamp_command

HOSTS = {"a": "127.0.0.1", "b": "127.0.0.2"}
PASSPHRASE = b"an agent pass-phrase"


@dataclass
class Agent:
    name: str
    address: str
    config: Path
    archive: Path
    process: Logged | None = None

    def rows(self, where: str = "1 = 1") -> list[dict[str, Any]]:
        """The archive's sessions rows (SQLite, read-only)."""
        if not self.archive.exists():
            return []
        with contextlib.closing(sqlite3.connect(f"file:{self.archive}?mode=ro", uri=True)) as db:
            db.row_factory = sqlite3.Row
            try:
                return [dict(row) for row in db.execute(f"SELECT * FROM sessions WHERE {where}")]
            except sqlite3.OperationalError:  # not made yet (the first write migrates)
                return []


def write_mesh(directory: Path, ike: bool = False) -> dict[str, dict[str, int]]:
    """mesh.toml for agents a and b on free ports; returns each member's ports."""
    ports: dict[str, dict[str, int]] = {}
    lines = []
    for name, host in HOSTS.items():
        ports[name] = {key: free_port(host) for key in ("twamp_port", "owamp_port")}
        ports[name]["ike_port"] = free_port(host)
        lines += ["[[members]]", f'name = "{name}"', f'address = "{host}"']
        lines += [f"{key} = {value}" for key, value in ports[name].items()]
        if ike:
            lines.append(f'ike_id = "fqdn:{name}.ippm.test"')
        lines.append("")
    (directory / "mesh.toml").write_text("\n".join(lines))
    (directory / "keys.pfs").write_text(f"alice\t{PASSPHRASE.hex()}\n")
    (directory / "keys.pfs").chmod(0o600)
    return ports


def write_agent(directory: Path, name: str, server: str, tests: str, extra: str = "") -> Agent:
    """NAME.toml: the agent ``name`` of the mesh, its archive NAME.db, no metrics unless
    ``extra`` says otherwise."""
    archive = directory / f"{name}.db"
    config = directory / f"{name}.toml"
    head = f'[agent]\nname = "{name}"\nmesh = "mesh.toml"\narchive = "{archive.name}"\n'
    if "metrics" not in extra:
        head += 'metrics = "off"\n'
    text = head + extra + "\n[agent.server]\n" + textwrap.dedent(server) + textwrap.dedent(tests)
    config.write_text(text)
    return Agent(name, HOSTS[name], config, archive)


@contextlib.contextmanager
def running(*agents: Agent) -> Iterator[tuple[Agent, ...]]:
    """The agents as processes for the block, each waited for until it runs; stopped after."""
    try:
        for agent in agents:
            log = agent.config.with_suffix(".log")
            agent.process = Logged([*otwamp_command(), "agent", "--config", str(agent.config)], log)
            agent.process.wait_for(" jobs of ")
        yield agents
    finally:
        for agent in agents:
            if agent.process is not None:
                agent.process.stop()
