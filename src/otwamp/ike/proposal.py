"""IKE SA cipher suites and proposal selection (RFC 7296 §2.7, §3.3)."""

from dataclasses import dataclass

from otwamp.errors import ProtocolError
from otwamp.ike.crypto import dh
from otwamp.ike.crypto.prf import Prf
from otwamp.ike.crypto.sk import Encryption, Integrity
from otwamp.ike.registry import DhGroup, EncrId, IntegId, PrfId, ProtocolId, TransformType
from otwamp.ike.wire.sa import Proposal, Transform

_SECTION = "RFC 7296 §3.3"
# strongSwan's keywords (swanctl.conf "proposals"), used in configuration and logs.
_HASHES = {
    "sha1": (PrfId.HMAC_SHA1, IntegId.HMAC_SHA1_96),
    "sha256": (PrfId.HMAC_SHA2_256, IntegId.HMAC_SHA2_256_128),
    "sha384": (PrfId.HMAC_SHA2_384, IntegId.HMAC_SHA2_384_192),
    "sha512": (PrfId.HMAC_SHA2_512, IntegId.HMAC_SHA2_512_256),
}
_GROUPS = {
    "modp2048": DhGroup.MODP_2048,
    "modp3072": DhGroup.MODP_3072,
    "ecp256": DhGroup.ECP_256,
    "ecp384": DhGroup.ECP_384,
    "ecp521": DhGroup.ECP_521,
    "x25519": DhGroup.CURVE25519,
}


@dataclass(frozen=True)
class Suite:
    """One transform of each type: what an IKE SA uses (RFC 7296 §2.7)."""

    encryption: Encryption
    prf: Prf
    integrity: Integrity | None
    dh_group: int

    @classmethod
    def parse(cls, text: str) -> "Suite":
        """A suite in strongSwan notation, e.g. ``aes128gcm16-prfsha256-ecp256``."""
        try:
            encr, hash_name, group = text.split("-")
            bits = int(encr[3:6])
            aead = encr.endswith("gcm16")
            if not encr.startswith("aes") or encr[6:] not in ("", "gcm16"):
                raise ValueError(encr)
            prf_id, integ_id = _HASHES[hash_name.removeprefix("prf") if aead else hash_name]
            encryption = Encryption.from_id(EncrId.AES_GCM_16 if aead else EncrId.AES_CBC, bits)
            return cls(
                encryption,
                Prf.from_id(prf_id),
                None if aead else Integrity.from_id(integ_id),
                _GROUPS[group],
            )
        except (ValueError, KeyError, ProtocolError) as error:
            raise ValueError(f"unknown proposal {text!r}") from error

    def __str__(self) -> str:
        bits = self.encryption.key_bits
        hash_name = next(n for n, (p, _) in _HASHES.items() if p == self.prf.prf_id)
        group = next(n for n, g in _GROUPS.items() if g == self.dh_group)
        if self.encryption.aead:
            return f"aes{bits}gcm16-prf{hash_name}-{group}"
        return f"aes{bits}-{hash_name}-{group}"

    @property
    def integ_key_len(self) -> int:
        """Length of SK_ai and SK_ar: zero for AEAD (RFC 5282 §7.1)."""
        return 0 if self.integrity is None else self.integrity.key_len

    def proposal(self, number: int, spi: bytes = b"") -> Proposal:
        """This suite as a proposal for the IKE protocol (RFC 7296 §3.3.1)."""
        transforms = [
            Transform.make(TransformType.ENCR, self.encryption.encr_id, self.encryption.key_bits)
        ]
        if self.integrity is not None:
            transforms.append(Transform.make(TransformType.INTEG, self.integrity.integ_id))
        transforms.append(Transform.make(TransformType.PRF, self.prf.prf_id))
        transforms.append(Transform.make(TransformType.DH, self.dh_group))
        return Proposal(number, ProtocolId.IKE, tuple(transforms), spi)

    @classmethod
    def from_proposal(cls, proposal: Proposal) -> "Suite":
        """The suite of a proposal with one transform per type, as in a reply (RFC 7296 §2.7)."""
        by_type: dict[int, Transform] = {}
        for transform in proposal.transforms:
            if transform.transform_type in by_type:
                raise ProtocolError(
                    "more than one transform of a type", field="Transform", section="RFC 7296 §2.7"
                )
            by_type[transform.transform_type] = transform
        encr = by_type.get(TransformType.ENCR)
        prf = by_type.get(TransformType.PRF)
        dh_transform = by_type.get(TransformType.DH)
        if encr is None or prf is None or dh_transform is None:
            raise ProtocolError("ENCR, PRF or DH missing", field="Transform", section=_SECTION)
        encryption = Encryption.from_id(encr.transform_id, encr.key_bits)
        integ = by_type.get(TransformType.INTEG)
        if (integ is None or integ.transform_id == IntegId.NONE) != encryption.aead:
            raise ProtocolError(
                "integrity is required exactly for non-AEAD ciphers",
                field="INTEG",
                section="RFC 5282 §8",
            )
        if dh_transform.transform_id not in dh.supported_groups():
            raise ProtocolError(
                f"unsupported group {dh_transform.transform_id}", field="DH", section=_SECTION
            )
        return cls(
            encryption,
            Prf.from_id(prf.transform_id),
            None if integ is None or encryption.aead else Integrity.from_id(integ.transform_id),
            dh_transform.transform_id,
        )

    def offered_in(self, proposal: Proposal) -> bool:
        """True when ``proposal`` offers every transform of this suite (RFC 7296 §3.3.6)."""
        offered = set(_signatures(proposal.transforms))
        return proposal.protocol_id == ProtocolId.IKE and offered.issuperset(
            _signatures(self.proposal(proposal.number).transforms)
        )


def _signatures(transforms: tuple[Transform, ...]) -> list[tuple[int, int, int | None]]:
    return [(t.transform_type, t.transform_id, t.key_bits) for t in transforms]


def choose(offered: tuple[Proposal, ...], acceptable: tuple[Suite, ...]) -> Proposal | None:
    """The reply proposal: the first offered proposal that one of our suites fits (RFC 7296 §2.7).

    The reply keeps the offered Proposal Num and names one transform of each type.
    """
    for proposal in offered:
        for suite in acceptable:
            if suite.offered_in(proposal):
                return suite.proposal(proposal.number, proposal.spi)
    return None
