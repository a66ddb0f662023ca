"""IKE_AUTH with certificates between our initiator and responder (RFC 7427, RFC 7296 §3.6-3.7)."""

from dataclasses import replace

import pytest

from otwamp.ike.events import Established, Failed
from otwamp.ike.initiator import Initiator
from otwamp.ike.policy import Policy
from otwamp.ike.registry import HashAlgorithm, NotifyType, PayloadType
from otwamp.ike.responder import Responder
from otwamp.ike.wire.message import Message
from otwamp.ike.wire.payloads import Authentication, Notify

from .certs import AFTER, Authority
from .pairing import INIT_ADDRESS, INIT_ID, NOW, PSK, RESP_ADDRESS, RESP_ID, Pair, cert_pair, suites


@pytest.mark.parametrize(("initiator_kind", "responder_kind"), [("p256", "p256"), ("rsa", "p384")])
def test_certificates_establish_the_same_ippm_key(initiator_kind, responder_kind):
    pair = cert_pair(initiator_kind, responder_kind)
    pair.run(pair.initiator.start(NOW))
    [ours] = pair.initiator_events
    [theirs] = pair.responder_events
    assert isinstance(ours, Established) and isinstance(theirs, Established)
    assert ours.sa.ippm_key == theirs.sa.ippm_key
    assert (ours.sa.remote_id, theirs.sa.remote_id) == (RESP_ID, INIT_ID)


def test_certificate_payloads_are_where_rfc7296_puts_them():
    pair = cert_pair()
    pair.run(pair.initiator.start(NOW))
    init_response = Message.decode(pair.to_initiator[0])
    types = [p.payload_type for p in init_response.payloads]
    assert PayloadType.CERTREQ in types
    assert init_response.notify(NotifyType.SIGNATURE_HASH_ALGORITHMS).algorithms == (2, 3, 4)
    handshake = pair.responder._handshake  # the test peeks at keys to read the protected request
    auth_request = handshake.sa.protection(from_initiator=True).open(pair.to_responder[1])
    assert [p.payload_type for p in auth_request.payloads] == [
        PayloadType.IDI,
        PayloadType.CERT,
        PayloadType.CERTREQ,
        PayloadType.IDR,
        PayloadType.AUTH,
    ]


def _failed_both(pair, now):
    pair.run(pair.initiator.start(now), now=now)
    [theirs] = pair.responder_events
    [ours] = pair.initiator_events
    assert isinstance(theirs, Failed) and isinstance(ours, Failed)
    assert ours.notify_type == theirs.notify_type == NotifyType.AUTHENTICATION_FAILED
    return theirs.reason


def test_untrusted_certificate_is_refused():
    pair = cert_pair()
    responder_policy = replace(pair.responder._policy, trust=Authority("Other CA").trust())
    pair.responder = Responder(responder_policy, INIT_ADDRESS)
    assert "untrusted" in _failed_both(pair, now=NOW)


def test_expired_certificate_is_refused():
    pair = cert_pair()
    assert "not valid at validation time" in _failed_both(pair, now=AFTER)


def test_certificate_initiator_with_psk_responder():
    authority = Authority()
    initiator_policy = Policy(
        INIT_ID,
        suites("aes128-sha256-x25519"),
        psks={RESP_ID: PSK},
        credentials=authority.issue("init", "p256", str(INIT_ID)),
    )
    responder_policy = Policy(
        RESP_ID, suites("aes128-sha256-x25519"), psks={INIT_ID: PSK}, trust=authority.trust()
    )
    pair = Pair(
        Initiator(initiator_policy, RESP_ID, RESP_ADDRESS),
        Responder(responder_policy, INIT_ADDRESS),
    )
    pair.run(pair.initiator.start(NOW))
    assert [type(e) for e in pair.initiator_events + pair.responder_events] == [
        Established,
        Established,
    ]


def _auth_of(pair, from_initiator):
    """The AUTH payload of the IKE_AUTH request or response (the test peeks at the keys)."""
    sa = pair.responder._handshake.sa
    data = pair.to_responder[1] if from_initiator else pair.to_initiator[1]
    return sa.protection(from_initiator=from_initiator).open(data).find(Authentication)


# RFC 7427 Appendix A.3: ecdsa-with-SHA256, -SHA384 and -SHA512.
_ECDSA_WITH = {"p256": "040302", "p384": "040303", "p521": "040304"}


@pytest.mark.parametrize(("initiator_kind", "responder_kind"), [("p384", "p521"), ("p521", "p256")])
def test_each_side_signs_with_the_hash_of_its_key(initiator_kind, responder_kind):
    pair = cert_pair(initiator_kind, responder_kind)
    pair.run(pair.initiator.start(NOW))
    assert [type(e) for e in pair.initiator_events + pair.responder_events] == [
        Established,
        Established,
    ]
    for kind, from_initiator in ((initiator_kind, True), (responder_kind, False)):
        auth = _auth_of(pair, from_initiator)
        assert auth.data[1 : 1 + auth.data[0]].hex().endswith(_ECDSA_WITH[kind])


def test_no_common_signature_hash_fails_the_initiator_clearly():
    pair = cert_pair("p384", "p384")
    init_request = pair.initiator.start(NOW)
    response = Message.decode(pair.responder.receive(init_request, NOW).datagrams[0])
    # The responder as if it signed only with SHA-1: nothing the initiator may use.
    payloads = tuple(
        Notify.hash_algorithms((HashAlgorithm.SHA1,))
        if isinstance(p, Notify) and p.notify_type == NotifyType.SIGNATURE_HASH_ALGORITHMS
        else p
        for p in response.payloads
    )
    output = pair.initiator.receive(replace(response, payloads=payloads).encode(), NOW)
    assert output.datagrams == ()
    [failed] = output.events
    assert isinstance(failed, Failed)
    assert "no common signature hash: the peer announced SHA1" in failed.reason
