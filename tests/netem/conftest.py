"""Fixtures of the ground-truth tests: two hosts joined through the link emulator.

Fixtures
--------
``topology``
    Module scope. Namespaces ``emuA<pid>``, ``emuB<pid>`` and ``emuM<pid>`` wired as
    ``namespaces.py`` draws (A 10.77.0.1, B 10.77.0.2, the emulator's interfaces in M);
    deleted at the end.
``keyfile``
    Module scope. A pass-phrase file with identity ``alice``.
``server``
    Module scope. ``otwamp server`` on host B serving TWAMP (862) and OWAMP (861) in open and
    authenticated modes with ``keyfile``.
``emulate``
    Function scope. ``emulate(*args)`` starts the emulator in M with those arguments (plus
    ``--udp-ports`` of the server's test ports) and returns its ``RunningEmulator``, stopped
    at the end of the test.
"""

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.netem.namespaces import (
    TEST_PORTS,
    RunningEmulator,
    Topology,
    emulating,
    otwamp_server,
    wired,
)


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and ip netns")
    with wired(f"emu{os.getpid()}") as wired_topology:
        yield wired_topology


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "keys.pfs"
    path.write_text("alice\t" + b"correct horse".hex() + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def server(
    topology: Topology, keyfile: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    log = tmp_path_factory.mktemp("server") / "server.log"
    with otwamp_server(topology, log, "--modes", "open,authenticated", "--keyfile", str(keyfile)):
        yield


@pytest.fixture
def emulate(topology: Topology) -> Iterator[Callable[..., RunningEmulator]]:
    with contextlib.ExitStack() as stack:

        def start(*args: str) -> RunningEmulator:
            ports = f"{TEST_PORTS[0]}-{TEST_PORTS[1]}"
            return stack.enter_context(emulating(topology, "--udp-ports", ports, *args))

        yield start
