"""Half-open IKE SAs under a flood: per-source and global limits, eviction, COOKIEs bound to the
address and not the port (RFC 7296 §2.6), on an endpoint in memory with a fake clock."""

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from otwamp.errors import ProtocolError
from otwamp.ike import endpoint as endpoint_module
from otwamp.ike.admission import HalfOpenLimits
from otwamp.ike.crypto.entropy import system_random
from otwamp.ike.endpoint import IkeEndpoint
from otwamp.ike.events import Abandoned
from otwamp.ike.initiator import Initiator
from otwamp.ike.policy import Policy
from otwamp.ike.registry import ExchangeType, NotifyType
from otwamp.ike.responder import Responder
from otwamp.ike.sa import Address
from otwamp.ike.timers import HALF_OPEN_LIFETIME
from otwamp.ike.wire.message import Message

from .pairing import INIT_ID, NOW, PSK, RESP_ADDRESS, RESP_ID
from .wired import CHOSEN, Wired

FLOODER = "192.0.2.66"
INITIATOR_POLICY = Policy(INIT_ID, CHOSEN, {RESP_ID: PSK})
SMALL = HalfOpenLimits(
    cookie_threshold=100, max_half_open=4, cookie_threshold_per_source=1, max_half_open_per_source=2
)


def _responder(limits: HalfOpenLimits | None = None) -> IkeEndpoint:
    return Wired.make(limits=limits).responder.endpoint


def _ports(first: int = 40000) -> Iterator[int]:
    yield from range(first, 65536)


def _reply(endpoint: IkeEndpoint, to: Address) -> Message | None:
    """The one answer ``endpoint`` queued, sent back to ``to``; None if it stayed silent."""
    replies = endpoint.datagrams_to_send()
    if not replies:
        return None
    [(reply, address)] = replies
    assert address == to
    return Message.decode(reply)


def _attempt(endpoint: IkeEndpoint, host: str, ports: Iterator[int], now: float = NOW) -> bool:
    """IKE_SA_INIT from a new port of ``host``, each COOKIE echoed from yet another port;
    True when the responder accepted it (a response with its own SPI)."""
    initiator = Initiator(INITIATOR_POLICY, RESP_ID, RESP_ADDRESS, system_random)
    request = initiator.start(now)
    while True:
        address = (host, next(ports))
        endpoint.receive(request, address, now)
        reply = _reply(endpoint, address)
        if reply is None:
            return False
        if reply.notify(NotifyType.COOKIE) is None:
            return reply.spi_r != bytes(8)
        [request] = initiator.receive(reply.encode(), now).datagrams


@pytest.fixture
def responders(monkeypatch: pytest.MonkeyPatch) -> list[Responder]:
    """Every Responder the endpoint creates."""
    created: list[Responder] = []

    def counted(*args: Any) -> Responder:
        responder = Responder(*args)
        created.append(responder)
        return responder

    monkeypatch.setattr(endpoint_module, "Responder", counted)
    return created


def test_one_host_cannot_pass_its_limit_from_many_ports(responders, caplog):
    endpoint = _responder()  # defaults: COOKIEs after 4 per source, at most 16
    ports = _ports()
    caplog.set_level(logging.WARNING, "otwamp.ike")
    accepted = [_attempt(endpoint, FLOODER, ports) for _ in range(100)]
    assert accepted == [True] * 16 + [False] * 84
    assert endpoint.half_open == 16
    # 4 answered at once, 12 after a COOKIE (two Responders each), none past the limit.
    assert len(responders) == 4 + 12 * 2
    [line] = caplog.messages
    assert line.startswith("IKE_SA_INIT dropped: its source holds max_half_open_per_source")
    assert f"1 in 0 s from 1 source(s), most from {FLOODER} (1)" in line
    assert _attempt(endpoint, "198.51.100.7", ports), "another host is still served"
    assert endpoint.half_open == 17


def test_drops_are_counted_in_one_line_per_interval(caplog):
    wired = Wired.make()
    endpoint = wired.responder.endpoint
    ports = _ports()
    caplog.set_level(logging.WARNING, "otwamp.ike")
    for _ in range(16 + 50):
        _attempt(endpoint, FLOODER, ports, wired.now)
    wired.advance(5.0)
    for _ in range(30):
        _attempt(endpoint, FLOODER, ports, wired.now)
    assert len(caplog.messages) == 1
    assert endpoint.get_timer() == NOW + 10.0  # the next line is due
    wired.advance(5.0)
    assert len(caplog.messages) == 2
    assert "79 in 10 s from 1 source(s)" in caplog.messages[1]  # 49 + 30 since the first line
    wired.advance(HALF_OPEN_LIFETIME)
    assert len(caplog.messages) == 2, "nothing more to say"
    assert endpoint.half_open == 0 and endpoint.get_timer() is None


