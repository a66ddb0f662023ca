"""The KeySource seam between key stores and the control protocol (DESIGN.md, layer 3).

A server asks "which shared secret belongs to this KeyID" and a client asks
"which KeyID and secret do I use with this server". The pass-phrase file
(RFC 4656 §3.1) and the IKEv2-derived key (RFC 7717 §5.1, decision D2)
answer the same questions; the secret then goes through PBKDF2 either way.
"""

import enum
from dataclasses import dataclass, field
from typing import Protocol


class KeySourceKind(enum.StrEnum):
    """Where a control connection's shared secret comes from, as reports name it."""

    NONE = "none"  # open mode: no shared secret (RFC 4656 §3.1, RFC 5357 §3.1)
    PASSPHRASE = "passphrase"  # a pass-phrase (RFC 4656 §3.1)
    IKEV2 = "ikev2"  # prf(SK_d, "IPPM") of an IKE SA (RFC 7717 §5.1)
    STRONGSWAN = "ikev2-strongswan"  # the same, of charon's IKE SA via its HA plugin

    @property
    def ikev2_derived(self) -> bool:
        """Whether the secret is prf(SK_d, "IPPM") (RFC 7717 §5.1): sets the Mode bit of D3."""
        return self in (KeySourceKind.IKEV2, KeySourceKind.STRONGSWAN)


@dataclass(frozen=True, slots=True)
class Credentials:
    """A KeyID (80 octets on the wire) and the shared secret it names."""

    key_id: bytes
    secret: bytes = field(repr=False)
    source: KeySourceKind
    label: str  # what an operator recognises: the identity, or the SPIs


class KeySource(Protocol):
    """The server's question: which secret does a client's KeyID name."""

    @property
    def name(self) -> KeySourceKind:
        """Which kind of key source this is."""
        ...

    @property
    def ikev2_derived(self) -> bool:
        """Whether the secret is prf(SK_d, "IPPM") (RFC 7717 §5.1): sets the Mode bit of D3."""
        ...

    async def server_secret(self, key_id: bytes, peer: str) -> Credentials | None:
        """The secret for a client's KeyID, or None when unknown; never blocks the loop."""
        ...


class ClientKeySource(Protocol):
    """The client's question: which KeyID and secret to use towards a server."""

    @property
    def name(self) -> KeySourceKind:
        """Which kind of key source this is."""
        ...

    @property
    def ikev2_derived(self) -> bool:
        """Whether the secret is prf(SK_d, "IPPM") (RFC 7717 §5.1): sets the Mode bit of D3."""
        ...

    async def credentials_for(self, server: str, derived_offered: bool = True) -> Credentials:
        """Credentials for ``server`` (an IP address); raises KeySourceError if none."""
        ...
