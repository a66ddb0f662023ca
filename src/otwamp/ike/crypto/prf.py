"""Pseudorandom functions and prf+ (RFC 7296 §2.13, RFC 4868 §2.1)."""

from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, hmac

from otwamp.errors import ProtocolError
from otwamp.ike.registry import PrfId

_HASHES: dict[int, type[hashes.HashAlgorithm]] = {
    PrfId.HMAC_SHA1: hashes.SHA1,
    PrfId.HMAC_SHA2_256: hashes.SHA256,
    PrfId.HMAC_SHA2_384: hashes.SHA384,
    PrfId.HMAC_SHA2_512: hashes.SHA512,
}
_PRF_PLUS_MAX_BLOCKS = 255  # RFC 7296 §2.13: the counter is one octet.


@dataclass(frozen=True)
class Prf:
    """An HMAC-based prf; output and preferred key length equal the hash size."""

    prf_id: int

    @classmethod
    def from_id(cls, prf_id: int) -> "Prf":
        """The PRF for a transform ID; unsupported IDs raise ProtocolError."""
        if prf_id not in _HASHES:
            raise ProtocolError(f"unsupported PRF {prf_id}", field="PRF", section="RFC 7296 §3.3.2")
        return cls(prf_id)

    @property
    def size(self) -> int:
        """Output length in octets (RFC 4868 §2.1.1)."""
        return _HASHES[self.prf_id]().digest_size

    def __call__(self, key: bytes, data: bytes) -> bytes:
        """prf(key, data)."""
        mac = hmac.HMAC(key, _HASHES[self.prf_id]())
        mac.update(data)
        return mac.finalize()

    def plus(self, key: bytes, seed: bytes, length: int) -> bytes:
        """prf+(key, seed) truncated to ``length`` octets (RFC 7296 §2.13)."""
        blocks = -(-length // self.size)
        if blocks > _PRF_PLUS_MAX_BLOCKS:
            raise ValueError("prf+ is limited to 255 iterations (RFC 7296 §2.13)")
        output = b""
        block = b""
        for counter in range(1, blocks + 1):
            block = self(key, block + seed + bytes([counter]))
            output += block
        return output[:length]