def test_cookie_is_valid_from_another_port_but_not_another_address():
    endpoint = _responder(HalfOpenLimits(cookie_threshold=0))  # COOKIEs always
    initiator = Initiator(INITIATOR_POLICY, RESP_ID, RESP_ADDRESS, system_random)
    endpoint.receive(initiator.start(NOW), (FLOODER, 40000), NOW)
    demand = _reply(endpoint, (FLOODER, 40000))
    assert demand is not None and demand.notify(NotifyType.COOKIE) is not None
    [echo] = initiator.receive(demand.encode(), NOW).datagrams
    endpoint.receive(echo, ("192.0.2.67", 40000), NOW)
    again = _reply(endpoint, ("192.0.2.67", 40000))
    assert again is not None and again.notify(NotifyType.COOKIE) is not None, "other address"
    assert endpoint.half_open == 0
    endpoint.receive(echo, (FLOODER, 40001), NOW)
    accepted = _reply(endpoint, (FLOODER, 40001))
    assert accepted is not None and accepted.notify(NotifyType.COOKIE) is None
    assert accepted.spi_r != bytes(8) and endpoint.half_open == 1


def test_a_full_table_evicts_the_biggest_holders_oldest_for_a_newcomer():
    endpoint = _responder(SMALL)
    ports = _ports()
    assert [_attempt(endpoint, host, ports) for host in ("10.0.0.1",) * 3] == [True, True, False]
    assert [_attempt(endpoint, "10.0.0.2", ports) for _ in range(2)] == [True, True]
    assert endpoint.half_open == 4 and endpoint.events() == []  # full
    assert _attempt(endpoint, "10.0.0.3", ports), "a new source is served"
    [(_, evicted)] = endpoint.events()
    assert evicted == Abandoned("evicted: max_half_open reached")
    assert endpoint.half_open == 4
    # 10.0.0.2 now holds the most (2): 10.0.0.1, holding 1, takes its oldest one.
    assert _attempt(endpoint, "10.0.0.1", ports)
    assert len(endpoint.events()) == 1 and endpoint.half_open == 4


def test_an_equal_holder_is_refused_when_the_table_is_full(caplog):
    endpoint = _responder(
        HalfOpenLimits(
            cookie_threshold=100,
            max_half_open=2,
            cookie_threshold_per_source=1,
            max_half_open_per_source=2,
        )
    )
    ports = _ports()
    caplog.set_level(logging.WARNING, "otwamp.ike")
    assert _attempt(endpoint, "10.0.0.1", ports) and _attempt(endpoint, "10.0.0.2", ports)
    assert not _attempt(endpoint, "10.0.0.1", ports)
    [line] = caplog.messages
    assert line.startswith("IKE_SA_INIT dropped: max_half_open reached")
    assert _attempt(endpoint, "10.0.0.3", ports)  # evicts 10.0.0.1's, the oldest of equals
    assert "evicted" in caplog.messages[-1] and "most from 10.0.0.1 (1)" in caplog.messages[-1]


def test_half_open_sas_expire_and_free_their_slots():
    wired = Wired.make(limits=SMALL)
    endpoint = wired.responder.endpoint
    ports = _ports()
    assert _attempt(endpoint, "10.0.0.1", ports) and _attempt(endpoint, "10.0.0.2", ports)
    assert endpoint.get_timer() == NOW + HALF_OPEN_LIFETIME
    wired.advance(HALF_OPEN_LIFETIME)
    assert wired.responder.events == [Abandoned("no IKE_AUTH within 30 s")] * 2
    assert endpoint.half_open == 0 and endpoint.get_timer() is None


def test_a_completed_handshake_frees_its_half_open_slot():
    wired = Wired.make(limits=SMALL)
    wired.establish()
    assert wired.responder.endpoint.half_open == 0


def test_a_malformed_ike_sa_init_keeps_no_state():
    endpoint = _responder()
    initiator = Initiator(INITIATOR_POLICY, RESP_ID, RESP_ADDRESS, system_random)
    request = Message.decode(initiator.start(NOW))
    assert request.exchange_type == ExchangeType.IKE_SA_INIT
    bare = Message(request.spi_i, request.spi_r, request.exchange_type, request.flags, 0, ())
    with pytest.raises(ProtocolError, match="SAi1, KEi or Ni missing"):
        endpoint.receive(bare.encode(), (FLOODER, 40000), NOW)
    assert endpoint.half_open == 0 and endpoint.get_timer() is None
