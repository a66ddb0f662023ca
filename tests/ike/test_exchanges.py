"""Our initiator against our responder, in memory (RFC 7296 §1.2, §2.6, RFC 6023)."""

import contextlib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otwamp.errors import ProtocolError
from otwamp.ike.cookies import CookieGuard
from otwamp.ike.events import Deleted, Established, Event, Failed
from otwamp.ike.initiator import InitiatorState
from otwamp.ike.registry import (
    DhGroup,
    EncrId,
    ExchangeType,
    IntegId,
    NotifyType,
    PayloadType,
    ProtocolId,
    TransformType,
)
from otwamp.ike.responder import Responder, ResponderState
from otwamp.ike.session import SessionState
from otwamp.ike.wire.identity import Identity
from otwamp.ike.wire.message import Message
from otwamp.ike.wire.payloads import Authentication, KeyExchange, Nonce, Notify, OpaquePayload
from otwamp.ike.wire.sa import Proposal, SecurityAssociation, Transform

from .pairing import (
    INIT_ADDRESS,
    INIT_ID,
    NOW,
    PSK,
    RESP_ID,
    Pair,
    established,
    make_pair,
    suites,
)

SUITES = [
    "aes128-sha256-x25519",
    "aes256-sha384-ecp384",
    "aes128gcm16-prfsha256-ecp256",
    "aes256-sha1-modp2048",
    "aes256gcm16-prfsha512-ecp521",
    "aes128-sha512-modp3072",
]


@pytest.mark.parametrize("name", SUITES)
def test_both_sides_derive_the_same_ippm_key(name):
    pair = established(make_pair(suites(name)))
    [initiator_event] = pair.initiator_events
    [responder_event] = pair.responder_events
    assert isinstance(initiator_event, Established) and isinstance(responder_event, Established)
    ours, theirs = initiator_event.sa, responder_event.sa
    assert ours.ippm_key == theirs.ippm_key
    assert len(ours.ippm_key) == ours.suite.prf.size
    assert (ours.spi_i, ours.spi_r) == (theirs.spi_i, theirs.spi_r)
    assert ours.key_id == ours.spi_i + ours.spi_r + bytes(64)
    assert (ours.local_id, ours.remote_id) == (INIT_ID, RESP_ID)
    assert (theirs.local_id, theirs.remote_id, theirs.peer) == (RESP_ID, INIT_ID, INIT_ADDRESS)
    assert str(ours.suite) == str(theirs.suite) == name
    assert (ours.initiator, theirs.initiator, ours.established_at) == (True, False, NOW)
    assert ours.ippm_key.hex() not in repr(ours)
    assert len(pair.to_responder) == len(pair.to_initiator) == 2


def test_childless_ike_auth_carries_no_sa_and_responder_says_childless():
    pair = established(make_pair())
    init_response = Message.decode(pair.to_initiator[0])
    assert init_response.notify(NotifyType.CHILDLESS_IKEV2_SUPPORTED) is not None
    handshake = pair.responder._handshake  # the test peeks at keys to read the protected request
    assert handshake is not None
    auth_request = handshake.sa.protection(from_initiator=True).open(pair.to_responder[1])
    assert [p.payload_type for p in auth_request.payloads] == [
        PayloadType.IDI,
        PayloadType.IDR,
        PayloadType.AUTH,
    ]


def test_cookie_is_demanded_then_accepted():
    pair = established(make_pair(cookies=CookieGuard(b"s" * 32)))
    demand = Message.decode(pair.to_initiator[0])
    assert demand.spi_r == bytes(8)
    [cookie] = demand.payloads
    assert isinstance(cookie, Notify) and cookie.notify_type == NotifyType.COOKIE
    first, retry = (Message.decode(d) for d in pair.to_responder[:2])
    assert retry.payloads[0] == cookie  # RFC 7296 §2.6: COOKIE first, the rest unchanged
    assert retry.payloads[1:] == first.payloads and retry.spi_i == first.spi_i
    assert isinstance(pair.responder_events[0], Established)


