"""SKEYSEED, the seven SK_* keys and the RFC 7717 IPPM key (RFC 7296 §2.14, §2.18)."""

from dataclasses import dataclass, field

from otwamp.ike.crypto.prf import Prf

IPPM_LABEL = b"IPPM"  # RFC 7717 §5.1: the 4 ASCII octets, no terminator.


@dataclass(frozen=True)
class IkeKeys:
    """SK_d, SK_ai/ar, SK_ei/er, SK_pi/pr of one IKE SA; never shown in reprs."""

    sk_d: bytes = field(repr=False)
    sk_ai: bytes = field(repr=False)
    sk_ar: bytes = field(repr=False)
    sk_ei: bytes = field(repr=False)
    sk_er: bytes = field(repr=False)
    sk_pi: bytes = field(repr=False)
    sk_pr: bytes = field(repr=False)


def skeyseed(prf: Prf, ni: bytes, nr: bytes, g_ir: bytes) -> bytes:
    """SKEYSEED = prf(Ni | Nr, g^ir) for a new IKE SA (RFC 7296 §2.14)."""
    return prf(ni + nr, g_ir)


def rekey_skeyseed(prf: Prf, old_sk_d: bytes, g_ir: bytes, ni: bytes, nr: bytes) -> bytes:
    """SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) for a rekeyed IKE SA (RFC 7296 §2.18)."""
    return prf(old_sk_d, g_ir + ni + nr)


def derive_keys(
    prf: Prf,
    seed: bytes,
    *,
    ni: bytes,
    nr: bytes,
    spi_i: bytes,
    spi_r: bytes,
    integ_key_len: int,
    encr_key_len: int,
) -> IkeKeys:
    """Split prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) into the SK_* keys (RFC 7296 §2.14).

    ``seed`` is SKEYSEED; ``encr_key_len`` includes the salt of AEAD ciphers (RFC 5282 §7.1).
    """
    lengths = (
        prf.size,
        integ_key_len,
        integ_key_len,
        encr_key_len,
        encr_key_len,
        prf.size,
        prf.size,
    )
    stream = prf.plus(seed, ni + nr + spi_i + spi_r, sum(lengths))
    keys: list[bytes] = []
    offset = 0
    for length in lengths:
        keys.append(stream[offset : offset + length])
        offset += length
    return IkeKeys(*keys)


def ippm_key(sk_d: bytes, prf: Prf) -> bytes:
    """prf(SK_d, "IPPM"): the O/TWAMP shared secret of RFC 7717 §5.1 (full PRF output)."""
    return prf(sk_d, IPPM_LABEL)
