"""Two configured IKE services on loopback, queried through their key brokers."""

import asyncio

from otwamp.ike.broker import query
from otwamp.ike.config import load
from otwamp.ike.service import IkeService

CONFIG = """
[local]
address = "127.0.0.1"
port = {port}
id = "{local}"
broker = "{local}.sock"

[[peers]]
id = "{remote}"
address = "127.0.0.1"
port = {peer_port}
psk = "ippm-test-psk-0123456789"
initiate = {initiate}
"""


def _config(tmp_path, local, remote, port, peer_port, initiate):
    path = tmp_path / f"{local}.toml"
    path.write_text(
        CONFIG.format(
            local=local,
            remote=remote,
            port=port,
            peer_port=peer_port,
            initiate=str(initiate).lower(),
        )
    )
    return load(path)


def test_initiate_on_start_and_keys_from_both_brokers(tmp_path):
    # Port 0: the responder's port is known once bound, and only then written for the initiator.
    responder = IkeService(_config(tmp_path, "resp.ippm.test", "init.ippm.test", 0, 9, False))

    async def scenario():
        await responder.start()
        port = responder.daemon.local[1]
        initiator = IkeService(_config(tmp_path, "init.ippm.test", "resp.ippm.test", 0, port, True))
        try:
            await initiator.start()  # initiates to the responder before returning
            ours = await query(
                tmp_path / "init.ippm.test.sock", {"op": "peer", "host": "127.0.0.1"}
            )
            theirs = await query(
                tmp_path / "resp.ippm.test.sock",
                {"op": "key", "spi_i": ours["spi_i"], "spi_r": ours["spi_r"]},
            )
            status = await query(tmp_path / "resp.ippm.test.sock", {"op": "status"})
            return ours, theirs, status
        finally:
            initiator.close()
            responder.close()

    ours, theirs, status = asyncio.run(scenario())
    assert ours["ok"] and theirs["ok"] and ours["key"] == theirs["key"]
    assert (ours["role"], theirs["role"]) == ("initiator", "responder")
    assert [sa["spi_i"] for sa in status["sas"]] == [ours["spi_i"]]
    assert ours["key"] not in str(status)
