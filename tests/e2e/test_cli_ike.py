"""``otwamp ike`` as real processes: two daemons on 127.0.0.1, ``otwamp ike status`` and the
key broker on both sides, and a bad configuration (issue 5).

Ports are not 500, so both daemons put the Non-ESP marker in front of IKE (DESIGN D8).
"""

import asyncio
import contextlib
import hmac
import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otwamp.ike.broker import query

PSK = "e2e-test-psk-0123456789"
INIT_ID, RESP_ID = "init.ippm.test", "resp.ippm.test"
TIMEOUT = 15.0


def ike_command() -> list[str]:
    """``otwamp ike``: through the console script once main.py registers the group."""
    from otwamp.cli.main import main

    script = Path(sys.executable).with_name("otwamp")
    if "ike" in getattr(main, "commands", {}) and script.exists():
        return [str(script), "ike"]
    return [
        sys.executable,
        "-c",
        "from otwamp.cli.ike import ike; ike(prog_name='otwamp ike')",
    ]


def _free_udp_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 30000)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in ports:
            ports.append(port)
    return ports


def _config(path: Path, local_id: str, port: int, peer_id: str, peer_port: int, initiate: bool):
    path.write_text(
        f"""[local]
address = "127.0.0.1"
port = {port}
id = "fqdn:{local_id}"
broker = "{local_id}.sock"
proposals = ["aes128-sha256-x25519"]

[[peers]]
id = "fqdn:{peer_id}"
address = "127.0.0.1"
port = {peer_port}
psk = "{PSK}"
initiate = {str(initiate).lower()}
"""
    )
    return path


