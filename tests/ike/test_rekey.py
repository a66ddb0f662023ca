"""IKE SA rekeying with CREATE_CHILD_SA (RFC 7296 §1.3.2, §2.18)."""

import pytest

from otwamp.ike.events import Deleted, Redundant, Rekeyed, RekeyFailed
from otwamp.ike.keys import SaKeys
from otwamp.ike.registry import (
    DhGroup,
    EncrId,
    ExchangeType,
    HeaderFlag,
    IntegId,
    NotifyType,
    ProtocolId,
    TransformType,
)
from otwamp.ike.rekey import answer_rekey, start_rekey
from otwamp.ike.session import SessionState
from otwamp.ike.wire.message import Message
from otwamp.ike.wire.payloads import Notify
from otwamp.ike.wire.sa import Proposal, SecurityAssociation, Transform

from .pairing import NOW, established, make_pair, suites
from .vectors import recorded_keys, suite


def _rekey(requester, answerer):
    """Run a rekey started by ``requester``; return both new SAs and the delete request."""
    answer = answerer.receive(requester.rekey(NOW), NOW)
    [theirs] = answer.events
    result = requester.receive(answer.datagrams[0], NOW)
    [ours] = result.events
    assert isinstance(ours, Rekeyed) and isinstance(theirs, Rekeyed)
    [delete] = result.datagrams
    return ours, theirs, delete


@pytest.mark.parametrize("side", ["initiator", "responder"])
def test_rekey_from_either_side(side):
    pair = established(make_pair())
    requester = getattr(pair, side).session
    answerer = (pair.responder if side == "initiator" else pair.initiator).session
    old = requester.sa
    ours, theirs, delete = _rekey(requester, answerer)
    assert ours.old == old and theirs.old == answerer.sa
    assert (theirs.old.spi_i, theirs.old.spi_r) == (old.spi_i, old.spi_r)
    assert ours.new.ippm_key == theirs.new.ippm_key != old.ippm_key
    assert (ours.new.spi_i, ours.new.spi_r) == (theirs.new.spi_i, theirs.new.spi_r)
    assert ours.new.spi_i not in (old.spi_i, old.spi_r)
    # RFC 7296 §1.3.2: the rekey's initiator is the new SA's original initiator.
    assert (ours.new.initiator, theirs.new.initiator) == (True, False)
    assert (ours.new.remote_id, ours.new.peer) == (old.remote_id, old.peer)
    # The rekey's initiator deletes the old SA on the old SA (RFC 7296 §2.18).
    deleted = answerer.receive(delete, NOW)
    assert deleted.events == (Deleted(old.spi_i, old.spi_r),)
    assert requester.receive(deleted.datagrams[0], NOW).events == (Deleted(old.spi_i, old.spi_r),)
    assert requester.state is answerer.state is SessionState.CLOSED
    # The new SA counts Message IDs from 0 (RFC 7296 §1.3.2) and works.
    probe = requester.successor.liveness(NOW)
    assert Message.decode(probe).message_id == 0
    assert Message.decode(probe).flags == HeaderFlag.INITIATOR
    reply = answerer.successor.receive(probe, NOW)
    assert requester.successor.receive(reply.datagrams[0], NOW).events == ()


def test_rekey_in_an_unwanted_group_is_refused_and_the_old_sa_stays():
    pair = established(
        make_pair(
            suites("aes128-sha256-x25519", "aes256-sha384-ecp384"),
            responder_suites=suites("aes256-sha384-ecp384"),
        )
    )
    session = pair.initiator.session
    answer = pair.responder.session.receive(session.rekey(NOW), NOW)
    result = session.receive(answer.datagrams[0], NOW)
    assert result.events == (
        RekeyFailed("rekey refused with INVALID_KE_PAYLOAD", NotifyType.INVALID_KE_PAYLOAD),
    )
    assert session.successor is None and session.state is SessionState.ESTABLISHED
    reply = pair.responder.session.receive(session.liveness(NOW), NOW)
    assert session.receive(reply.datagrams[0], NOW).events == ()


def _request(*payloads):
    return Message(
        b"i" * 8, b"r" * 8, ExchangeType.CREATE_CHILD_SA, HeaderFlag.INITIATOR, 2, payloads
    )


def _old_keys():
    return SaKeys.derive(
        suites("aes128-sha256-x25519")[0], b"seed", ni=b"n", nr=b"m", spi_i=b"i" * 8, spi_r=b"r" * 8
    )


