"""IKE SA lifetimes: rekey before the end, delete at the end if rekeying failed (RFC 7296 §2.8).

The timing logic runs on two endpoints wired in memory with a fake clock; the daemon tests at
the end check that the asyncio driver runs those timers and stops them on close.
"""

import asyncio
import logging

import pytest

from otwamp.ike.daemon import IkeDaemon
from otwamp.ike.events import Deleted, RekeyFailed, TimedOut
from otwamp.ike.policy import Policy
from otwamp.ike.timers import Lifetimes

from .pairing import INIT_ID, PSK, RESP_ID, suites
from .wired import Wired

LOOPBACK = ("127.0.0.1", 0)
CHOSEN = suites("aes128-sha256-x25519")


def _keys(side):
    return [sa.ippm_key for sa in side.sas()]


def test_sas_are_rekeyed_before_their_lifetime_ends(caplog):
    caplog.set_level(logging.INFO, logger="otwamp.ike")
    # Only the initiator has a short lifetime: it rekeys, twice, and both sides follow.
    wired = Wired.make(Lifetimes(0.4, 2.0, 0.1))
    current = wired.establish()
    keys = [current.ippm_key]
    for _ in range(2):
        wired.advance(current.established_at + 0.3 - 1e-6 - wired.now)
        assert _keys(wired.initiator) == [keys[-1]]  # not before rekey_time - jitter ...
        wired.advance(0.1 + 2e-6)
        [ours] = wired.initiator.sas()  # ... but by rekey_time
        current = ours
        assert ours.ippm_key != keys[-1]
        assert wired.responder.sas() == (wired.responder.mirror(ours),)
        keys.append(ours.ippm_key)
    [ours], [theirs] = wired.initiator.sas(), wired.responder.sas()
    assert (ours.spi_i, ours.spi_r, ours.ippm_key) == (theirs.spi_i, theirs.spi_r, theirs.ippm_key)
    assert len(set(keys)) == 3 and ours.initiator and not theirs.initiator
    rekeyed = [r.getMessage() for r in caplog.records if "rekeyed to" in r.getMessage()]
    assert len(rekeyed) >= 4  # two rekeys, logged by both endpoints
    assert all("init.ippm.test" in line and "aes128-sha256-x25519" in line for line in rekeyed)


def test_responder_side_lifetime_rekeys_too():
    wired = Wired.make(None, Lifetimes(0.3, 2.0, 0.0))
    first = wired.establish()
    wired.advance(0.3)
    [ours] = wired.initiator.sas()
    assert ours.spi_i != first.spi_i
    assert wired.responder.mirror(ours).ippm_key == ours.ippm_key != first.ippm_key
    # The responder of the first SA started the rekey: it initiates the new one.
    assert not ours.initiator and wired.responder.mirror(ours).initiator


def test_sa_is_deleted_at_the_end_when_rekeying_fails(caplog):
    caplog.set_level(logging.INFO, logger="otwamp.ike")
    wired = Wired.make(Lifetimes(0.3, 0.9, 0.0))
    sa = wired.establish()
    start = wired.now
    wired.initiator.sent.clear()
    wired.responder.silent = True  # the peer goes silent: the rekey and the delete go unanswered
    wired.advance(0.6)
    assert wired.initiator.mirror(sa) == sa  # still in its lifetime
    wired.advance(1.2 - 1e-6)
    assert wired.initiator.mirror(sa) == sa  # the final Delete waits for its answer ...
    wired.advance(2e-6)
    assert wired.initiator.sas() == ()  # ... for min(10 s, lifetime) at most
    # Rekey at 0.3 s, resent after 0.5 s, given up at the end (0.9 s); then Delete, resent.
    assert [round(t - start, 6) for t in wired.initiator.sent] == [0.3, 0.8, 0.9, 1.4]
    assert RekeyFailed("no answer from 10.98.0.1:500 within 0.6 s") in wired.initiator.events
    reason = "no answer from 10.98.0.1:500 within 0.9 s"
    assert wired.initiator.events[-2:] == [
        TimedOut(reason),
        Deleted(sa.spi_i, sa.spi_r, f"expired ({reason})"),
    ]
    messages = [r.getMessage() for r in caplog.records]
    assert any("rekey of IKE SA" in m and "failed" in m for m in messages)
    assert any(" expired " in m and "resp.ippm.test" in m for m in messages)


def test_a_refused_rekey_is_retried_a_second_later_until_the_end():
    # The rekey offers the first suite's group, which the responder refuses (RFC 7296 §2.18).
    wired = Wired.make(
        Lifetimes(0.3, 3.0, 0.0),
        initiator_suites=suites("aes128-sha256-x25519", "aes256-sha384-ecp384"),
        responder_suites=suites("aes256-sha384-ecp384"),
    )
    sa = wired.establish()
    start = wired.now
    wired.initiator.sent.clear()
    wired.advance(2.9)
    refusals = [e for e in wired.initiator.events if isinstance(e, RekeyFailed)]
    assert [round(t - start, 6) for t in wired.initiator.sent] == [0.3, 1.3, 2.3]
    assert len(refusals) == 3 and "INVALID_KE_PAYLOAD" in refusals[0].reason
    assert wired.initiator.sas() == (sa,)
    wired.advance(0.1)  # the end: Delete, answered
    assert wired.initiator.sas() == wired.responder.sas() == ()
    assert wired.initiator.events[-1] == Deleted(sa.spi_i, sa.spi_r, "expired")


def test_simultaneous_rekeys_leave_one_sa():
    # No jitter and the same rekey_time: both ends rekey at once, every time.
    lifetimes = Lifetimes(0.3, 5.0, 0.0)
    wired = Wired.make(lifetimes, lifetimes)
    first = wired.establish()
    wired.advance(0.3)
    ours, theirs = wired.initiator.sas(), wired.responder.sas()
    assert len(ours) == len(theirs) == 1 and ours[0].spi_i != first.spi_i
    assert (ours[0].spi_i, ours[0].spi_r, ours[0].ippm_key) == (
        theirs[0].spi_i,
        theirs[0].spi_r,
        theirs[0].ippm_key,
    )


# --- the asyncio driver -------------------------------------------------------------------


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


def test_the_daemon_runs_the_lifetime_timers():
    def spis_and_keys(daemon):
        return [(sa.spi_i, sa.spi_r, sa.ippm_key) for sa in daemon.database.all()]

    async def scenario():
        initiator, responder, address = await _pair(Lifetimes(0.2, 2.0, 0.0))
        try:
            first = await initiator.initiate(RESP_ID, address, timeout=5)
            for _ in range(200):
                await asyncio.sleep(0.01)
                ours = spis_and_keys(initiator)
                rekeyed = ours != [(first.spi_i, first.spi_r, first.ippm_key)]
                if rekeyed and len(ours) == 1 and ours == spis_and_keys(responder):
                    return
            pytest.fail("no rekey within 2 s")
        finally:
            initiator.close()
            responder.close()

    asyncio.run(scenario())


def test_closing_cancels_the_timers():
    async def scenario():
        initiator, responder, address = await _pair(Lifetimes(0.2, 0.4, 0.0), Lifetimes())
        await initiator.initiate(RESP_ID, address, timeout=5)
        assert initiator.endpoint.get_timer() is not None  # both SAs' lifetimes run
        assert responder.endpoint.get_timer() is not None
        timers = [initiator._timer, responder._timer]
        initiator.close()
        responder.close()
        assert all(t is not None and t.cancelled() for t in timers)

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
