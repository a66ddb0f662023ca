"""``otwamp ike rekey SA`` and ``otwamp ike delete SA`` against two running ``otwamp ike``
daemons (issue 14): by SPIs and by peer, seen by both daemons; unknown SAs, bad selectors and
a missing daemon are one-line errors.
"""

import json
import re
import subprocess
import time

import pytest

from tests.e2e.test_cli_ike import INIT_ID, RESP_ID, TIMEOUT, daemons, ike_command


def _otwamp_ike(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ike_command(), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT + 20,
        check=False,
    )


def _sas(sock) -> list[dict]:
    result = _otwamp_ike("status", "--socket", str(sock), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["sas"]


def _wait_for_spis(sock, spis: set[tuple[str, str]]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while {(sa["spi_i"], sa["spi_r"]) for sa in _sas(sock)} != spis:
        assert time.monotonic() < deadline, f"{sock} kept {_sas(sock)}, expected {spis}"
        time.sleep(0.1)


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    return line


def test_rekey_and_delete_through_the_broker(tmp_path):
    with daemons(tmp_path) as (responder, initiator):
        for daemon in (responder, initiator):
            daemon.wait_for(" established ")
        init_sock, resp_sock = tmp_path / f"{INIT_ID}.sock", tmp_path / f"{RESP_ID}.sock"
        [first] = _sas(init_sock)
        peer = first["peer"]

        # Rekey by SPIs, written as SPIi_SPIr, from the initiator's side.
        result = _otwamp_ike(
            "rekey", f"{first['spi_i']}_{first['spi_r']}", "--socket", str(init_sock)
        )
        assert result.returncode == 0, result.stderr
        old = f"{first['spi_i']}/{first['spi_r']}"
        match = re.fullmatch(
            rf"rekeyed IKE SA {old} with {re.escape(peer)} to ([0-9a-f]{{16}})/([0-9a-f]{{16}})\n",
            result.stdout,
        )
        assert match, result.stdout
        new = (match[1], match[2])
        assert new[0] != first["spi_i"]
        for sock in (init_sock, resp_sock):  # both daemons hold the new SA, not the old
            _wait_for_spis(sock, {new})
        for daemon in (responder, initiator):
            daemon.wait_for(f" rekeyed to {new[0]}/{new[1]} ")

        # Rekey again, by peer address from the responder, with --json.
        result = _otwamp_ike("rekey", "127.0.0.1", "--socket", str(resp_sock), "--json")
        assert result.returncode == 0, result.stderr
        [pair] = json.loads(result.stdout)
        assert (pair["old"]["spi_i"], pair["old"]["spi_r"]) == new
        newer = (pair["new"]["spi_i"], pair["new"]["spi_r"])
        assert "key" not in pair["old"] and "key" not in pair["new"]
        _wait_for_spis(init_sock, {newer})

        # Delete by peer ADDR:PORT as status prints it; the other side sees it go.
        [sa] = _sas(resp_sock)
        result = _otwamp_ike("delete", sa["peer"], "--socket", str(resp_sock))
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"deleted IKE SA {newer[0]}/{newer[1]} with {sa['peer']}\n"
        for sock in (init_sock, resp_sock):
            _wait_for_spis(sock, set())
        initiator.wait_for(" deleted ")

        # Errors: one line each, exit status 1, the daemons unharmed.
        unknown = "0123456789abcdef/fedcba9876543210"
        line = _one_error_line(_otwamp_ike("rekey", unknown, "--socket", str(init_sock)))
        assert line == f"otwamp: {init_sock}: no IKE SA {unknown}"
        line = _one_error_line(_otwamp_ike("delete", "10.9.9.9", "--socket", str(init_sock)))
        assert line == f"otwamp: {init_sock}: no IKE SA with 10.9.9.9"
        line = _one_error_line(
            _otwamp_ike("delete", "[2001:db8::1]:500", "--socket", str(init_sock))
        )
        assert line == f"otwamp: {init_sock}: no IKE SA with [2001:db8::1]:500"
        line = _one_error_line(_otwamp_ike("delete", "nonsense", "--socket", str(init_sock)))
        assert (
            line
            == "otwamp: 'nonsense': name an SA by SPIi/SPIr (16 hex digits each) or by peer address"
        )
        assert initiator.process.poll() is None and responder.process.poll() is None
        assert "Traceback" not in responder.log() + initiator.log()


@pytest.mark.parametrize("command", ["rekey", "delete"])
def test_without_a_daemon(tmp_path, command):
    sock = tmp_path / "none.sock"
    line = _one_error_line(_otwamp_ike(command, "127.0.0.1", "--socket", str(sock)))
    assert line.startswith(f"otwamp: no IKE daemon answers on {sock} (")
    assert line.endswith("): is otwamp ike running?")
