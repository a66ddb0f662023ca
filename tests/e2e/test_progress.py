"""The live progress line of ``otwamp ping`` on a terminal (issue 2, item 5)."""

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) for a pseudo-terminal")
def test_progress_line_on_a_terminal_only(twamp_server: Any, tmp_path: Path) -> None:
    otwamp = str(Path(sys.executable).with_name("otwamp"))
    command = f"{otwamp} ping {twamp_server.target} -c 25 -i 0.1"
    transcript = tmp_path / "tty.out"
    subprocess.run(
        ["script", "-qec", command, str(transcript)],
        check=True,
        timeout=30,
        stdout=subprocess.DEVNULL,
    )
    lines = transcript.read_bytes().decode(errors="replace").replace("\r", "\n").splitlines()
    progress = [line.strip() for line in lines if "/25 sent," in line]
    assert progress, "no progress line on the terminal"
    assert any(line.endswith("replies") for line in progress)
    # Not a terminal: no progress line, only the report.
    piped = subprocess.run(command.split(), capture_output=True, text=True, timeout=30, check=True)
    assert "/25 sent," not in piped.stderr + piped.stdout
    assert "25 sent, 25 received" in piped.stdout
