"""The HA key source against a running charon: datagrams recorded now, keys equal charon's logs.

Two charon-systemd instances with the HA plugin in a network namespace
(tests/keys/strongswan_ha_support.py): an SA set up, rekeyed by the initiator, then by the
responder, with the AES128-XCBC and the HMAC-SHA-384 PRF; and a failed authentication.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from otwamp.ike.crypto.keymat import ippm_key
from otwamp.keys.strongswan_ha import Change, HaMessage, HaSaTable, MessageType, prf_for
from tests.ike.interop.charon import CHARON
from tests.keys.strongswan_ha_support import (
    INIT_HA,
    RESP_HA,
    charon_pair,
    namespace,
    record,
    recording,
    settle,
)

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("ip") or not Path(CHARON).exists(),
        reason="needs root, ip netns and charon-systemd (scripts/install-debian-deps.sh)",
    ),
]


@pytest.fixture
def netns():
    with namespace(f"ha-live{os.getpid()}") as name:
        yield name


@pytest.mark.parametrize(
    "proposal, prf_id",
    [("aes128-aesxcbc-prfaesxcbc-x25519", 4), ("aes256-sha384-ecp384", 6)],
    ids=["aes-xcbc", "hmac-sha384"],
)
def test_keys_from_live_datagrams_equal_charons_logged_sk_d(netns, tmp_path, proposal, prf_id):
    recorded = record(tmp_path, netns, proposal)
    prf = prf_for(prf_id, "ALG_PRF")
    for role in ("responder", "initiator"):
        table = HaSaTable()
        keys = []
        for datagram in map(bytes.fromhex, recorded[role]["datagrams"]):
            change = table.receive(HaMessage.decode(datagram))
            if change is not None and change[0] is Change.ESTABLISHED:
                spi_i, spi_r = (bytes.fromhex(part.split("=")[1]) for part in change[1].split())
                sa = table.established(spi_i, spi_r)
                assert sa is not None and sa.prf_id == prf_id
                keys.append(sa.key)
        logged = [bytes.fromhex(sk_d) for sk_d in recorded[role]["sk_d"]]
        assert len(logged) == 3, "initial SA and one rekey from each side"
        assert keys == [ippm_key(sk_d, prf) for sk_d in logged]


def test_failed_authentication_adds_then_deletes_and_never_establishes(netns, tmp_path):
    with (
        recording(netns, RESP_HA[1], INIT_HA[1]) as recorder,
        charon_pair(netns, tmp_path, "aes128-sha256-x25519", "not-the-psk") as pair,
    ):
        with pytest.raises(subprocess.CalledProcessError):  # swanctl: authentication failed
            pair.initiator.swanctl("--initiate", "--ike", "ippm")
        datagrams = settle(recorder, RESP_HA[1], 2)
        assert pair.responder.sk_d(), "charon derived keys before failing"
    table = HaSaTable()
    changes = [table.receive(HaMessage.decode(d)) for d in datagrams]
    types = [HaMessage.decode(d).message_type for d in datagrams]
    assert MessageType.IKE_ADD in types and MessageType.IKE_DELETE in types
    assert MessageType.IKE_UPDATE not in types
    assert [c[0] for c in changes if c is not None] == [Change.ADDED, Change.DELETED]
    assert len(table) == 0
