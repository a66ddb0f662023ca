"""The network namespace each strongSwan interop test runs in (removed afterwards)."""

import os
import subprocess

import pytest

from .charon import run_in


@pytest.fixture
def netns():
    name = f"ikx{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        run_in(name, "ip", "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)
