"""AES128-XCBC and AES128-CMAC as IKEv2 PRFs (RFC 4434, RFC 4615; transform IDs 4 and 8).

strongSwan negotiates them (``prfaesxcbc``, ``prfcmac``); the embedded ``otwamp ike`` does not,
so they live here, for SAs learnt from charon's HA plugin. prf+ is ``Prf.plus`` (RFC 7296 §2.13).
"""

from dataclasses import dataclass
from typing import ClassVar

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from otwamp.ike.crypto.prf import Prf

BLOCK = 16
AES128_XCBC = 4  # RFC 4434 §4 (IKEv2 transform ID, RFC 7296 §3.3.2)
AES128_CMAC = 8  # RFC 4615 §5


def _encrypt(key: bytes, block: bytes) -> bytes:
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def xcbc_mac(key: bytes, message: bytes) -> bytes:
    """AES-XCBC-MAC with a 16-octet key, the full 128-bit tag (RFC 3566 §4)."""
    k1, k2, k3 = (_encrypt(key, bytes([n]) * BLOCK) for n in (1, 2, 3))
    blocks = [message[i : i + BLOCK] for i in range(0, len(message), BLOCK)] or [b""]
    *leading, last = blocks
    if len(last) == BLOCK:
        last = bytes(a ^ b for a, b in zip(last, k2, strict=True))
    else:  # pad with 0x80 then zeros (RFC 3566 §4 step 3b)
        padded = last + b"\x80" + bytes(BLOCK - len(last) - 1)
        last = bytes(a ^ b for a, b in zip(padded, k3, strict=True))
    state = bytes(BLOCK)
    for block in (*leading, last):
        state = _encrypt(k1, bytes(a ^ b for a, b in zip(block, state, strict=True)))
    return state


def cmac_mac(key: bytes, message: bytes) -> bytes:
    """AES-CMAC with a 16-octet key (RFC 4493)."""
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(message)
    return mac.finalize()


@dataclass(frozen=True)
class AesPrf(Prf):
    """AES-XCBC-PRF-128 (RFC 4434) or AES-CMAC-PRF-128 (RFC 4615): 16-octet output and key."""

    IDS: ClassVar[frozenset[int]] = frozenset({AES128_XCBC, AES128_CMAC})

    @property
    def size(self) -> int:
        """Output and preferred key length: 16 octets."""
        return BLOCK

    def __call__(self, key: bytes, data: bytes) -> bytes:
        """prf(key, data); a key of another length than 16 is first made one (RFC 4434 §2)."""
        mac = xcbc_mac if self.prf_id == AES128_XCBC else cmac_mac
        if len(key) != BLOCK:
            # XCBC: shorter keys are zero-padded, longer ones MACed under the zero key
            # (RFC 4434 §2); CMAC: any other length is MACed under the zero key (RFC 4615 §3).
            if self.prf_id == AES128_XCBC and len(key) < BLOCK:
                key = key + bytes(BLOCK - len(key))
            else:
                key = mac(bytes(BLOCK), key)
        return mac(key, data)
