"""The key broker: IPPM keys by SPIs or peer over a 0600 UNIX socket (DESIGN D7)."""

import asyncio
import json
import stat

import pytest

from otwamp.ike.broker import MAX_REQUEST, KeyBroker, query, serve
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


SA6 = IkeSa(
    b"\x33" * 8,
    b"\x44" * 8,
    ("2001:db8::7", 4500),
    Identity.fqdn("resp.ippm.test"),
    Identity.fqdn("init6.ippm.test"),
    Suite.parse("aes128-sha256-x25519"),
    True,
    120.0,
    b"\xbb" * 32,
)
NEW = IkeSa(
    b"\x55" * 8,
    b"\x66" * 8,
    ("192.0.2.7", 500),
    Identity.fqdn("resp.ippm.test"),
    Identity.fqdn("init.ippm.test"),
    Suite.parse("aes128-sha256-x25519"),
    False,
    150.0,
    b"\xcc" * 32,
)


class Control:
    """Records what the broker asks of the daemon (the daemon itself: tests/e2e, interop)."""

    def __init__(self, answered: bool = True) -> None:
        self.asked: list[tuple[str, IkeSa]] = []
        self.answered = answered

    async def rekey(self, sa):
        self.asked.append(("rekey", sa))
        return NEW

    async def remove(self, sa):
        self.asked.append(("delete", sa))
        return self.answered


def _controlled(control):
    database = SaDatabase()
    database.add(SA)
    database.add(SA6)
    return KeyBroker(database, lambda: 160.0, control=control)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"spi_i": "11" * 8, "spi_r": "22" * 8}, [SA]),
        ({"spi_i": "33" * 8, "spi_r": "44" * 8}, [SA6]),
        ({"host": "192.0.2.7"}, [SA]),
        ({"host": "192.0.2.7", "port": 500}, [SA]),
        ({"host": "2001:db8:0::7"}, [SA6]),  # compared as addresses, not as text
        ({"host": "2001:db8::7", "port": 4500}, [SA6]),
    ],
)
@pytest.mark.parametrize("op", ["rekey", "delete"])
def test_rekey_and_delete_select_by_spis_or_peer(op, selector, expected):
    control = Control()
    answer = _ask(_controlled(control), {"op": op, **selector})
    assert answer["ok"] is True
    assert control.asked == [(op, sa) for sa in expected]
    if op == "rekey":
        [pair] = answer["rekeyed"]
        assert pair["old"]["spi_i"] == expected[0].spi_i.hex()
        assert (pair["new"]["spi_i"], pair["new"]["spi_r"]) == ("55" * 8, "66" * 8)
    else:
        [gone] = answer["deleted"]
        assert gone["spi_r"] == expected[0].spi_r.hex() and gone["answered"] is True
    assert not {"aa" * 32, "bb" * 32, "cc" * 32} & set(json.dumps(answer).split('"'))


def test_delete_reports_a_peer_that_did_not_answer():
    answer = _ask(_controlled(Control(answered=False)), {"op": "delete", "host": "192.0.2.7"})
    assert answer["deleted"][0]["answered"] is False


@pytest.mark.parametrize(
    ("selector", "error"),
    [
        ({"spi_i": "11" * 8, "spi_r": "99" * 8}, f"no IKE SA {'11' * 8}/{'99' * 8}"),
        ({"host": "192.0.2.8"}, "no IKE SA with 192.0.2.8"),
        ({"host": "192.0.2.7", "port": 501}, "no IKE SA with 192.0.2.7:501"),
        ({"host": "2001:db8::7", "port": 500}, "no IKE SA with [2001:db8::7]:500"),
    ],
)
def test_rekey_of_an_unknown_sa_is_refused(selector, error):
    control = Control()
    assert _ask(_controlled(control), {"op": "rekey", **selector}) == {"ok": False, "error": error}
    assert control.asked == []


@pytest.mark.parametrize(
    "selector",
    [
        {},
        {"spi_i": "11" * 8},
        {"spi_i": "11" * 7, "spi_r": "22" * 8},
        {"spi_i": "11" * 9, "spi_r": "22" * 8},
        {"spi_i": "zz" * 8, "spi_r": "22" * 8},
        {"spi_i": 17, "spi_r": "22" * 8},
        {"host": "not-an-address"},
        {"host": "192.0.2.7", "port": 0},
        {"host": "192.0.2.7", "port": 65536},
        {"host": "192.0.2.7", "port": "500"},
        {"host": "192.0.2.7", "port": True},
        {"host": ["192.0.2.7"]},
        {"host": "1" * 100},
    ],
)
def test_bad_selectors_are_refused(selector):
    control = Control()
    answer = _ask(_controlled(control), {"op": "delete", **selector})
    assert answer["ok"] is False and answer["error"].startswith("bad request")
    assert control.asked == []


def test_rekey_and_delete_need_a_daemon():
    # An embedded broker without control (tests, other processes): unknown ops.
    answer = _ask(_broker(), {"op": "delete", "host": "192.0.2.7"})
    assert answer == {"ok": False, "error": "bad request: unknown op 'delete'"}


def test_an_overlong_request_ends_the_connection(tmp_path):
    path = tmp_path / "ike.sock"

    async def scenario():
        server = await serve(_controlled(Control()), path)
        try:
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b'{"op": "status", "pad": "' + b"x" * MAX_REQUEST + b'"}\n')
            await writer.drain()
            answer = json.loads(await reader.readline())
            rest = await reader.read()  # the broker hung up
            writer.close()
            return answer, rest
        finally:
            server.close()
            await server.wait_closed()

    answer, rest = asyncio.run(scenario())
    assert answer == {"ok": False, "error": f"bad request: over {MAX_REQUEST} octets"}
    assert rest == b""
