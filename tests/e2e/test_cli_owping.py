"""``otwamp server`` and ``otwamp owping`` as separate processes over 127.0.0.1 and ::1.

Every OWAMP mode (RFC 4656 §3.1: open, authenticated, encrypted) in both
directions, ``--to`` and ``--from`` alone, the text and raw reports, and the
failures an operator can meet, asserting exit status, message and the
server's log line.
"""

import json
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

Runner = Callable[..., subprocess.CompletedProcess[str]]
FAMILIES = ["127.0.0.1", "::1"]
COUNT = 5
FAST = ["-c", str(COUNT), "-i", "0.01", "--wait", "0.3"]


@pytest.fixture(scope="module")
def keyfile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pass-phrase file with identity 'alice' (pass-phrase 'correct horse')."""
    path = tmp_path_factory.mktemp("keys") / "keys.pfs"
    path.write_text("alice\t" + b"correct horse".hex() + "\n")
    path.chmod(0o600)  # a key file as an operator keeps it
    return path


@pytest.fixture(scope="module", params=FAMILIES, ids=["ipv4", "ipv6"])
def secured_server(
    request: pytest.FixtureRequest, keyfile: Path, owamp_server_factory: Callable[..., Any]
) -> Iterator[Any]:
    """A server offering open, authenticated and encrypted, on 127.0.0.1 and then on ::1."""
    with owamp_server_factory(
        request.param,
        extra_args=["--modes", "open,authenticated,encrypted", "--keyfile", str(keyfile)],
    ) as server:
        yield server


def _json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr}"
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _wait_for_log(server: Any, text: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log: str = server.log()
        if text in log:
            return log
        time.sleep(0.02)
    raise AssertionError(f"server logged no {text!r}:\n{server.log()}")


def _check_direction(report: dict[str, Any], count: int = COUNT) -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", report["sid"])
    assert report["packets"] == {
        "sent": count,
        "received": count,
        "lost": 0,
        "discarded": 0,
        "duplicates": 0,
        "reordered": 0,
        "corrupt": 0,
        "auth_failures": 0,
        "dropped": 0,
        "kernel_drops": 0,
    }
    delay = report["delay"]
    assert 0 < delay["min"] <= delay["median"] <= delay["max"] < 0.1
    assert isinstance(report["sync"], bool)
    assert report["ttl"] == {"min": 255, "max": 255}
    assert report["completed"] is True


@pytest.mark.parametrize(
    ("mode", "key_source"),
    [("open", "none"), ("authenticated", "passphrase"), ("encrypted", "passphrase")],
)
def test_every_mode_measures_both_directions(
    secured_server: Any, keyfile: Path, run_owping: Runner, mode: str, key_source: str
) -> None:
    family = "-6" if ":" in secured_server.host else "-4"
    keys = ["-u", "alice", "-k", str(keyfile)]
    result = run_owping([secured_server.target, family, *FAST, "-A", mode, *keys, "--json"])
    report = _json(result)
    assert report["protocol"] == "owamp"
    assert report["mode"] == mode
    assert report["key_source"] == key_source
    _check_direction(report["to"])
    _check_direction(report["from"])
    assert report["to"]["sid"] != report["from"]["sid"]
    # The server received the "to" session and sent the "from" session under those SIDs.
    log = _wait_for_log(secured_server, f"OWAMP session {report['from']['sid']}: sending to")
    assert f"OWAMP session {report['to']['sid']}: receiving from" in log
    assert "correct horse" not in log and "correct horse" not in result.stdout


@pytest.mark.parametrize("direction", ["to", "from"])
def test_one_direction_alone(secured_server: Any, run_owping: Runner, direction: str) -> None:
    report = _json(run_owping([secured_server.target, *FAST, f"--{direction}", "--json"]))
    other = "from" if direction == "to" else "to"
    assert report[other] is None
    _check_direction(report[direction])
    role = "receiving from" if direction == "to" else "sending to"
    log = _wait_for_log(secured_server, f"OWAMP session {report[direction]['sid']}: {role}")
    assert f"OWAMP session {report[direction]['sid']}" in log


def test_text_report_shows_units_and_both_directions(
    secured_server: Any, keyfile: Path, run_owping: Runner
) -> None:
    result = run_owping(
        [secured_server.target, *FAST, "-A", "encrypted", "-u", "alice", "-k", str(keyfile)]
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "owping statistics to the server, SID" in out
    assert "owping statistics from the server, SID" in out
    assert out.count("mode encrypted, key source passphrase") == 2
    assert out.count(f"{COUNT} sent, {COUNT} received, 0 lost (0.000%)") == 2
    delays = re.findall(r"one-way delay min/median/max = [\d.]+/[\d.]+/[\d.]+ (µs|ms|s)\b", out)
    assert len(delays) == 2, out
    assert re.search(r"one-way jitter = [\d.]+ (µs|ms|s) ", out), out
    assert out.count("TTL 255-255") == 2


def test_raw_lines_one_per_packet(secured_server: Any, run_owping: Runner) -> None:
    result = run_owping([secured_server.target, *FAST, "--raw", "--json"])
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 2 * COUNT  # the "to" session's packets, then the "from" session's
    assert [record["seq"] for record in records] == [*range(COUNT), *range(COUNT)]
    for record in records:
        assert not record["lost"] and not record["duplicate"]
        assert record["sent"]["ns"] < record["received"]["ns"]
        assert record["delay"] == pytest.approx(
            (record["received"]["ns"] - record["sent"]["ns"]) / 1e9, abs=1e-9
        )
        assert record["ttl"] == 255

    text = run_owping([secured_server.target, *FAST, "--raw", "--to"])
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == COUNT
    assert [int(line.split()[0]) for line in lines] == list(range(COUNT))


def test_wrong_passphrase(secured_server: Any, tmp_path: Path, run_owping: Runner) -> None:
    wrong = tmp_path / "wrong.pfs"
    wrong.write_text("alice\t" + b"battery staple".hex() + "\n")
    wrong.chmod(0o600)  # a key file as an operator keeps it
    before = secured_server.log().count("authentication failed")
    result = run_owping(
        [secured_server.target, "-c", "3", "-A", "authenticated", "-u", "alice", "-k", str(wrong)]
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "otwamp: the server rejected the authentication (Accept 1): "
        "unknown KeyID 'alice' or wrong shared secret"
    )
    log = _wait_for_log(
        secured_server, "KeyID 'alice', wrong shared secret (Token Challenge mismatch)"
    )
    time.sleep(0.1)
    assert secured_server.log().count("authentication failed") == before + 1  # one line
    assert "battery" not in log and "correct" not in log


def test_unknown_key_id(secured_server: Any, tmp_path: Path, run_owping: Runner) -> None:
    other = tmp_path / "other.pfs"
    other.write_text("mallory\t" + b"x".hex() + "\n")
    other.chmod(0o600)  # a key file as an operator keeps it
    result = run_owping(
        [secured_server.target, "-c", "3", "-A", "encrypted", "-u", "mallory", "-k", str(other)]
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "otwamp: the server rejected the authentication (Accept 1): "
        "unknown KeyID 'mallory' or wrong shared secret"
    )
    _wait_for_log(secured_server, "unknown KeyID 'mallory'")
    time.sleep(0.1)
    assert secured_server.log().count("unknown KeyID 'mallory'") == 1


def test_owamp_has_no_mixed_mode(secured_server: Any, keyfile: Path, run_owping: Runner) -> None:
    connections = secured_server.log().count("authenticated KeyID")
    result = run_owping(
        [secured_server.target, "-c", "3", "-A", "mixed", "-u", "alice", "-k", str(keyfile)]
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "otwamp: OWAMP has no mixed mode (RFC 5618 is TWAMP only): "
        "use open, authenticated or encrypted"
    )
    time.sleep(0.1)
    assert secured_server.log().count("authenticated KeyID") == connections  # never connected


def test_connection_refused(run_owping: Runner) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_owping([f"127.0.0.1:{port}", "-c", "3"])
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"otwamp: connection to 127.0.0.1:{port} refused (no OWAMP server listening?)"
    )


def test_no_common_mode(owamp_server: Any, run_owping: Runner, keyfile: Path) -> None:
    result = run_owping(
        [owamp_server.target, "-c", "3", "-A", "authenticated", "-u", "alice", "-k", str(keyfile)]
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == "otwamp: no common mode: the server offers open; this client allows authenticated"
    )


def test_owamp_off_serves_only_twamp(
    tmp_path: Path, twamp_server_factory: Callable[..., Any]
) -> None:
    """``--owamp-listen off`` (the existing TWAMP fixture): no OWAMP listener is started."""
    with twamp_server_factory("127.0.0.1", tmp_path) as server:
        assert "listening for OWAMP-Control" not in server.log()
        assert "listening for TWAMP-Control" in server.log()


def test_twamp_and_owamp_at_once(owamp_server: Any, run_owping: Runner, run_ping: Runner) -> None:
    ping = run_ping([owamp_server.twamp_target, "-c", "3", "-i", "0.01", "--json"])
    owping = run_owping([owamp_server.target, *FAST, "--json"])
    assert _json(ping)["protocol"] == "twamp"
    assert _json(owping)["protocol"] == "owamp"
