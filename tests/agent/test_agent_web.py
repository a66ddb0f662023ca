"""An agent with a [web] table serves the dashboard over its own archive (issue 12)."""

import json
import urllib.error
import urllib.request
from pathlib import Path

from tests.agent.agents import running, write_agent, write_mesh
from tests.agent.test_agent_e2e import stop
from tests.e2e.ike_support import free_port, wait_until

SERVER = 'modes = "open"\n'
TWAMP = """
[[test]]
name = "rtt"
protocol = "twamp"
targets = "mesh"
packets = 10
interval = 0.02
every = "1s"
"""


def grid_cell(port: int, source: str, destination: str) -> dict | None:
    """The TWAMP grid's cell from ``source`` to ``destination``, None while it has none."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/grid", timeout=5) as answer:
            grid = json.load(answer)
    except urllib.error.HTTPError as error:
        assert error.code == 503  # no archive yet: the first session makes it
        return None
    cells = next(g for g in grid["grids"] if g["protocol"] == "twamp")["cells"]
    return next(
        (c for c in cells if (c["source"], c["destination"]) == (source, destination)), None
    )


def test_an_agent_serves_the_dashboard_of_its_archive(tmp_path: Path) -> None:
    write_mesh(tmp_path)
    port = free_port("127.0.0.1")
    web = f'\n[web]\nlisten = "127.0.0.1:{port}"\n'
    a = write_agent(tmp_path, "a", SERVER, TWAMP + web)
    b = write_agent(tmp_path, "b", SERVER, "")
    with running(b, a):
        assert a.process is not None
        a.process.wait_for(f"dashboard on http://127.0.0.1:{port}/")
        wait_until(lambda: grid_cell(port, a.address, b.address) is not None, "a grid cell")
        cell = grid_cell(port, a.address, b.address)
        assert cell is not None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        stop(a)
        stop(b)
    assert [half["state"] for half in cell["halves"]] == ["ok", "ok"], cell
    assert any(row["destination"] == b.address for row in a.rows())