def test_child_sa_requests_are_declined():
    esp = Proposal(
        1,
        ProtocolId.ESP,
        (
            Transform.make(TransformType.ENCR, EncrId.AES_CBC, 128),
            Transform.make(TransformType.INTEG, IntegId.HMAC_SHA2_256_128),
            Transform.make(TransformType.ESN, 0),
        ),
        b"\x01\x02\x03\x04",
    )
    _, payloads = start_rekey(suites("aes128-sha256-x25519"), lambda n: bytes(range(n)))
    request = _request(SecurityAssociation((esp,)), *payloads[1:])
    reply, keys = answer_rekey(_old_keys(), request, suites("aes128-sha256-x25519"), bytes)
    assert reply == (Notify(NotifyType.NO_PROPOSAL_CHOSEN),) and keys is None


def test_rekey_without_common_suite_gets_no_proposal_chosen():
    _, payloads = start_rekey(suites("aes128-sha256-x25519"), lambda n: bytes(range(1, n + 1)))
    reply, keys = answer_rekey(
        _old_keys(), _request(*payloads), suites("aes256-sha384-ecp384"), bytes
    )
    assert reply == (Notify(NotifyType.NO_PROPOSAL_CHOSEN),) and keys is None
    reply, keys = answer_rekey(
        _old_keys(),
        _request(*payloads),
        suites("aes128-sha256-ecp256", "aes128-sha256-x25519")[1:],
        bytes,
    )
    assert keys is not None  # same suite: accepted


def test_rekeyed_keys_match_strongswan(rekey_vector):
    rekey = rekey_vector["rekey"]
    sa = rekey_vector["ike_sa"]
    chosen = suite(rekey_vector)
    old = SaKeys(chosen, bytes.fromhex(sa["spi_i"]), bytes.fromhex(sa["spi_r"]), recorded_keys(sa))
    new = old.rekeyed(
        chosen,
        bytes.fromhex(rekey["g_ir"]),
        ni=bytes.fromhex(rekey["ni"]),
        nr=bytes.fromhex(rekey["nr"]),
        spi_i=bytes.fromhex(rekey["new_spi_i"]),
        spi_r=bytes.fromhex(rekey["new_spi_r"]),
    )
    assert new.keys == recorded_keys(rekey)
    record = new.record(
        peer=("10.98.0.1", 500), local_id=None, remote_id=None, initiator=True, now=NOW
    )
    assert record.ippm_key.hex() == rekey["rfc7717_ippm_key"]
    assert record.key_id[:16].hex() == rekey["new_spi_i"] + rekey["new_spi_r"]


def test_group_of_the_rekey_offer_is_our_first_suite():
    chosen = suites("aes256-sha384-ecp384", "aes128-sha256-x25519")
    _, payloads = start_rekey(chosen, lambda n: bytes(range(1, n + 1)))
    offer, _, ke = payloads
    assert ke.dh_group == DhGroup.ECP_384
    assert [p.spi for p in offer.proposals] == [bytes(range(1, 9))] * 2


def test_simultaneous_rekey_keeps_one_new_sa():
    pair = established(make_pair())
    a, b = pair.initiator.session, pair.responder.session
    request_a, request_b = a.rekey(NOW), b.rekey(NOW)
    answer_to_b = a.receive(request_b, NOW)  # each answers the other's rekey first
    answer_to_a = b.receive(request_a, NOW)
    result_a = a.receive(answer_to_a.datagrams[0], NOW)
    result_b = b.receive(answer_to_b.datagrams[0], NOW)
    events_a, events_b = answer_to_b.events + result_a.events, answer_to_a.events + result_b.events
    new_a = {(e.new.spi_i, e.new.spi_r): e.new for e in events_a if isinstance(e, Rekeyed)}
    new_b = {(e.new.spi_i, e.new.spi_r): e.new for e in events_b if isinstance(e, Rekeyed)}
    assert new_a.keys() == new_b.keys() and len(new_a) == 2
    for spis, sa in new_a.items():
        assert sa.ippm_key == new_b[spis].ippm_key and sa.initiator != new_b[spis].initiator
    # RFC 7296 §2.8.2: the new SA with the lowest nonce goes, deleted by the end that made it.
    [loser] = [e.sa for e in events_a + events_b if isinstance(e, Redundant)]
    assert loser.initiator and (loser.spi_i, loser.spi_r) in new_a


def test_rekey_of_an_sa_being_deleted_is_refused_for_now():
    pair = established(make_pair())
    a, b = pair.initiator.session, pair.responder.session
    a.delete(NOW)
    answer = a.receive(b.rekey(NOW), NOW)
    assert answer.events == ()
    assert b.receive(answer.datagrams[0], NOW).events == (
        RekeyFailed("rekey refused with TEMPORARY_FAILURE", NotifyType.TEMPORARY_FAILURE),
    )
