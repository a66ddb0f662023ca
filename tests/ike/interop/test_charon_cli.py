"""``otwamp ike rekey`` and ``otwamp ike delete`` against charon (issue 14): ``otwamp ike`` runs
as a daemon in a network namespace with charon; an operator's rekey replaces the SA in
charon's ``swanctl --list-sas`` by one with the new SPIs (and the same IPPM key as ours), and
an operator's delete by peer address removes it there.
"""

import asyncio
import json
import re
import signal
import subprocess
import time
from pathlib import Path

from otwamp.ike.broker import query
from tests.e2e.test_cli_ike import ike_command

from .charon import PSK, Charon, Connection
from .harness import CHARON_PORT, INIT_ID, INTEROP, OUR_PORT, RESP_ID, wait_until_gone

pytestmark = INTEROP
TIMEOUT = 15.0


def _otwamp_ike(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ike_command(), *args], capture_output=True, text=True, timeout=30, check=False
    )


def _our_sas(sock: Path) -> list[dict]:
    result = _otwamp_ike("status", "--socket", str(sock), "--json")
    return json.loads(result.stdout)["sas"] if result.returncode == 0 else []


def _wait(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_operator_rekey_and_delete_seen_by_charon(netns, tmp_path):
    charon = Charon(
        netns,
        tmp_path / "charon",
        Connection(RESP_ID, INIT_ID, "aes128-sha256-curve25519", CHARON_PORT, initiator=False),
    )
    sock = tmp_path / "ike.sock"
    config = tmp_path / "ike.toml"
    config.write_text(
        f'[local]\naddress = "127.0.0.1"\nport = {OUR_PORT}\nid = "fqdn:{INIT_ID}"\n'
        f'broker = "{sock}"\nproposals = ["aes128-sha256-curve25519"]\n\n'
        f'[[peers]]\nid = "fqdn:{RESP_ID}"\naddress = "127.0.0.1"\nport = {CHARON_PORT}\n'
        f'psk = "{PSK}"\ninitiate = true\n'
    )
    charon.start()
    log = tmp_path / "ike.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            ["ip", "netns", "exec", netns, *ike_command(), "--config", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait(lambda: len(_our_sas(sock)) == 1, "the IKE SA with charon")
        [first] = _our_sas(sock)
        assert first["spi_i"] in charon.swanctl("--list-sas")

        result = _otwamp_ike("rekey", f"{first['spi_i']}/{first['spi_r']}", "--socket", str(sock))
        assert result.returncode == 0, result.stderr
        match = re.search(r" to ([0-9a-f]{16})/([0-9a-f]{16})$", result.stdout.strip())
        assert match, result.stdout
        spi_i, spi_r = match[1], match[2]
        wait_until_gone(charon, first["spi_i"])
        listing = charon.swanctl("--list-sas")
        assert "ESTABLISHED" in listing and spi_i in listing and spi_r in listing
        answer = asyncio.run(query(sock, {"op": "key", "spi_i": spi_i, "spi_r": spi_r}))
        assert answer["key"] in charon.ippm_keys("sha256")  # the same SK_d as charon's

        result = _otwamp_ike("delete", f"127.0.0.1:{CHARON_PORT}", "--socket", str(sock))
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"deleted IKE SA {spi_i}/{spi_r} with 127.0.0.1:{CHARON_PORT}\n"
        wait_until_gone(charon, spi_i)
        assert "ESTABLISHED" not in charon.swanctl("--list-sas")
        assert _our_sas(sock) == []
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        charon.stop()
    text = log.read_text()
    assert "Traceback" not in text and answer["key"] not in text