class Daemon:
    """One ``otwamp ike --config FILE`` process with its stderr in a file."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.log_path = config.with_suffix(".log")
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*ike_command(), "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, count: int = 1) -> None:
        deadline = time.monotonic() + TIMEOUT
        while self.log().count(text) < count:
            assert self.process.poll() is None, f"otwamp ike exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"no {text!r} logged:\n{self.log()}"
            time.sleep(0.05)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextlib.contextmanager
def daemons(tmp_path: Path) -> Iterator[tuple[Daemon, Daemon]]:
    """A responder, then an initiator that sets up an IKE SA with it on start."""
    resp_port, init_port = _free_udp_ports(2)
    responder = Daemon(
        _config(tmp_path / "resp.toml", RESP_ID, resp_port, INIT_ID, init_port, False)
    )
    started = [responder]
    try:
        responder.wait_for("listening on")
        initiator = Daemon(
            _config(tmp_path / "init.toml", INIT_ID, init_port, RESP_ID, resp_port, True)
        )
        started.append(initiator)
        yield responder, initiator
    finally:
        for daemon in reversed(started):
            daemon.stop()


def _status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ike_command(), "status", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_two_daemons_status_and_identical_keys(tmp_path):
    with daemons(tmp_path) as (responder, initiator):
        for daemon in (responder, initiator):
            daemon.wait_for(" established ")
        resp_sock, init_sock = tmp_path / f"{RESP_ID}.sock", tmp_path / f"{INIT_ID}.sock"
        listings = {}
        for name, sock in (("resp", resp_sock), ("init", init_sock)):
            assert stat.S_IMODE(sock.stat().st_mode) == 0o600
            text = _status("--socket", str(sock))
            assert text.returncode == 0, text.stderr
            as_json = _status("--socket", str(sock), "--json")
            document = json.loads(as_json.stdout)
            [sa] = document["sas"]
            assert document["half_open"] == 0  # the SA is established: nothing half-open
            assert "0 half-open IKE SAs" in text.stdout
            assert f"{sa['spi_i']}/{sa['spi_r']}" in text.stdout
            assert sa["suite"] == "aes128-sha256-x25519" in text.stdout
            listings[name] = sa
        resp, init = listings["resp"], listings["init"]
        assert (resp["spi_i"], resp["spi_r"]) == (init["spi_i"], init["spi_r"])
        assert (resp["role"], init["role"]) == ("responder", "initiator")
        assert (resp["local_id"], resp["remote_id"]) == (RESP_ID, INIT_ID)
        assert (init["local_id"], init["remote_id"]) == (INIT_ID, RESP_ID)
        # The status command can also find the socket through the daemon's config file.
        via_config = subprocess.run(
            [*ike_command(), "--config", str(initiator.config), "status", "--json"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert json.loads(via_config.stdout)["sas"][0]["spi_i"] == init["spi_i"]

        async def keys() -> tuple[dict, dict]:
            ours = await query(init_sock, {"op": "peer", "host": "127.0.0.1"})
            theirs = await query(
                resp_sock, {"op": "key", "spi_i": init["spi_i"], "spi_r": init["spi_r"]}
            )
            return ours, theirs

        ours, theirs = asyncio.run(keys())
        assert ours["ok"] and theirs["ok"]
        assert (ours["spi_i"], ours["spi_r"]) == (init["spi_i"], init["spi_r"])
        assert len(ours["key"]) == 64, "a 32-octet prf(SK_d, 'IPPM') with HMAC-SHA-256"
        assert hmac.compare_digest(ours["key"], theirs["key"]), "the IPPM keys differ"
        for daemon in (responder, initiator):
            assert ours["key"] not in daemon.log(), "a key leaked into the log"
        for listing in (text.stdout, as_json.stdout, via_config.stdout):
            assert ours["key"] not in listing, "a key leaked into status"
        established = [line for line in initiator.log().splitlines() if " established " in line]
        assert len(established) == 1
        for word in (init["spi_i"], "127.0.0.1", INIT_ID, RESP_ID, "aes128-sha256-x25519"):
            assert word in established[0]
        assert responder.stop() == 0
        initiator.wait_for(" deleted ")  # the responder deleted the SA on its way out
        assert initiator.stop() == 0
        assert not init_sock.exists() and not resp_sock.exists()
        assert "Traceback" not in responder.log() + initiator.log()


def test_status_without_a_daemon(tmp_path):
    result = _status("--socket", str(tmp_path / "none.sock"))
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("otwamp: no IKE daemon answers on") and "none.sock" in line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[local]\nid = "a.example"\nport = "five hundred"\n', "local.port: must be an integer"),
        ('[local]\nid = "a.example"\nrekey_time = -1\n', "local.rekey_time: must be a positive"),
        ('[local]\nid = "a.example"\n[[peers]]\nid = "b"\naddress = "x"\n', "peers.address"),
        ("[local\n", "not valid TOML"),
    ],
)
def test_bad_configuration_is_one_line(tmp_path, text, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = subprocess.run(
        [*ike_command(), "--config", str(path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"otwamp: {path}: ") and expected in line
    assert "Traceback" not in result.stderr


def test_missing_configuration_file(tmp_path):
    result = subprocess.run(
        [*ike_command(), "--config", str(tmp_path / "nothing.toml")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"otwamp: {tmp_path / 'nothing.toml'}: cannot read: No such file or directory"
    )


def test_second_daemon_on_the_same_port_is_one_line(tmp_path):
    [port, other] = _free_udp_ports(2)
    first = Daemon(_config(tmp_path / "a.toml", RESP_ID, port, INIT_ID, other, False))
    try:
        first.wait_for("listening on")
        for config, expected in (
            (tmp_path / "a.toml", f"cannot listen on UDP 127.0.0.1:{port}: Address already in use"),
            (
                _config(tmp_path / "b.toml", RESP_ID, other, INIT_ID, port, False),
                f"cannot listen on {tmp_path / (RESP_ID + '.sock')}: another daemon answers there",
            ),
        ):
            result = subprocess.run(
                [*ike_command(), "--config", str(config)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
            assert result.returncode == 1
            [line] = result.stderr.splitlines()
            assert line == f"otwamp: {expected}", result.stderr
            assert "Traceback" not in result.stderr
        assert first.process.poll() is None  # the running daemon kept its socket
        assert _status("--socket", str(tmp_path / f"{RESP_ID}.sock")).returncode == 0
    finally:
        first.stop()
