"""Diffie-Hellman groups against RFC 5903 §8, RFC 7748 §6.1 and RFC 3526."""

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from otwamp.errors import ProtocolError
from otwamp.ike.crypto import dh
from otwamp.ike.registry import DhGroup
from otwamp.ike.wire.message import encode_payloads
from otwamp.ike.wire.payloads import KeyExchange

from ..vectors import Replay, load

# RFC 5903 §8.1 and §8.2: i, g^i = gix | giy, r, g^r, and the shared secret girx.
RFC5903 = {
    DhGroup.ECP_256: {
        "i": "C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433",
        "gi": "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180"
        "5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3",
        "r": "C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53",
        "gr": "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63"
        "56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB",
        "girx": "D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE",
        "kei_header": "0000004800130000",
    },
    DhGroup.ECP_384: {
        "i": "099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655"
        "E35B538041E649EE3FAEF896783AB194",
        "gi": "667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6"
        "DE3AC808ACB4BDB4C88732AEE95F41AA9482ED1FC0EEB9CAFC4984625CCFC23F"
        "65032149E0E144ADA024181535A0F38EEB9FCFF3C2C947DAE69B4C634573A81C",
        "r": "41CB0779B4BDB85D47846725FBEC3C9430FAB46CC8DC5060855CC9BDA0AA2942"
        "E0308312916B8ED2960E4BD55A7448FC",
        "gr": "E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D"
        "0D1AC43A0336DEF96FDA41D0774A3571DCFBEC7AACF3196472169E838430367F"
        "66EEBE3C6E70C416DD5F0C68759DD1FFF83FA40142209DFF5EAAD96DB9E6386C",
        "girx": "11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4"
        "D603135569B9E9D09CF5D4A270F59746",
        "kei_header": "0000006800140000",
    },
}


@pytest.mark.parametrize("group", list(RFC5903))
def test_ecp_matches_rfc5903(group):
    v = {k: bytes.fromhex(x) for k, x in RFC5903[group].items()}
    initiator = dh.generate(group, Replay(v["i"]))
    responder = dh.generate(group, Replay(v["r"]))
    assert initiator.public_value == v["gi"]
    assert responder.public_value == v["gr"]
    assert initiator.shared_secret(v["gr"]) == v["girx"]
    assert responder.shared_secret(v["gi"]) == v["girx"]
    _, kei = encode_payloads((KeyExchange(group, initiator.public_value),))
    assert kei[:8] == v["kei_header"] and kei[8:] == v["gi"]