def test_invalid_ke_payload_retry_uses_the_wanted_group():
    pair = established(
        make_pair(
            suites("aes128-sha256-x25519", "aes128-sha256-ecp256"),
            responder_suites=suites("aes128-sha256-ecp256"),
        )
    )
    refusal = Message.decode(pair.to_initiator[0])
    assert refusal.notify(NotifyType.INVALID_KE_PAYLOAD) == Notify.invalid_ke(DhGroup.ECP_256)
    first, retry = (Message.decode(d) for d in pair.to_responder[:2])
    assert first.find(KeyExchange).dh_group == DhGroup.CURVE25519
    assert retry.find(KeyExchange).dh_group == DhGroup.ECP_256
    assert retry.find(Nonce) == first.find(Nonce) and retry.spi_i == first.spi_i
    [event] = pair.initiator_events
    assert isinstance(event, Established) and str(event.sa.suite) == "aes128-sha256-ecp256"


def test_cookie_and_invalid_ke_together():
    # RFC 7296 §2.6.1: the cookie stays in the request after INVALID_KE_PAYLOAD.
    pair = established(
        make_pair(
            suites("aes128-sha256-x25519", "aes128-sha256-ecp256"),
            responder_suites=suites("aes128-sha256-ecp256"),
            cookies=CookieGuard(b"s" * 32),
        )
    )
    requests = [Message.decode(d) for d in pair.to_responder[:3]]
    assert [r.notify(NotifyType.COOKIE) is not None for r in requests] == [False, True, True]
    assert isinstance(pair.responder_events[0], Established)


def test_no_common_proposal():
    pair = make_pair(
        suites("aes128-sha256-x25519"), responder_suites=suites("aes256-sha384-ecp384")
    )
    pair.run(pair.initiator.start(NOW))
    assert pair.responder_events == [Failed("no proposal in common", NotifyType.NO_PROPOSAL_CHOSEN)]
    [event] = pair.initiator_events
    assert isinstance(event, Failed) and event.notify_type == NotifyType.NO_PROPOSAL_CHOSEN
    assert pair.initiator.state is InitiatorState.FAILED
    assert pair.responder.state is ResponderState.FAILED


def _assert_authentication_failed(pair):
    [responder_event] = pair.responder_events
    [initiator_event] = pair.initiator_events
    assert isinstance(responder_event, Failed) and isinstance(initiator_event, Failed)
    assert responder_event.notify_type == NotifyType.AUTHENTICATION_FAILED
    assert initiator_event.notify_type == NotifyType.AUTHENTICATION_FAILED
    assert pair.initiator.session is None and pair.responder.session is None


def test_wrong_psk_gets_authentication_failed():
    pair = make_pair(initiator_psk=b"not the psk")
    pair.run(pair.initiator.start(NOW))
    _assert_authentication_failed(pair)
    assert PSK.hex() not in str(pair.responder_events[0])


def test_unknown_initiator_gets_authentication_failed():
    pair = make_pair(responder_psks={Identity.fqdn("other.ippm.test"): PSK})
    pair.run(pair.initiator.start(NOW))
    _assert_authentication_failed(pair)


def test_responder_with_another_identity_is_refused():
    pair = make_pair(responder_id=Identity.fqdn("impostor.ippm.test"))
    pair.run(pair.initiator.start(NOW))
    _assert_authentication_failed(pair)


def _rewrite_auth_request(pair, rewrite):
    """Open the initiator's IKE_AUTH request with the handshake keys, rewrite it, re-seal it."""
    pair.initiator.start(NOW)
    init_request = pair.initiator.start(NOW)
    pair.to_initiator.append(pair.responder.receive(init_request, NOW).datagrams[0])
    auth_request = pair.initiator.receive(pair.to_initiator[0], NOW).datagrams[0]
    handshake = pair.initiator._handshake  # the test plays a man in the middle with the keys
    protection = handshake.sa.protection(from_initiator=True)
    message = protection.open(auth_request)
    forged = protection.seal(rewrite(message), bytes)  # zero IV and padding
    return handshake, forged


