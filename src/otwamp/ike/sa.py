"""The record of an established IKE SA handed to the measurement side (RFC 7717 §5.1, D4, D7)."""

from dataclasses import dataclass, field

from otwamp.ike.proposal import Suite
from otwamp.ike.wire.identity import Identity

Address = tuple[str, int]
_KEY_ID_ZEROS = 64  # RFC 7717 §5.1 / DESIGN D4: KeyID octets 16-79 are zero.


@dataclass(frozen=True)
class IkeSa:
    """SPIs, peer, identities, algorithms and the IPPM key; never SK_d (DESIGN D7)."""

    spi_i: bytes
    spi_r: bytes
    peer: Address
    local_id: Identity
    remote_id: Identity
    suite: Suite
    initiator: bool
    established_at: float
    ippm_key: bytes = field(repr=False)

    @property
    def key_id(self) -> bytes:
        """The 80-octet O/TWAMP KeyID: SPIi | SPIr | 64 zero octets (RFC 7717 §5.1)."""
        return self.spi_i + self.spi_r + bytes(_KEY_ID_ZEROS)
