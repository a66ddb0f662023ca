"""``otwamp server`` and ``otwamp ping`` as separate processes over 127.0.0.1 and ::1.

Every mode with pass-phrase keys (RFC 4656 §3.1, RFC 5357, RFC 5618), the
reports, and each failure an operator can meet, asserting exit status and
message.
"""

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.rfc_client import TwampClient, ntp

PingRunner = Callable[..., subprocess.CompletedProcess[str]]
ALL_MODES = "open,authenticated,encrypted,mixed"
FAMILIES = ["127.0.0.1", "::1"]


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pass-phrase file with identity 'alice' (pass-phrase 'correct horse')."""
    path = tmp_path_factory.mktemp("keys") / "keys.pfs"
    path.write_text("alice\t" + b"correct horse".hex() + "\n")
    path.chmod(0o600)  # a key file as an operator keeps it
    return path


@pytest.fixture(scope="module", params=FAMILIES)
def secured_server(
    request: pytest.FixtureRequest, keyfile: Path, twamp_server_factory: Callable[..., Any]
) -> Iterator[Any]:
    """A server offering every mode, on 127.0.0.1 and then on ::1."""
    with twamp_server_factory(
        request.param, extra_args=["--modes", ALL_MODES, "--keyfile", str(keyfile)]
    ) as server:
        yield server


def _json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.mark.parametrize(
    ("mode", "key_source"),
    [
        ("open", "none"),
        ("authenticated", "passphrase"),
        ("encrypted", "passphrase"),
        ("mixed", "passphrase"),
    ],
)
def test_every_mode_measures(
    secured_server: Any, keyfile: Path, run_ping: PingRunner, mode: str, key_source: str
) -> None:
    result = run_ping(
        [
            secured_server.target,
            "-c",
            "50",
            "-i",
            "0.002",
            "-A",
            mode,
            "-u",
            "alice",
            "-k",
            str(keyfile),
            "--json",
        ]
    )
    report = _json(result)
    assert report["protocol"] == "twamp"
    assert report["mode"] == mode
    assert report["key_source"] == key_source
    assert report["packets"]["sent"] == 50
    assert report["packets"]["received"] == 50
    assert report["packets"]["lost"] == 0
    assert report["packets"]["auth_failures"] == 0
    assert 0 < report["rtt"]["min"] <= report["rtt"]["median"] <= report["rtt"]["max"] < 0.1
    assert report["forward"]["ttl"] == {"min": 255, "max": 255}
    assert report["completed"] is True


def test_strongest_common_mode_is_chosen(
    secured_server: Any, keyfile: Path, run_ping: PingRunner
) -> None:
    result = run_ping(
        [
            secured_server.target,
            "-c",
            "3",
            "-i",
            "0.01",
            "-A",
            ALL_MODES,
            "-u",
            "alice",
            "-k",
            str(keyfile),
            "--json",
        ]
    )
    assert _json(result)["mode"] == "encrypted"


def test_text_report_shows_units_and_mode(
    secured_server: Any, keyfile: Path, run_ping: PingRunner
) -> None:
    result = run_ping(
        [
            secured_server.target,
            "-c",
            "20",
            "-i",
            "0.002",
            "-A",
            "authenticated",
            "-u",
            "alice",
            "-k",
            str(keyfile),
            "-a",
        ]
    )
    assert result.returncode == 0, result.stderr
    assert "mode authenticated, key source passphrase" in result.stdout
    assert "20 sent, 20 received, 0 lost" in result.stdout
    assert "round-trip time min/median/max" in result.stdout
    assert "p95" in result.stdout
    assert "µs" in result.stdout or " ms" in result.stdout


def test_raw_lines_one_per_packet(secured_server: Any, run_ping: PingRunner) -> None:
    result = run_ping([secured_server.target, "-c", "7", "-i", "0.002", "--raw", "--json"])
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 7
    assert "correct horse" not in result.stdout


def test_wrong_passphrase(secured_server: Any, tmp_path: Path, run_ping: PingRunner) -> None:
    wrong = tmp_path / "wrong.pfs"
    wrong.write_text("alice\t" + b"battery staple".hex() + "\n")
    wrong.chmod(0o600)  # a key file as an operator keeps it
    result = run_ping(
        [secured_server.target, "-c", "3", "-A", "authenticated", "-u", "alice", "-k", str(wrong)]
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "otwamp: the server rejected the authentication (Accept 1): "
        "unknown KeyID 'alice' or wrong shared secret"
    )
    _wait_for_log(secured_server, "KeyID 'alice', wrong shared secret (Token Challenge mismatch)")
    assert "battery" not in secured_server.log() and "correct" not in secured_server.log()


def test_unknown_key_id(secured_server: Any, tmp_path: Path, run_ping: PingRunner) -> None:
    other = tmp_path / "other.pfs"
    other.write_text("mallory\t" + b"x".hex() + "\n")
    other.chmod(0o600)  # a key file as an operator keeps it
    result = run_ping(
        [secured_server.target, "-c", "3", "-A", "encrypted", "-u", "mallory", "-k", str(other)]
    )
    assert result.returncode == 1
    assert "unknown KeyID 'mallory' or wrong shared secret" in result.stderr
    _wait_for_log(secured_server, "unknown KeyID 'mallory'")


def test_no_common_mode(twamp_server: Any, run_ping: PingRunner, keyfile: Path) -> None:
    result = run_ping(
        [twamp_server.target, "-c", "3", "-A", "authenticated", "-u", "alice", "-k", str(keyfile)]
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "otwamp: no common mode: the server offers open; this client allows authenticated"
    )


def test_connection_refused(run_ping: PingRunner) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_ping([f"127.0.0.1:{port}", "-c", "3"])
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"otwamp: connection to 127.0.0.1:{port} refused (no TWAMP server listening?)"
    )


def test_bad_arguments_are_one_line(run_ping: PingRunner) -> None:
    result = run_ping(["127.0.0.1", "--dscp", "AF99"])
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "otwamp: 'AF99' is not a DSCP: use a name (EF, AF41, CS5, BE...) or 0-63"
    )
    result = run_ping(["127.0.0.1", "-u", "alice"])
    assert result.stderr.strip() == "otwamp: -u IDENTITY and -k FILE go together"


def test_count_above_the_cap_is_refused(
    tmp_path: Path, keyfile: Path, twamp_server_factory: Callable[..., Any], run_ping: PingRunner
) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f'[server]\nmodes = "authenticated"\nkeyfile = "{keyfile}"\ncount = 65536\n')
    with twamp_server_factory(
        "127.0.0.1", tmp_path, extra_args=["--config", str(config)]
    ) as server:
        result = run_ping(
            [server.target, "-c", "3", "-A", "authenticated", "-u", "alice", "-k", str(keyfile)]
        )
        assert result.returncode == 1
        assert "Count: 65536 exceeds this client's limit of 32768" in result.stderr
        allowed = run_ping(
            [
                server.target,
                "-c",
                "3",
                "-i",
                "0.01",
                "-A",
                "authenticated",
                "-u",
                "alice",
                "-k",
                str(keyfile),
                "--max-count",
                "65536",
                "--json",
            ]
        )
        assert _json(allowed)["packets"]["received"] == 3


def test_a_full_server_drops_an_idle_connection_for_a_new_one(
    tmp_path: Path, twamp_server_factory: Callable[..., Any], run_ping: PingRunner
) -> None:
    """The table is full of a connection that never started a test: it makes room (S4)."""
    with twamp_server_factory("127.0.0.1", tmp_path, extra_args=["--max-sessions", "1"]) as server:
        with socket.create_connection((server.host, server.port)) as holder:
            assert len(holder.recv(64)) == 64  # the holder has its Server-Greeting, then idles
            result = run_ping([server.target, "-c", "3"])
            holder.settimeout(5)
            assert holder.recv(1) == b""  # closed for the newcomer
        assert result.returncode == 0, result.stderr
        _wait_for_log(server, "dropped to make room")


def test_a_server_full_of_testing_connections_refuses_with_modes_0(
    tmp_path: Path, twamp_server_factory: Callable[..., Any], run_ping: PingRunner
) -> None:
    with twamp_server_factory("127.0.0.1", tmp_path, extra_args=["--max-sessions", "1"]) as server:
        with TwampClient(server.host, server.port) as holder:
            assert holder.set_up() == 0
            assert holder.request_tw_session(9, ntp(time.time()), 1.0).accept == 0
            assert holder.start_sessions() == 0  # testing: it keeps its place
            result = run_ping([server.target, "-c", "3"])
        assert result.returncode == 1
        assert (
            result.stderr.strip()
            == "otwamp: the server refused the connection (Server-Greeting with Modes 0)"
        )
        _wait_for_log(server, "control connections already, all testing")


def test_malformed_control_message_closes_only_that_connection(
    twamp_server: Any, run_ping: PingRunner
) -> None:
    with socket.create_connection((twamp_server.host, twamp_server.port)) as bad:
        bad.recv(64)
        bad.sendall(bytes([0, 0, 0, 1]) + bytes(160))  # Set-Up-Response, open mode
        assert len(bad.recv(48)) == 48  # Server-Start
        bad.sendall(bytes([5, 9]) + bytes(110))  # Request-TW-Session with IPVN 9
        bad.settimeout(5)
        assert bad.recv(1) == b""  # closed by the server
    _wait_for_log(twamp_server, "IPVN: IPVN is 9, not 4 or 6 (RFC 5357 §3.5)")
    result = run_ping([twamp_server.target, "-c", "5", "-i", "0.002", "--json"])
    assert _json(result)["packets"]["received"] == 5
    assert twamp_server.process.poll() is None


def test_server_vanishing_mid_session(twamp_server: Any) -> None:
    otwamp = str(Path(sys.executable).with_name("otwamp"))
    ping = subprocess.Popen(
        [otwamp, "ping", twamp_server.target, "-c", "1000", "-i", "0.005"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(ping.kill)
        _wait_for_log(twamp_server, "reflecting for")
        time.sleep(0.5)
        twamp_server.process.send_signal(signal.SIGKILL)
        stdout, stderr = ping.communicate(timeout=15)
    assert ping.returncode == 1
    assert stderr.strip() == (
        "otwamp: the server closed the control connection during the test; "
        "the results above are partial"
    )
    sent = int(stdout.split(" sent,")[0].rsplit("\n", 1)[-1])
    assert 0 < sent < 1000


def _wait_for_log(server: Any, text: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log():
        assert time.monotonic() < deadline, f"server never logged {text!r}:\n{server.log()}"
        time.sleep(0.05)
