"""Two IKE daemons on loopback UDP (asyncio driver, Non-ESP marker on ports other than 500)."""

import asyncio

import pytest

from otwamp.ike.daemon import IkeDaemon
from otwamp.ike.errors import NegotiationError
from otwamp.ike.initiator import Initiator
from otwamp.ike.policy import Policy

from .pairing import INIT_ID, PSK, RESP_ID, suites

LOOPBACK = ("127.0.0.1", 0)


def _policies(initiator_psk: bytes = PSK) -> tuple[Policy, Policy]:
    chosen = suites("aes128-sha256-x25519")
    return (
        Policy(INIT_ID, chosen, {RESP_ID: initiator_psk}),
        Policy(RESP_ID, chosen, {INIT_ID: PSK}),
    )


async def _with_daemons(scenario, initiator_psk: bytes = PSK, **responder_options):
    initiator_policy, responder_policy = _policies(initiator_psk)
    initiator = IkeDaemon(initiator_policy, LOOPBACK)
    responder = IkeDaemon(responder_policy, LOOPBACK, **responder_options)
    await initiator.start()
    address = await responder.start()
    try:
        return await scenario(initiator, responder, address)
    finally:
        initiator.close()
        responder.close()


def test_establish_and_delete_over_udp():
    async def scenario(initiator, responder, address):
        sa = await initiator.initiate(RESP_ID, address, timeout=5)
        [theirs] = responder.database.all()
        assert theirs.ippm_key == sa.ippm_key
        assert initiator.database.by_spis(sa.spi_i, sa.spi_r) == sa
        assert responder.database.by_peer("127.0.0.1") == theirs
        await initiator.delete(sa, timeout=5)
        assert initiator.database.all() == () and responder.database.all() == ()

    asyncio.run(_with_daemons(scenario))


def test_responder_deletes():
    async def scenario(initiator, responder, address):
        await initiator.initiate(RESP_ID, address, timeout=5)
        [theirs] = responder.database.all()
        await responder.delete(theirs, timeout=5)
        assert initiator.database.all() == () and responder.database.all() == ()

    asyncio.run(_with_daemons(scenario))


def test_cookies_above_threshold():
    async def scenario(initiator, responder, address):
        sa = await initiator.initiate(RESP_ID, address, timeout=5)
        assert responder.database.by_spis(sa.spi_i, sa.spi_r).ippm_key == sa.ippm_key

    asyncio.run(_with_daemons(scenario, cookie_threshold=0))


def test_wrong_psk_fails_cleanly():
    async def scenario(initiator, responder, address):
        with pytest.raises(NegotiationError, match="AUTHENTICATION_FAILED"):
            await initiator.initiate(RESP_ID, address, timeout=5)
        assert initiator.database.all() == () and responder.database.all() == ()

    asyncio.run(_with_daemons(scenario, initiator_psk=b"wrong"))


def test_silent_peer_times_out():
    async def scenario(initiator, responder, address):
        responder.close()
        with pytest.raises(NegotiationError, match="no answer"):
            await initiator.initiate(RESP_ID, address, timeout=1.2)

    asyncio.run(_with_daemons(scenario))


def test_garbage_is_dropped_and_the_daemon_keeps_working():
    async def scenario(initiator, responder, address):
        responder.datagram_received(b"\x00\x00\x00\x00garbage", ("127.0.0.1", 40000))
        responder.datagram_received(b"not even a marker", ("127.0.0.1", 40000))
        sa = await initiator.initiate(RESP_ID, address, timeout=5)
        assert responder.database.by_spis(sa.spi_i, sa.spi_r) is not None

    asyncio.run(_with_daemons(scenario))


@pytest.mark.parametrize("side", ["initiator", "responder"])
def test_rekey_over_udp(side):
    async def scenario(initiator, responder, address):
        await initiator.initiate(RESP_ID, address, timeout=5)
        daemon = initiator if side == "initiator" else responder
        [old] = daemon.database.all()
        new = await daemon.rekey(old, timeout=5)
        for _ in range(50):  # the old SA's delete completes right after the rekey
            if len(initiator.database.all()) == len(responder.database.all()) == 1:
                break
            await asyncio.sleep(0.02)
        [ours] = initiator.database.all()
        [theirs] = responder.database.all()
        assert ours.ippm_key == theirs.ippm_key == new.ippm_key != old.ippm_key
        assert daemon.database.by_spis(old.spi_i, old.spi_r) is None

    asyncio.run(_with_daemons(scenario))


def test_half_open_responders_expire_and_are_bounded():
    clock = [1000.0]
    initiator_policy, responder_policy = _policies()
    daemon = IkeDaemon(responder_policy, LOOPBACK, clock=lambda: clock[0], max_half_open=2)
    sent = []
    daemon._send = lambda message, address: sent.append(address)  # no socket needed here

    def init_request(spi):
        initiator = Initiator(initiator_policy, RESP_ID, ("127.0.0.1", 500), lambda n: spi * n)
        return initiator.start()

    peer = ("127.0.0.1", 40000)  # not port 500 on either side: Non-ESP marker
    for spi in (b"\x01", b"\x02", b"\x03"):
        daemon.datagram_received(b"\x00" * 4 + init_request(spi), peer)
    assert len(sent) == 2  # the third exceeds max_half_open and is dropped
    clock[0] += 31  # both half-open SAs expire (HALF_OPEN_LIFETIME)
    daemon.datagram_received(b"\x00" * 4 + init_request(b"\x04"), peer)
    assert len(sent) == 3