def test_tampered_auth_gets_authentication_failed():
    pair = make_pair()

    def flip(message):
        payloads = tuple(
            Authentication(p.method, bytes([p.data[0] ^ 1]) + p.data[1:])
            if isinstance(p, Authentication)
            else p
            for p in message.payloads
        )
        return replace(message, payloads=payloads)

    _, forged = _rewrite_auth_request(pair, flip)
    output = pair.responder.receive(forged, NOW)
    [event] = output.events
    assert isinstance(event, Failed) and event.notify_type == NotifyType.AUTHENTICATION_FAILED
    final = pair.initiator.receive(output.datagrams[0], NOW)
    assert final.events == (Failed(final.events[0].reason, NotifyType.AUTHENTICATION_FAILED),)
    assert pair.initiator.session is None and pair.responder.session is None


def test_child_sa_request_is_declined_and_ike_sa_kept():
    pair = make_pair()
    esp = Proposal(
        1,
        ProtocolId.ESP,
        (
            Transform.make(TransformType.ENCR, EncrId.AES_CBC, 128),
            Transform.make(TransformType.INTEG, IntegId.HMAC_SHA2_256_128),
            Transform.make(TransformType.ESN, 0),
        ),
        b"\xc0\x00\x00\x01",
    )
    child_request = (
        SecurityAssociation((esp,)),
        OpaquePayload(PayloadType.TSI, b"\x01\x00\x00\x00"),
        OpaquePayload(PayloadType.TSR, b"\x01\x00\x00\x00"),
    )
    handshake, forged = _rewrite_auth_request(
        pair, lambda m: replace(m, payloads=m.payloads + child_request)
    )
    output = pair.responder.receive(forged, NOW)
    [event] = output.events
    assert isinstance(event, Established)
    response = handshake.sa.protection(from_initiator=False).open(output.datagrams[0])
    assert response.notify(NotifyType.NO_PROPOSAL_CHOSEN) is not None
    assert response.find(Authentication) is not None
    final = pair.initiator.receive(output.datagrams[0], NOW)
    [ours] = final.events
    assert isinstance(ours, Established) and ours.sa.ippm_key == event.sa.ippm_key


@pytest.mark.parametrize("deleter", ["initiator", "responder"])
def test_delete_from_either_side(deleter):
    pair = established(make_pair())
    ours = getattr(pair, deleter).session
    theirs = (pair.responder if deleter == "initiator" else pair.initiator).session
    request = ours.delete(NOW)
    response = theirs.receive(request, NOW)
    assert response.events == (Deleted(ours.sa.spi_i, ours.sa.spi_r),)
    assert ours.receive(response.datagrams[0], NOW).events == (
        Deleted(ours.sa.spi_i, ours.sa.spi_r),
    )
    assert ours.state is theirs.state is SessionState.CLOSED
    with pytest.raises(ProtocolError, match="closed"):
        theirs.receive(request, NOW)


def test_liveness_check_is_answered():
    pair = established(make_pair())
    session = pair.initiator.session
    response = pair.responder.session.receive(session.liveness(NOW), NOW)
    assert response.events == ()
    assert session.receive(response.datagrams[0], NOW).events == ()
    assert session.pending_request is None


def test_retransmitted_requests_get_the_cached_response():
    # RFC 7296 §2.1: the responder answers a retransmission with the same response.
    pair = make_pair()
    init_request = pair.initiator.start(NOW)
    init_response = pair.responder.receive(init_request, NOW).datagrams
    assert pair.responder.receive(init_request, NOW).datagrams == init_response
    [auth_request] = pair.initiator.receive(init_response[0], NOW).datagrams
    auth_response = pair.responder.receive(auth_request, NOW)
    assert pair.responder.receive(auth_request, NOW).datagrams == auth_response.datagrams
    assert len(auth_response.events) == 1


def test_response_to_no_outstanding_request_is_dropped():
    pair = established(make_pair())
    session = pair.initiator.session
    request = Message.decode(session.liveness(NOW))
    assert request.message_id == 2 and request.exchange_type == ExchangeType.INFORMATIONAL
    with pytest.raises(ProtocolError, match="no request 1 outstanding"):
        session.receive(pair.to_initiator[1], NOW)  # the IKE_AUTH response again


