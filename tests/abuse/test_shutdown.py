"""S8: SIGTERM with sessions running ends them cleanly; a second SIGTERM exits at once.

A real ``otwamp server`` with a TWAMP and an OWAMP measurement in progress
gets SIGTERM: it sends the OWAMP client a premature Stop-Sessions (RFC 4656
§3.8) and lets it fetch what it sent, closes the TWAMP connection, logs no
traceback and exits 0.
"""

import signal
import subprocess
import time

import pytest

from tests.e2e.conftest import OwampServer, otwamp_command, running_server
from tests.e2e.rfc_client import OwampClient, ntp

pytestmark = pytest.mark.timeout(60)


def measuring(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*otwamp_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(server: OwampServer, text: str, count: int = 1, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while server.log().count(text) < count:
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.05)


def test_sigterm_ends_running_sessions_cleanly_and_exits_0() -> None:
    with running_server() as server:
        owping = measuring("owping", f"{server.host}:{server.port}", "-c", "100", "-i", "0.05")
        ping = measuring("ping", server.twamp_target, "-c", "100", "-i", "0.05")
        wait_for(server, "OWAMP session", count=2)
        wait_for(server, "reflecting for")
        time.sleep(1.5)  # past the owping's Start Time (0.5 s after its requests), 5 s to go
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=10) == 0
        out, err = owping.communicate(timeout=20)
        ping_out, ping_err = ping.communicate(timeout=20)
        log = server.log()
    assert "Traceback" not in log and "CancelledError" not in log, log
    assert "closed: the server is shutting down" in log
    # OWAMP: the client got our Stop-Sessions and fetched its session: both directions reported.
    assert owping.returncode == 0, err
    assert "statistics to the server" in out and "statistics from the server" in out
    assert "discarded (RFC 4656 §3.8)" in out  # the packets within Timeout of the stop
    # TWAMP has no Stop-Sessions from the server: the client reports what it measured.
    assert "TWAMP statistics" in ping_out
    assert "closed the control connection" in ping_err


def test_a_second_sigterm_exits_at_once() -> None:
    with running_server() as server, OwampClient(server.host, server.port) as client:
        assert client.set_up() == 0
        start = ntp(time.time() + 0.2)
        port = client.sock.getsockname()[1]  # nobody listens there: the packets go nowhere
        sid = bytes(range(16))
        assert client.request_from(port, 100, [(1, 0.05)], start, 2.0, sid).accept == 0
        assert client.start_sessions() == 0
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # it is in its grace time: this client neither stops nor reads
        began = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        status = server.process.wait(timeout=5)
        elapsed = time.monotonic() - began
    assert status == 128 + signal.SIGTERM
    assert elapsed < 1.0
