"""Two IKE daemons on loopback UDP (asyncio driver, Non-ESP marker on ports other than 500).

Retransmission and half-open expiry run on endpoints wired in memory with a fake clock.
"""

import asyncio

import pytest

from otwamp.ike.admission import HalfOpenLimits
from otwamp.ike.daemon import IkeDaemon
from otwamp.ike.errors import NegotiationError
from otwamp.ike.events import Deleted, Failed, TimedOut
from otwamp.ike.policy import Policy

from .pairing import INIT_ID, PSK, RESP_ID, suites
from .wired import Wired

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

    asyncio.run(_with_daemons(scenario, limits=HalfOpenLimits(cookie_threshold=0)))


def test_wrong_psk_fails_cleanly():
    async def scenario(initiator, responder, address):
        with pytest.raises(NegotiationError, match="AUTHENTICATION_FAILED"):
            await initiator.initiate(RESP_ID, address, timeout=5)
        assert initiator.database.all() == () and responder.database.all() == ()

    asyncio.run(_with_daemons(scenario, initiator_psk=b"wrong"))


def test_silent_peer_times_out():
    async def scenario(initiator, responder, address):
        responder.close()
        with pytest.raises(
            NegotiationError, match=r"no answer from 127\.0\.0\.1:[0-9]+ within 0\.3 s"
        ):
            await initiator.initiate(RESP_ID, address, timeout=0.3)
        assert initiator.endpoint.get_timer() is None  # the failed handshake is forgotten

    asyncio.run(_with_daemons(scenario))


def test_the_handshake_is_retransmitted_then_given_up():
    # RFC 7296 §2.1: resent 0.5, 1.5, 3.5 and 7.5 s after the first send, given up at the end.
    wired = Wired.make()
    wired.responder.silent = True
    start = wired.now
    wired.initiator.endpoint.initiate(RESP_ID, wired.responder.address, start, timeout=9.0)
    wired.flush()
    wired.advance(8.999)
    assert [t - start for t in wired.initiator.sent] == [0.0, 0.5, 1.5, 3.5, 7.5]
    assert wired.initiator.events == []
    wired.advance(0.001)
    assert wired.initiator.events == [Failed("no answer from 10.98.0.1:500 within 9 s")]
    assert wired.initiator.endpoint.get_timer() is None


def test_a_lost_response_is_recovered_by_retransmission():
    wired = Wired.make()
    start = wired.now
    wired.initiator.endpoint.initiate(RESP_ID, wired.responder.address, start, timeout=10.0)
    assert len(wired.initiator.endpoint.datagrams_to_send()) == 1  # IKE_SA_INIT, lost
    wired.initiator.sent.append(start)
    wired.advance(0.5)
    [sa] = wired.initiator.sas()
    assert wired.responder.mirror(sa).ippm_key == sa.ippm_key
    assert wired.initiator.sent == [start, start + 0.5, start + 0.5]  # INIT twice, then AUTH
    assert wired.initiator.endpoint.get_timer() is None  # no lifetimes: nothing left to time


def test_an_unanswered_request_on_an_sa_ends_it():
    # RFC 7296 §2.4: a request unanswered despite retransmissions means the peer is dead.
    wired = Wired.make()
    sa = wired.establish()
    wired.responder.silent = True
    start = wired.now
    wired.initiator.sent.clear()
    wired.initiator.endpoint.delete(sa, start, timeout=2.0)
    wired.flush()
    wired.advance(1.999)
    assert wired.initiator.sas() == (sa,)
    wired.advance(0.001)
    assert wired.initiator.sas() == ()
    assert [t - start for t in wired.initiator.sent] == [0.0, 0.5, 1.5]
    reason = "no answer from 10.98.0.1:500 within 2 s"
    assert wired.initiator.events[-2:] == [
        TimedOut(reason),
        Deleted(sa.spi_i, sa.spi_r, f"deleted without answer ({reason})"),
    ]


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


def test_a_key_lookup_waits_for_the_ike_auth_response_we_are_about_to_get():
    """The responder may key O/TWAMP with a new SA before its IKE_AUTH response reaches us
    (here it is lost once and resent): the lookup by SPIs waits for it (RFC 7717 §5.2)."""

    async def scenario(initiator, responder, address):
        received = []
        deliver = initiator.datagram_received

        def lossy(datagram, source):
            received.append(datagram)
            if len(received) != 2:  # the second is the IKE_AUTH response: lost once
                deliver(datagram, source)

        initiator.datagram_received = lossy
        setting_up = asyncio.create_task(initiator.initiate(RESP_ID, address, timeout=5))
        while not responder.database.all():
            await asyncio.sleep(0.005)
        [theirs] = responder.database.all()
        assert initiator.database.by_spis(theirs.spi_i, theirs.spi_r) is None
        ours = await initiator.established(theirs.spi_i, theirs.spi_r)
        assert ours is not None and ours.ippm_key == theirs.ippm_key
        assert await setting_up == ours and len(received) == 3
        began = asyncio.get_running_loop().time()
        assert await initiator.established(bytes(8), bytes(8)) is None  # unknown: no wait
        assert asyncio.get_running_loop().time() - began < 0.1

    asyncio.run(_with_daemons(scenario))
