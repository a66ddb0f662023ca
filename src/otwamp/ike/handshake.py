"""What both ends share after IKE_SA_INIT: keys and signed octets (RFC 7296 §2.14-2.15)."""

from dataclasses import dataclass

from otwamp.ike.crypto.auth import signed_octets
from otwamp.ike.crypto.keymat import skeyseed
from otwamp.ike.keys import SaKeys
from otwamp.ike.proposal import Suite
from otwamp.ike.registry import HeaderFlag
from otwamp.ike.wire.identity import Identity

NONCE_LEN = 32  # RFC 7296 §2.10: at least half the PRF key size, at least 16 octets.
SPI_LEN = 8


def header_flags(initiator: bool, response: bool) -> HeaderFlag:
    """I is set by the original initiator, R on responses (RFC 7296 §3.1)."""
    flags = HeaderFlag(0)
    if initiator:
        flags |= HeaderFlag.INITIATOR
    if response:
        flags |= HeaderFlag.RESPONSE
    return flags


@dataclass(frozen=True)
class Handshake:
    """The outcome of IKE_SA_INIT: the new SA's keys, the nonces and both messages as sent."""

    sa: SaKeys
    ni: bytes
    nr: bytes
    init_request: bytes
    init_response: bytes

    @classmethod
    def derive(
        cls,
        suite: Suite,
        g_ir: bytes,
        *,
        spi_i: bytes,
        spi_r: bytes,
        ni: bytes,
        nr: bytes,
        init_request: bytes,
        init_response: bytes,
    ) -> "Handshake":
        """Compute SKEYSEED = prf(Ni | Nr, g^ir) and the SK_* keys (RFC 7296 §2.14)."""
        seed = skeyseed(suite.prf, ni, nr, g_ir)
        keys = SaKeys.derive(suite, seed, ni=ni, nr=nr, spi_i=spi_i, spi_r=spi_r)
        return cls(keys, ni, nr, init_request, init_response)

    def signed_octets(self, by_initiator: bool, identity: Identity) -> bytes:
        """What the initiator's or the responder's AUTH covers (RFC 7296 §2.15)."""
        prf, keys, id_body = self.sa.suite.prf, self.sa.keys, identity.encode_body()
        if by_initiator:
            return signed_octets(prf, self.init_request, self.nr, keys.sk_pi, id_body)
        return signed_octets(prf, self.init_response, self.ni, keys.sk_pr, id_body)