def test_x25519_matches_rfc7748():
    # RFC 7748 §6.1.
    alice = dh.generate(
        DhGroup.CURVE25519,
        Replay(bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")),
    )
    bob_public = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    assert alice.public_value.hex() == (
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    )
    assert alice.shared_secret(bob_public).hex() == (
        "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    )


def test_x448_matches_rfc7748():
    # RFC 7748 §6.2.
    alice = dh.generate(
        DhGroup.CURVE448,
        Replay(
            bytes.fromhex(
                "9a8f4925d1519f5775cf46b04b5800d4ee9ee8bae8bc5565d498c28d"
                "d9c9baf574a9419744897391006382a6f127ab1d9ac2d8c0a598726b"
            )
        ),
    )
    bob_public = bytes.fromhex(
        "3eb7a829b0cd20f5bcfc0b599b6feccf6da4627107bdb0d4f345b430"
        "27d8b972fc3e34fb4232a13ca706dcb57aec3dae07bdc1c67bf33609"
    )
    assert alice.group == DhGroup.CURVE448
    assert alice.public_value.hex() == (
        "9b08f7cc31b7e3e67d22d5aea121074a273bd2b83de09c63faa73d2c"
        "22c5d9bbc836647241d953d40c5b12da88120d53177f80e532c41fa0"
    )
    assert alice.shared_secret(bob_public).hex() == (
        "07fff4181ac6cc95ec1c16a94a0f74d12da232ce40a77552281d282b"
        "b60c0b56fd2464c335543936521c24403085d59a449a5037514a879d"
    )


def _pi_times_power_of_two(bits: int) -> int:
    """floor(pi * 2^bits) by Machin's formula, pi = 16 atan(1/5) - 4 atan(1/239)."""
    guard = 32
    one = 1 << (bits + guard)

    def atan_inverse(x: int) -> int:
        total, power, n, sign = 0, one // x, 1, 1
        while power:
            total += sign * (power // n)
            power //= x * x
            n += 2
            sign = -sign
        return total

    return (16 * atan_inverse(5) - 4 * atan_inverse(239)) >> guard


@pytest.mark.parametrize(
    ("group", "bits", "k"), [(DhGroup.MODP_2048, 2048, 124476), (DhGroup.MODP_3072, 3072, 1690314)]
)
def test_modp_prime_follows_rfc3526_formula(group, bits, k):
    # RFC 3526 §3-4: p = 2^N - 2^(N-64) - 1 + 2^64 * ([2^(N-130) pi] + k).
    expected = 2**bits - 2 ** (bits - 64) - 1 + 2**64 * (_pi_times_power_of_two(bits - 130) + k)
    assert dh.MODP_PRIMES[group] == expected


@pytest.mark.parametrize("group", [DhGroup.ECP_256, DhGroup.ECP_384, DhGroup.ECP_521])
def test_ecp_group_order_constant(group):
    # (n - 1) * G = -G: same x, other y (RFC 5903 §3 lists n for each group).
    curve, order = dh._ECP[group]
    g = ec.derive_private_key(1, curve).public_key().public_numbers()
    minus_g = ec.derive_private_key(order - 1, curve).public_key().public_numbers()
    assert (minus_g.x, minus_g.y) == (g.x, _FIELD_PRIMES[group] - g.y)
    with pytest.raises(ValueError):
        ec.derive_private_key(order, curve)


# The field primes of P-256, P-384 and P-521 (FIPS 186-4 D.1.2).
_FIELD_PRIMES = {
    DhGroup.ECP_256: 2**256 - 2**224 + 2**192 + 2**96 - 1,
    DhGroup.ECP_384: 2**384 - 2**128 - 2**96 + 2**32 - 1,
    DhGroup.ECP_521: 2**521 - 1,
}


def _counter(start: int):
    """A deterministic random source for tests that need two different private values."""
    state = [start]

    def random(n: int) -> bytes:
        state[0] += 1
        return bytes((state[0] * 131 + i * 7) % 256 for i in range(n))

    return random


@pytest.mark.parametrize("group", dh.supported_groups())
def test_both_sides_agree(group):
    a = dh.generate(group, _counter(1))
    b = dh.generate(group, _counter(7))
    assert a.public_value != b.public_value
    assert a.shared_secret(b.public_value) == b.shared_secret(a.public_value)


@pytest.mark.parametrize("group", dh.supported_groups())
def test_wrong_length_is_refused(group):
    ours = dh.generate(group, _counter(1))
    with pytest.raises(ProtocolError, match="Key Exchange Data"):
        ours.shared_secret(ours.public_value + b"\x00")


@pytest.mark.parametrize("peer", [0, 1, -1])
def test_modp_degenerate_values_are_refused(peer):
    ours = dh.generate(DhGroup.MODP_2048, _counter(1))
    value = peer % dh.MODP_PRIMES[DhGroup.MODP_2048]
    with pytest.raises(ProtocolError, match="RFC 6989"):
        ours.shared_secret(value.to_bytes(256, "big"))


def test_ecp_point_off_the_curve_is_refused():
    ours = dh.generate(DhGroup.ECP_256, _counter(1))
    with pytest.raises(ProtocolError, match="curve"):
        ours.shared_secret(b"\x01" * 64)


@pytest.mark.parametrize(("group", "size"), [(DhGroup.CURVE25519, 32), (DhGroup.CURVE448, 56)])
def test_xdh_all_zero_result_is_refused(group, size):
    ours = dh.generate(group, _counter(1))
    with pytest.raises(ProtocolError, match="RFC 8031"):
        ours.shared_secret(bytes(size))


def test_modp2048_vector_values_are_valid_peers():
    sa = load("psk-aes256-sha1-modp2048")["ike_sa"]
    ours = dh.generate(DhGroup.MODP_2048, _counter(1))
    for name in ("ke_i", "ke_r"):
        assert len(ours.shared_secret(bytes.fromhex(sa[name]))) == 256


def test_a_broken_random_source_does_not_hang():
    with pytest.raises(ValueError, match="no scalar"):
        dh.generate(DhGroup.ECP_256, bytes)


def test_unsupported_group_is_refused():
    with pytest.raises(ProtocolError, match="unsupported group"):
        dh.generate(DhGroup.NONE, _counter(1))
