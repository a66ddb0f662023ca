"""IKE SA lifetimes: rekey before the end, delete at the end if rekeying failed (RFC 7296 §2.8)."""

import asyncio
import logging

from otwamp.ike.config import Lifetimes
from otwamp.ike.daemon import IkeDaemon
from otwamp.ike.policy import Policy

from .pairing import INIT_ID, PSK, RESP_ID, suites

LOOPBACK = ("127.0.0.1", 0)
CHOSEN = suites("aes128-sha256-x25519")


async def _pair(initiator_lifetimes, responder_lifetimes=None):
    initiator = IkeDaemon(
        Policy(INIT_ID, CHOSEN, {RESP_ID: PSK}), LOOPBACK, lifetimes=initiator_lifetimes
    )
    responder = IkeDaemon(
        Policy(RESP_ID, CHOSEN, {INIT_ID: PSK}), LOOPBACK, lifetimes=responder_lifetimes
    )
    await initiator.start()
    address = await responder.start()
    return initiator, responder, address


async def _until(condition, timeout=5.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_sas_are_rekeyed_before_their_lifetime_ends(caplog):
    caplog.set_level(logging.INFO, logger="otwamp.ike")

    async def scenario():
        # Only the initiator has a short lifetime: it rekeys, twice, and both sides follow.
        initiator, responder, address = await _pair(Lifetimes(0.4, 2.0, 0.1))
        try:
            first = await initiator.initiate(RESP_ID, address, timeout=5)
            keys = [first.ippm_key]
            for _ in range(2):
                await _until(
                    lambda: (
                        [sa.ippm_key for sa in initiator.database.all()] not in ([keys[-1]], [])
                        and len(initiator.database.all()) == 1
                    )
                )
                [ours] = initiator.database.all()
                await _until(
                    lambda ours=ours: responder.database.all() == (_mirror(ours, responder),)
                )
                keys.append(ours.ippm_key)
            [ours], [theirs] = initiator.database.all(), responder.database.all()
            assert (ours.spi_i, ours.spi_r, ours.ippm_key) == (
                theirs.spi_i,
                theirs.spi_r,
                theirs.ippm_key,
            )
            assert len(set(keys)) == 3 and ours.initiator and not theirs.initiator
        finally:
            initiator.close()
            responder.close()

    asyncio.run(scenario())
    rekeyed = [r.getMessage() for r in caplog.records if "rekeyed to" in r.getMessage()]
    assert len(rekeyed) >= 4  # two rekeys, logged by both daemons
    assert all("init.ippm.test" in line and "aes128-sha256-x25519" in line for line in rekeyed)


def _mirror(sa, daemon):
    return daemon.database.by_spis(sa.spi_i, sa.spi_r)


def test_responder_side_lifetime_rekeys_too():
    async def scenario():
        initiator, responder, address = await _pair(None, Lifetimes(0.3, 2.0, 0.0))
        try:
            first = await initiator.initiate(RESP_ID, address, timeout=5)
            await _until(
                lambda: (
                    len(initiator.database.all()) == 1
                    and initiator.database.all()[0].spi_i != first.spi_i
                )
            )
            [ours] = initiator.database.all()
            await _until(lambda: _mirror(ours, responder) is not None)
            assert _mirror(ours, responder).ippm_key == ours.ippm_key != first.ippm_key
            # The responder of the first SA started the rekey: it initiates the new one.
            assert not ours.initiator and _mirror(ours, responder).initiator
        finally:
            initiator.close()
            responder.close()

    asyncio.run(scenario())


def test_sa_is_deleted_at_the_end_when_rekeying_fails(caplog):
    caplog.set_level(logging.INFO, logger="otwamp.ike")

    async def scenario():
        initiator, responder, address = await _pair(Lifetimes(0.3, 0.9, 0.0))
        try:
            sa = await initiator.initiate(RESP_ID, address, timeout=5)
            responder.close()  # the peer goes silent: the rekey and the delete go unanswered
            await asyncio.sleep(0.6)
            assert initiator.database.by_spis(sa.spi_i, sa.spi_r) == sa  # still in its lifetime
            await _until(lambda: initiator.database.all() == (), timeout=4)
        finally:
            initiator.close()

    asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records]
    assert any("rekey of IKE SA" in m and "failed" in m for m in messages)
    assert any(" expired " in m and "resp.ippm.test" in m for m in messages)


def test_closing_cancels_the_timers():
    async def scenario():
        initiator, responder, address = await _pair(Lifetimes(0.2, 0.4, 0.0), Lifetimes())
        await initiator.initiate(RESP_ID, address, timeout=5)
        timers = [*initiator._timers.values(), *responder._timers.values()]
        assert len(timers) == 2
        initiator.close()
        responder.close()
        await asyncio.sleep(0)
        assert all(t.cancelled() or t.done() for t in timers)

    asyncio.run(scenario())


def test_delete_all_on_shutdown():
    async def scenario():
        initiator, responder, address = await _pair(None)
        try:
            await initiator.initiate(RESP_ID, address, timeout=5)
            await responder.delete_all(timeout=1)
            assert responder.database.all() == () and initiator.database.all() == ()
            await initiator.initiate(RESP_ID, address, timeout=5)
            responder.close()
            await initiator.delete_all(timeout=0.3)  # unanswered: forgotten all the same
            assert initiator.database.all() == ()
        finally:
            initiator.close()
            responder.close()

    asyncio.run(scenario())


def test_simultaneous_rekeys_leave_one_sa():
    async def scenario():
        # No jitter and the same rekey_time: both ends rekey at once, every time.
        lifetimes = Lifetimes(0.3, 5.0, 0.0)
        initiator, responder, address = await _pair(lifetimes, lifetimes)
        try:
            first = await initiator.initiate(RESP_ID, address, timeout=5)
            await asyncio.sleep(0.6)

            def settled():
                ours, theirs = initiator.database.all(), responder.database.all()
                return (
                    len(ours) == len(theirs) == 1
                    and ours[0].spi_i != first.spi_i
                    and (ours[0].spi_i, ours[0].spi_r) == (theirs[0].spi_i, theirs[0].spi_r)
                )

            await _until(settled, timeout=3)
            [ours], [theirs] = initiator.database.all(), responder.database.all()
            assert ours.ippm_key == theirs.ippm_key
        finally:
            initiator.close()
            responder.close()

    asyncio.run(scenario())
