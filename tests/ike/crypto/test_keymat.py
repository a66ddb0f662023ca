"""SKEYSEED, SK_* and the IPPM key reproduced from the strongSwan 5.9.8 vectors."""

import pytest

from otwamp.ike.crypto.keymat import derive_keys, ippm_key, rekey_skeyseed, skeyseed
from otwamp.ike.crypto.prf import Prf
from otwamp.ike.registry import PrfId

from ..vectors import recorded_keys, suite


def _hex(values, *names):
    return [bytes.fromhex(values[name]) for name in names]


def test_suite_matches_configured_proposal(vector):
    chosen = suite(vector)
    assert str(chosen) == vector["proposal_config_string"]
    assert chosen.prf.prf_id == vector["proposal"]["prf_id"]
    assert chosen.encryption.key_len == vector["key_lengths_octets"]["SK_ei"]
    assert chosen.integ_key_len == vector["key_lengths_octets"]["SK_ai"]
    assert chosen.prf.size == vector["key_lengths_octets"]["SK_d"]


def test_skeyseed_and_keys_match_charon(vector):
    sa = vector["ike_sa"]
    chosen = suite(vector)
    ni, nr, g_ir, spi_i, spi_r = _hex(sa, "ni", "nr", "g_ir", "spi_i", "spi_r")
    seed = skeyseed(chosen.prf, ni, nr, g_ir)
    assert seed.hex() == sa["SKEYSEED"]
    keys = derive_keys(
        chosen.prf,
        seed,
        ni=ni,
        nr=nr,
        spi_i=spi_i,
        spi_r=spi_r,
        integ_key_len=chosen.integ_key_len,
        encr_key_len=chosen.encryption.key_len,
    )
    assert keys == recorded_keys(sa)
    assert ippm_key(keys.sk_d, chosen.prf).hex() == sa["rfc7717_ippm_key"]


def test_rekeyed_sa_keys_match_charon(rekey_vector):
    rekey = rekey_vector["rekey"]
    chosen = suite(rekey_vector)
    old_sk_d, g_ir, ni, nr = _hex(rekey, "old_SK_d", "g_ir", "ni", "nr")
    assert old_sk_d.hex() == rekey_vector["ike_sa"]["SK_d"]
    seed = rekey_skeyseed(chosen.prf, old_sk_d, g_ir, ni, nr)
    assert seed.hex() == rekey["SKEYSEED"]
    spi_i, spi_r = _hex(rekey, "new_spi_i", "new_spi_r")
    keys = derive_keys(
        chosen.prf,
        seed,
        ni=ni,
        nr=nr,
        spi_i=spi_i,
        spi_r=spi_r,
        integ_key_len=chosen.integ_key_len,
        encr_key_len=chosen.encryption.key_len,
    )
    assert keys == recorded_keys(rekey)
    assert ippm_key(keys.sk_d, chosen.prf).hex() == rekey["rfc7717_ippm_key"]


def test_keys_never_appear_in_repr(vector):
    assert repr(recorded_keys(vector["ike_sa"])) == "IkeKeys()"


def test_prf_plus_first_block_is_prf_of_seed_and_counter():
    # RFC 7296 §2.13: T1 = prf(K, S | 0x01), T2 = prf(K, T1 | S | 0x02).
    prf = Prf.from_id(PrfId.HMAC_SHA2_256)
    t1 = prf(b"k", b"seed\x01")
    t2 = prf(b"k", t1 + b"seed\x02")
    assert prf.plus(b"k", b"seed", 40) == (t1 + t2)[:40]


def test_prf_plus_is_limited_to_255_blocks():
    prf = Prf.from_id(PrfId.HMAC_SHA1)
    assert len(prf.plus(b"k", b"s", 255 * 20)) == 255 * 20
    with pytest.raises(ValueError, match="255"):
        prf.plus(b"k", b"s", 255 * 20 + 1)


def test_rfc4868_hmac_sha256_test_case_1():
    # RFC 4868 §2.7.1, PRF-HMAC-SHA-256 test case 1.
    prf = Prf.from_id(PrfId.HMAC_SHA2_256)
    expected = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    assert prf(b"\x0b" * 20, b"Hi There").hex() == expected
