"""An IKE SA's suite, SPIs and SK_* keys and what derives from them (RFC 7296 §2.14, §2.18)."""

from dataclasses import dataclass, field

from otwamp.ike.crypto.keymat import IkeKeys, derive_keys, ippm_key, rekey_skeyseed
from otwamp.ike.crypto.sk import Protection
from otwamp.ike.proposal import Suite
from otwamp.ike.sa import Address, IkeSa
from otwamp.ike.wire.identity import Identity


@dataclass(frozen=True)
class SaKeys:
    """The keys of one IKE SA; SK_d stays inside (DESIGN D7)."""

    suite: Suite
    spi_i: bytes
    spi_r: bytes
    keys: IkeKeys = field(repr=False)

    @classmethod
    def derive(
        cls, suite: Suite, seed: bytes, *, ni: bytes, nr: bytes, spi_i: bytes, spi_r: bytes
    ) -> "SaKeys":
        """SK_* = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) with the suite's PRF (RFC 7296 §2.14)."""
        keys = derive_keys(
            suite.prf,
            seed,
            ni=ni,
            nr=nr,
            spi_i=spi_i,
            spi_r=spi_r,
            integ_key_len=suite.integ_key_len,
            encr_key_len=suite.encryption.key_len,
        )
        return cls(suite, spi_i, spi_r, keys)

    def rekeyed(
        self, suite: Suite, g_ir: bytes, *, ni: bytes, nr: bytes, spi_i: bytes, spi_r: bytes
    ) -> "SaKeys":
        """The new SA's keys: SKEYSEED from the old SK_d and PRF, SK_* with the new PRF (§2.18)."""
        seed = rekey_skeyseed(self.suite.prf, self.keys.sk_d, g_ir, ni, nr)
        return SaKeys.derive(suite, seed, ni=ni, nr=nr, spi_i=spi_i, spi_r=spi_r)

    def protection(self, from_initiator: bool) -> Protection:
        """SK protection of messages sent by the initiator (SK_ei/SK_ai) or responder."""
        keys = self.keys
        return Protection(
            self.suite.encryption,
            self.suite.integrity,
            keys.sk_ei if from_initiator else keys.sk_er,
            keys.sk_ai if from_initiator else keys.sk_ar,
        )

    def record(
        self, *, peer: Address, local_id: Identity, remote_id: Identity, initiator: bool, now: float
    ) -> IkeSa:
        """The SA record, with prf(SK_d, "IPPM") as its key (RFC 7717 §5.1)."""
        return IkeSa(
            self.spi_i,
            self.spi_r,
            peer,
            local_id,
            remote_id,
            self.suite,
            initiator,
            now,
            ippm_key(self.keys.sk_d, self.suite.prf),
        )
