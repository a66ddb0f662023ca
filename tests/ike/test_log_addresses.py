"""Every log line of a real exchange names peers one way: ``127.0.0.1:500`` or ``[::1]:500``,
never a Python tuple (issue 14). Two daemons (``IkeService``, as ``otwamp ike`` runs them) over
loopback UDP, IPv4 and IPv6: establish, rekey and delete through the broker, a malformed
datagram, a peer with the wrong PSK, and shutdown; every record at DEBUG is checked.
"""

import asyncio
import json
import logging
import re
import socket

import pytest

from otwamp.ike.config import load
from otwamp.ike.daemon import IkeDaemon
from otwamp.ike.errors import NegotiationError
from otwamp.ike.policy import Policy
from otwamp.ike.service import IkeService

from .pairing import INIT_ID, RESP_ID, suites

PSK = "log-test-psk-0123456789"


def _config(tmp_path, name, host, local_id, peer_id, peer_port=None):
    peer = "" if peer_port is None else f'address = "{host}"\nport = {peer_port}\n'
    path = tmp_path / f"{name}.toml"
    path.write_text(
        f'[local]\naddress = "{host}"\nport = 0\nid = "fqdn:{local_id}"\n'
        f'broker = "{name}.sock"\n\n[[peers]]\nid = "fqdn:{peer_id}"\n{peer}psk = "{PSK}"\n'
    )
    return load(path)


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


async def _ask(service, **request):
    """One request to the service's key broker, as ``otwamp ike rekey/delete`` sends it."""
    return await service.broker.answer(json.dumps(request).encode())


async def _exchange(tmp_path, host):
    responder = IkeService(_config(tmp_path, "resp", host, "resp.ippm.test", "init.ippm.test"))
    await responder.start()
    resp_port = responder.daemon.local[1]
    initiator = IkeService(
        _config(tmp_path, "init", host, "init.ippm.test", "resp.ippm.test", resp_port)
    )
    await initiator.start()
    intruder = IkeDaemon(
        Policy(INIT_ID, suites("aes128-sha256-x25519"), {RESP_ID: b"wrong"}), (host, 0)
    )
    try:
        await initiator.initiate(host)
        [sa] = initiator.daemon.database.all()
        assert (await _ask(initiator, op="rekey", host=host))["ok"]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as junk:
            junk.bind((host, 0))
            junk.sendto(b"\x00\x00\x00\x00 not IKE", (host, resp_port))
            junk_port = junk.getsockname()[1]
        intruder_port = (await intruder.start())[1]
        with pytest.raises(NegotiationError) as refused:
            await intruder.initiate(RESP_ID, (host, resp_port), timeout=5)
        await asyncio.sleep(0.1)  # the junk datagram has long arrived
        [new] = initiator.daemon.database.all()
        assert new.spi_i != sa.spi_i
        assert (await _ask(responder, op="delete", host=host))["ok"]
        await initiator.initiate(host)  # one more SA, deleted at shutdown
    finally:
        intruder.close()
        await initiator.stop()
        await responder.stop()
    ports = {"resp": resp_port, "init": initiator.daemon.local[1]}
    return ports, junk_port, intruder_port, str(refused.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"], ids=["ipv4", "ipv6"])
def test_every_log_line_formats_addresses_one_way(tmp_path, caplog, host):
    if ":" in host and not _has_ipv6():
        pytest.skip("no IPv6 loopback")
    caplog.set_level(logging.DEBUG, logger="otwamp.ike")
    ports, junk_port, intruder_port, refusal = asyncio.run(_exchange(tmp_path, host))
    text = f"[{host}]" if ":" in host else host
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("otwamp.ike")]
    everything = "\n".join(lines)
    assert "('" not in everything and "', " not in everything, everything
    # Every mention of the address carries its port, IPv6 in brackets.
    mentions = re.findall(rf"{re.escape(text)}(:\d+)?", everything)
    assert mentions and all(mentions), everything
    if ":" in host:
        assert not re.search(r"(?<!\[)::1(?!\])", everything), everything
    for expected in (
        f"listening on {text}:{ports['resp']}",
        f"listening on {text}:{ports['init']}",
        f"with {text}:{ports['resp']}",  # established, rekeyed, deleted (initiator's view)
        f"with {text}:{ports['init']}",  # the responder's view
        f"dropped 12 octets from {text}:{junk_port}",
        f"IKE SA with {text}:{intruder_port} failed",
    ):
        assert expected in everything, f"{expected!r} not in:\n{everything}"
    for word in (" established ", " rekeyed to ", " deleted "):
        assert word in everything
    assert refusal.startswith(f"IKE SA with {text}:{ports['resp']}: ")
