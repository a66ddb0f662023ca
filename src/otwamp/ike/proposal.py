"""IKE SA cipher suites and proposal selection (RFC 7296 §2.7, §3.3)."""

from dataclasses import dataclass

from otwamp.errors import ProtocolError
from otwamp.ike.crypto import dh
from otwamp.ike.crypto.prf import Prf
from otwamp.ike.crypto.sk import Encryption, Integrity
from otwamp.ike.registry import DhGroup, EncrId, IntegId, PrfId, ProtocolId, TransformType
from otwamp.ike.wire.sa import Proposal, Transform

_SECTION = "RFC 7296 §3.3"

# strongSwan's proposal keywords (swanctl.conf "proposals"; strongSwan's
# src/libstrongswan/crypto/proposal/proposal_keywords_static.txt) for the transforms we
# implement, each with its transform type, ID and key length. The first name of each
# transform is the one we print.
Keyword = tuple[TransformType, int, int | None]
_HASH_NAMES = {
    "sha1": "sha",  # our name: strongSwan's other name for it
    "sha256": "sha2_256",
    "sha384": "sha2_384",
    "sha512": "sha2_512",
}
_PRF_OF_INTEG: dict[int, int] = {
    IntegId.HMAC_SHA1_96: PrfId.HMAC_SHA1,
    IntegId.HMAC_SHA2_256_128: PrfId.HMAC_SHA2_256,
    IntegId.HMAC_SHA2_384_192: PrfId.HMAC_SHA2_384,
    IntegId.HMAC_SHA2_512_256: PrfId.HMAC_SHA2_512,
}
_INTEG_BY_NAME = dict(zip(_HASH_NAMES, _PRF_OF_INTEG, strict=True))
_PRF_BY_NAME = dict(zip(_HASH_NAMES, _PRF_OF_INTEG.values(), strict=True))
_GROUPS: dict[str, int] = {
    "modp2048": DhGroup.MODP_2048,
    "modp3072": DhGroup.MODP_3072,
    "ecp256": DhGroup.ECP_256,
    "ecp384": DhGroup.ECP_384,
    "ecp521": DhGroup.ECP_521,
    "x25519": DhGroup.CURVE25519,
    "curve25519": DhGroup.CURVE25519,
    "x448": DhGroup.CURVE448,
    "curve448": DhGroup.CURVE448,
}
KEYWORDS: dict[str, Keyword] = {
    **{f"aes{b}": (TransformType.ENCR, EncrId.AES_CBC, b) for b in (128, 192, 256)},
    "aes": (TransformType.ENCR, EncrId.AES_CBC, 128),
    **{
        f"aes{b}gcm{icv}": (TransformType.ENCR, EncrId.AES_GCM_16, b)
        for b in (128, 192, 256)
        for icv in ("16", "128", "")  # a 16-octet ICV (RFC 5282 §8)
    },
    **{n: (TransformType.INTEG, i, None) for n, i in _INTEG_BY_NAME.items()},
    **{a: (TransformType.INTEG, _INTEG_BY_NAME[n], None) for n, a in _HASH_NAMES.items()},
    **{f"prf{n}": (TransformType.PRF, p, None) for n, p in _PRF_BY_NAME.items()},
    **{n: (TransformType.DH, g, None) for n, g in _GROUPS.items()},
}


def _name(transform_type: TransformType, transform_id: int, key_bits: int | None = None) -> str:
    """The name we print for a transform: the first keyword that names it."""
    return next(n for n, k in KEYWORDS.items() if k == (transform_type, transform_id, key_bits))


@dataclass(frozen=True)
class Suite:
    """One transform of each type: what an IKE SA uses (RFC 7296 §2.7)."""

    encryption: Encryption
    prf: Prf
    integrity: Integrity | None
    dh_group: int

    @classmethod
    def parse(cls, text: str) -> "Suite":
        """A suite in strongSwan notation, e.g. ``aes128gcm16-prfsha256-curve25519``.

        Keywords may come in any order. As in strongSwan, a missing PRF is the one of the
        integrity algorithm, and an AEAD cipher ignores integrity algorithms (RFC 5282 §8).
        """
        chosen: dict[TransformType, tuple[int, int | None]] = {}
        for token in text.strip().lower().split("-"):
            if token not in KEYWORDS:
                raise ValueError(f"proposal {text!r}: unknown or unsupported algorithm {token!r}")
            transform_type, transform_id, bits = KEYWORDS[token]
            if chosen.setdefault(transform_type, (transform_id, bits)) != (transform_id, bits):
                raise ValueError(
                    f"proposal {text!r}: more than one {transform_type.name} algorithm"
                    " (list alternatives as separate proposals)"
                )
        if TransformType.ENCR not in chosen or TransformType.DH not in chosen:
            raise ValueError(f"proposal {text!r}: needs an encryption algorithm and a DH group")
        encr_id, bits = chosen[TransformType.ENCR]
        encryption = Encryption.from_id(encr_id, bits)
        integ = chosen.get(TransformType.INTEG)
        prf = chosen.get(TransformType.PRF)
        if prf is None and integ is not None:
            prf = (_PRF_OF_INTEG[integ[0]], None)
        if prf is None:
            raise ValueError(f"proposal {text!r}: needs a PRF (e.g. prfsha256) or integrity")
        if integ is None and not encryption.aead:
            raise ValueError(f"proposal {text!r}: needs an integrity algorithm (e.g. sha256)")
        return cls(
            encryption,
            Prf.from_id(prf[0]),
            None if integ is None or encryption.aead else Integrity.from_id(integ[0]),
            chosen[TransformType.DH][0],
        )

    def __str__(self) -> str:
        encryption = _name(TransformType.ENCR, self.encryption.encr_id, self.encryption.key_bits)
        prf = _name(TransformType.PRF, self.prf.prf_id)
        group = _name(TransformType.DH, self.dh_group)
        if self.integrity is None:
            return f"{encryption}-{prf}-{group}"
        integrity = _name(TransformType.INTEG, self.integrity.integ_id)
        if _PRF_OF_INTEG[self.integrity.integ_id] == self.prf.prf_id:
            return f"{encryption}-{integrity}-{group}"
        return f"{encryption}-{integrity}-{prf}-{group}"

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
