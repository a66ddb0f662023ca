"""Fixtures of the abuse suite (issue 10): a real ``otwamp server`` with room to be attacked.

``abuse_server``
    Function scope. ``abuse_server(test_ports=..., nofile=None, extra_args=())``
    is a context manager running ``otwamp server`` (OWAMP and TWAMP on
    127.0.0.1, :func:`tests.e2e.conftest.running_server`) with a range of
    ``test_ports`` free UDP ports, wide enough that the server's quotas, not
    the range, decide; with ``nofile`` the server starts under that
    RLIMIT_NOFILE soft limit (``ulimit -n``).
"""

import contextlib
import functools
import resource
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.abuse.attackers import HOST
from tests.e2e.conftest import OwampServer, free_ports, running_server

TEST_PORTS = 160  # above the per-connection quota (64) plus the legitimate clients' sessions


@contextlib.contextmanager
def fd_limit(soft: int | None) -> Iterator[None]:
    """Processes started in the block inherit the RLIMIT_NOFILE soft limit ``soft``."""
    if soft is None:
        yield
        return
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


@contextlib.contextmanager
def running_abuse_server(
    log_dir: Path,
    test_ports: int = TEST_PORTS,
    nofile: int | None = None,
    extra_args: Sequence[str] = (),
) -> Iterator[OwampServer]:
    """``otwamp server`` on 127.0.0.1 with ``test_ports`` test ports, under ``nofile``."""
    _, (low, high) = free_ports(HOST, test_ports)
    # The last --test-ports wins over the few that running_server gives.
    args = ["--test-ports", f"{low}-{high}", *extra_args]
    with contextlib.ExitStack() as stack:
        with fd_limit(nofile):
            server = stack.enter_context(running_server(HOST, log_dir, extra_args=args))
        yield server


@pytest.fixture
def abuse_server(tmp_path: Path) -> Callable[..., contextlib.AbstractContextManager[OwampServer]]:
    """:func:`running_abuse_server` with its logs in the test's ``tmp_path``."""

    return functools.partial(running_abuse_server, tmp_path)
