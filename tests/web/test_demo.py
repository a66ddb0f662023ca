"""make demo's last part: three agents on loopback and the dashboard showing all their pairs."""

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).parents[2] / "scripts" / "demo_web.py"


def test_the_demo_mesh_fills_the_dashboard() -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the dashboard: http://127.0.0.1:" in done.stdout
    assert "the grid shows all 6 pairs" in done.stdout
