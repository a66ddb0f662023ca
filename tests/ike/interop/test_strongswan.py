"""Interop with strongSwan's charon on loopback ports in a network namespace (issue 5).

Both roles, PSK and ECDSA or RSA certificates: the IKE SA is ESTABLISHED on both sides, our
prf(SK_d, "IPPM") equals the one computed from the SK_d that charon logs at ike = 4, a rekey
from either side replaces it by a new SA with a new key, and a delete from either side removes
the SA on the other.
"""

import pytest

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
PROPOSALS = {
    "aes128-sha256-x25519": "sha256",
    "aes256-sha384-ecp384": "sha384",
    "aes128gcm16-prfsha256-ecp256": "sha256",
}


@pytest.mark.parametrize("cert", [None, "p256", "rsa"], ids=["psk", "ecdsa", "rsa"])
@pytest.mark.parametrize("proposal", list(PROPOSALS))
def test_we_initiate_to_charon(netns, tmp_path, proposal, cert):
    as_initiator, _ = credentials(tmp_path, cert)
    connection = Connection(
        RESP_ID, INIT_ID, proposal, CHARON_PORT, initiator=False, cert=cert is not None
    )
    charon = Charon(netns, tmp_path / "charon", connection)
    install_for_charon(charon, tmp_path, RESP_ID, cert)
    charon.start()
    peer = None
    try:
        peer = Peer(
            netns,
            *("--local", f"127.0.0.1:{OUR_PORT}", "--initiate", f"127.0.0.1:{CHARON_PORT}"),
            *("--local-id", INIT_ID, "--remote-id", RESP_ID, "--proposals", proposal),
            *as_initiator,
        )
        first = peer.expect("established")
        assert_same_sa(charon, first, PROPOSALS[proposal], proposal)
        peer.send("rekey")
        ours = rekeyed(peer, charon, first, PROPOSALS[proposal], proposal)
        peer.send("delete")
        peer.expect("deleted")
        wait_until_gone(charon, ours["spi_i"])
    finally:
        if peer is not None:
            peer.stop()
        charon.stop()


@pytest.mark.parametrize("cert", [None, "p256", "rsa"], ids=["psk", "ecdsa", "rsa"])
@pytest.mark.parametrize("proposal", list(PROPOSALS))
def test_charon_initiates_to_us(netns, tmp_path, proposal, cert):
    _, as_responder = credentials(tmp_path, cert)
    connection = Connection(
        INIT_ID,
        RESP_ID,
        proposal,
        CHARON_PORT,
        initiator=True,
        remote_port=OUR_PORT,
        cert=cert is not None,
    )
    charon = Charon(netns, tmp_path / "charon", connection)
    install_for_charon(charon, tmp_path, INIT_ID, cert)
    charon.start()
    peer = None
    try:
        peer = Peer(
            netns,
            *("--local", f"127.0.0.1:{OUR_PORT}"),
            *("--local-id", RESP_ID, "--remote-id", INIT_ID, "--proposals", proposal),
            *as_responder,
        )
        charon.swanctl("--initiate", "--ike", "ippm")
        first = peer.expect("established")
        assert_same_sa(charon, first, PROPOSALS[proposal], proposal)
        charon.swanctl("--rekey", "--ike", "ippm")
        ours = rekeyed(peer, charon, first, PROPOSALS[proposal], proposal)
        charon.swanctl("--terminate", "--ike", "ippm")
        assert peer.expect("deleted")["spi_i"] == ours["spi_i"]
    finally:
        if peer is not None:
            peer.stop()
        charon.stop()