def test_request_outside_the_window_is_dropped():
    pair = established(make_pair())
    request = pair.initiator.session.liveness(NOW)
    pair.responder.session.receive(request, NOW)
    later = Message.decode(request)
    skipped = replace(later, message_id=5).encode()
    with pytest.raises(ProtocolError, match="Message ID"):
        pair.responder.session.receive(skipped, NOW)


@settings(max_examples=200)
@given(st.binary(max_size=400))
def test_random_datagrams_raise_only_protocol_error(data):
    responder = Responder(make_pair().responder._policy, INIT_ADDRESS)
    with contextlib.suppress(ProtocolError):
        responder.receive(data, NOW)
    pair = make_pair()
    pair.initiator.start(NOW)
    with contextlib.suppress(ProtocolError):
        pair.initiator.receive(data, NOW)


@settings(max_examples=200)
@given(st.binary(max_size=300), st.sampled_from([0x08, 0x20, 0x28, 0x00]), st.integers(0, 4))
def test_random_bodies_on_an_established_sa_raise_only_protocol_error(body, flags, message_id):
    pair = established(make_pair())
    session = pair.responder.session
    header = session.sa.spi_i + session.sa.spi_r + bytes([46, 0x20, 37, flags])
    data = header + message_id.to_bytes(4, "big") + (28 + len(body)).to_bytes(4, "big") + body
    with contextlib.suppress(ProtocolError):
        session.receive(data, NOW)
    assert session.state is SessionState.ESTABLISHED


def _cookie_race(responder_psk: bytes = PSK) -> tuple[Pair, list[Event]]:
    """The first IKE_SA_INIT gets a COOKIE; its retransmission, arriving once the responder
    no longer wants cookies, gets an SA; the initiator has meanwhile sent the COOKIE retry."""
    pair = make_pair(responder_psks={INIT_ID: responder_psk})
    policy = pair.responder._policy
    first = pair.initiator.start(NOW)
    [demand] = (
        Responder(policy, INIT_ADDRESS, cookies=CookieGuard(b"s" * 32))
        .receive(first, NOW)
        .datagrams
    )
    [answer] = pair.responder.receive(first, NOW).datagrams  # the retransmission, no cookie
    [retry] = pair.initiator.receive(demand, NOW).datagrams
    assert Message.decode(retry).notify(NotifyType.COOKIE) is not None
    with pytest.raises(ProtocolError):  # dropped: its SA came from ``first``
        pair.responder.receive(retry, NOW)
    events: list[Event] = []
    [auth] = pair.initiator.receive(answer, NOW).datagrams  # AUTH over ``retry``: refused
    for datagram in pair.responder.receive(auth, NOW).datagrams:
        output = pair.initiator.receive(datagram, NOW)
        events += output.events
        fresh = Responder(policy, INIT_ADDRESS)  # the old one forgot the SA (§2.21.2)
        pair.responder = fresh
        if output.datagrams:
            pair.run(*output.datagrams)
    return pair, events + pair.initiator_events


def test_an_answer_to_the_request_before_its_cookie_retry_gets_one_fresh_start():
    """RFC 7296 §2.6 gives no way to tell which request an answer is for: an IKE_AUTH
    refused after a COOKIE retry starts the SA once more, with the same SPIi."""
    pair, events = _cookie_race()
    [event] = events
    assert isinstance(event, Established), event
    assert event.sa.spi_i == pair.initiator.spi_i
    restart = Message.decode(pair.to_responder[0])
    assert restart.exchange_type == ExchangeType.IKE_SA_INIT
    assert restart.notify(NotifyType.COOKIE) is None


def test_a_wrong_psk_after_a_cookie_retry_still_fails_after_one_fresh_start():
    pair, events = _cookie_race(responder_psk=b"another pre-shared key")
    [event] = events
    assert isinstance(event, Failed) and event.notify_type == NotifyType.AUTHENTICATION_FAILED
    assert pair.initiator.state is InitiatorState.FAILED
    assert (
        sum(Message.decode(d).exchange_type == ExchangeType.IKE_SA_INIT for d in pair.to_responder)
        == 1
    )
