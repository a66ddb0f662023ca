"""Interop with charon (issue 14): strongSwan's own group names in the proposals on both sides
(``curve25519``, ``curve448``), and signatures whose hash matches the certificate's key
(ECDSA P-384 with SHA-384, P-521 with SHA-512), as charon reports verifying them.
"""

import pytest

from otwamp.ike.proposal import Suite

from .charon import Charon, Connection
from .harness import (
    CHARON_PORT,
    INIT_ID,
    INTEROP,
    OUR_PORT,
    RESP_ID,
    Peer,
    assert_same_sa,
    credentials,
    install_for_charon,
    rekeyed,
    wait_until_gone,
)

pytestmark = INTEROP


def _charon(netns, tmp_path, proposal, cert, *, charon_initiates):
    own_id, peer_id = (INIT_ID, RESP_ID) if charon_initiates else (RESP_ID, INIT_ID)
    connection = Connection(
        own_id,
        peer_id,
        proposal,
        CHARON_PORT,
        initiator=charon_initiates,
        remote_port=OUR_PORT,
        cert=cert is not None,
    )
    charon = Charon(netns, tmp_path / "charon", connection)
    install_for_charon(charon, tmp_path, own_id, cert)
    charon.start()
    return charon


@pytest.mark.parametrize(
    ("proposal", "hash_name"),
    [("aes128-sha256-curve25519", "sha256"), ("aes256gcm16-prfsha384-curve448", "sha384")],
)
@pytest.mark.parametrize("charon_initiates", [False, True], ids=["we-initiate", "charon-initiates"])
def test_strongswan_group_names_on_both_sides(
    netns, tmp_path, proposal, hash_name, charon_initiates
):
    as_initiator, as_responder = credentials(tmp_path, None)
    charon = _charon(netns, tmp_path, proposal, None, charon_initiates=charon_initiates)
    canonical = str(Suite.parse(proposal))  # how we name it: x25519, x448
    peer = None
    try:
        if charon_initiates:
            peer = Peer(
                netns,
                *("--local", f"127.0.0.1:{OUR_PORT}", "--proposals", proposal),
                *("--local-id", RESP_ID, "--remote-id", INIT_ID, *as_responder),
            )
            charon.swanctl("--initiate", "--ike", "ippm")
        else:
            peer = Peer(
                netns,
                *("--local", f"127.0.0.1:{OUR_PORT}", "--initiate", f"127.0.0.1:{CHARON_PORT}"),
                *("--local-id", INIT_ID, "--remote-id", RESP_ID, "--proposals", proposal),
                *as_initiator,
            )
        first = peer.expect("established")
        assert_same_sa(charon, first, hash_name, canonical)
        group = "CURVE_25519" if "25519" in proposal else "CURVE_448"
        assert group in charon.swanctl("--list-sas")  # charon's name for the group it uses
        peer.send("rekey")  # a new KE in the same group (RFC 7296 §2.18)
        ours = rekeyed(peer, charon, first, hash_name, canonical)
        peer.send("delete")
        peer.expect("deleted")
        wait_until_gone(charon, ours["spi_i"])
    finally:
        if peer is not None:
            peer.stop()
        charon.stop()


@pytest.mark.parametrize(
    ("cert", "scheme"), [("p384", "ECDSA_WITH_SHA384_DER"), ("p521", "ECDSA_WITH_SHA512_DER")]
)
@pytest.mark.parametrize("charon_initiates", [False, True], ids=["we-initiate", "charon-initiates"])
def test_signature_hash_matches_the_key(netns, tmp_path, cert, scheme, charon_initiates):
    proposal = "aes256-sha384-ecp384"
    as_initiator, as_responder = credentials(tmp_path, cert)
    charon = _charon(netns, tmp_path, proposal, cert, charon_initiates=charon_initiates)
    ours_id, theirs_id = (RESP_ID, INIT_ID) if charon_initiates else (INIT_ID, RESP_ID)
    peer = None
    try:
        where = ["--local", f"127.0.0.1:{OUR_PORT}"]
        if not charon_initiates:
            where += ["--initiate", f"127.0.0.1:{CHARON_PORT}"]
        peer = Peer(
            netns,
            *where,
            *("--local-id", ours_id, "--remote-id", theirs_id, "--proposals", proposal),
            *(as_responder if charon_initiates else as_initiator),
        )
        if charon_initiates:
            charon.swanctl("--initiate", "--ike", "ippm")
        established = peer.expect("established")
        assert_same_sa(charon, established, "sha384", proposal)
        log = (charon.dir / "charon.log").read_text()
        # charon verified our AUTH with the hash of our key's strength, and signed with its own.
        assert f"authentication of '{ours_id}' with {scheme} successful" in log, log
        assert f"authentication of '{theirs_id}' (myself) with {scheme} successful" in log, log
    finally:
        if peer is not None:
            peer.stop()
        charon.stop()
