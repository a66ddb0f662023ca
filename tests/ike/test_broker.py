"""The key broker: IPPM keys by SPIs or peer over a 0600 UNIX socket (DESIGN D7)."""

import asyncio
import json
import stat

import pytest

from otwamp.ike.broker import KeyBroker, query, serve
from otwamp.ike.database import SaDatabase
from otwamp.ike.proposal import Suite
from otwamp.ike.sa import IkeSa
from otwamp.ike.wire.identity import Identity

SA = IkeSa(
    b"\x11" * 8,
    b"\x22" * 8,
    ("192.0.2.7", 500),
    Identity.fqdn("resp.ippm.test"),
    Identity.fqdn("init.ippm.test"),
    Suite.parse("aes128-sha256-x25519"),
    False,
    100.0,
    b"\xaa" * 32,
)


def _broker(initiate=None) -> KeyBroker:
    database = SaDatabase()
    database.add(SA)
    return KeyBroker(database, lambda: 160.0, initiate)


def _ask(broker: KeyBroker, request) -> dict:
    line = request if isinstance(request, bytes) else json.dumps(request).encode()
    return asyncio.run(broker.answer(line))


def test_key_by_spis():
    answer = _ask(_broker(), {"op": "key", "spi_i": "11" * 8, "spi_r": "22" * 8})
    assert answer["ok"] and answer["key"] == "aa" * 32 and answer["peer"] == "192.0.2.7:500"
    assert _ask(_broker(), {"op": "key", "spi_i": "11" * 8, "spi_r": "33" * 8}) == {
        "ok": False,
        "error": "no such IKE SA",
    }


def test_key_by_peer_and_on_demand_initiation():
    found = _ask(_broker(), {"op": "peer", "host": "192.0.2.7", "initiate": True})
    assert found["spi_i"] == "11" * 8 and found["initiated"] is False  # there already
    assert not _ask(_broker(), {"op": "peer", "host": "192.0.2.8"})["ok"]
    wanted = []

    async def initiate(host):
        wanted.append(host)
        return SA

    answer = _ask(_broker(initiate), {"op": "peer", "host": "192.0.2.8", "initiate": True})
    assert answer["ok"] and answer["initiated"] is True and wanted == ["192.0.2.8"]


def test_status_never_shows_keys():
    answer = _ask(_broker(), {"op": "status"})
    [sa] = answer["sas"]
    assert sa["age"] == 60.0 and sa["role"] == "responder" and sa["suite"] == str(SA.suite)
    assert "aa" * 32 not in json.dumps(answer)
    assert "half_open" not in answer  # this broker was not told


def test_status_counts_half_open_sas():
    broker = KeyBroker(SaDatabase(), lambda: 160.0, half_open=lambda: 7)
    assert _ask(broker, {"op": "status"}) == {"ok": True, "sas": [], "half_open": 7}


@pytest.mark.parametrize(
    "request_line", [b"not json", b"[]", b'{"op": "steal"}', b'{"op": "key", "spi_i": "zz"}']
)
def test_bad_requests(request_line):
    answer = _ask(_broker(), request_line)
    assert answer["ok"] is False and answer["error"].startswith("bad request")


def test_socket_is_owner_only(tmp_path):
    path = tmp_path / "ike.sock"

    async def scenario():
        server = await serve(_broker(), path)
        try:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            return await query(path, {"op": "key", "spi_i": "11" * 8, "spi_r": "22" * 8})
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(scenario())["key"] == "aa" * 32
