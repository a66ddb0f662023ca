"""The IKEv2-derived shared secret of RFC 7717 as a key source (decisions D2, D4-D7).

The secret is prf(SK_d, "IPPM") of an IKE SA; the KeyID is SPIi | SPIr | 64
zero octets (RFC 7717 §5.1, D4). The IKE side answers through ``SaLookup``
(``otwamp.drivers.ike_lookup``: an embedded ``otwamp ike`` or its key broker).
Either way only the derived key crosses, never SK_d (D7). The key is taken
once, at set-up, and used for the whole control connection (D5).
"""

import enum
import ipaddress
import logging
from dataclasses import dataclass, field
from typing import Protocol

from otwamp.errors import KeySourceError
from otwamp.keys.source import ClientKeySource, Credentials, KeySourceKind

log = logging.getLogger("otwamp.keys")

SPI_SIZE = 8


@dataclass(frozen=True, slots=True)
class SaKey:
    """What the measurement side learns of an IKE SA: SPIs, peer and the IPPM key."""

    spi_i: bytes
    spi_r: bytes
    peer: str
    key: bytes = field(repr=False)
    source: KeySourceKind = KeySourceKind.IKEV2  # or STRONGSWAN: learnt from charon's HA plugin

    @property
    def label(self) -> str:
        """SPIi/SPIr in hex, for logs and reports (never the key)."""
        return f"SPIi={self.spi_i.hex()} SPIr={self.spi_r.hex()}"

    def credentials(self) -> Credentials:
        """The KeyID of D4 and the secret of D2."""
        key_id = self.spi_i + self.spi_r + bytes(64)
        return Credentials(key_id, self.key, self.source, self.label)


@dataclass(frozen=True, slots=True)
class PeerSa:
    """The SA with a peer, and whether the lookup set it up rather than found it."""

    sa: SaKey
    initiated: bool = False


class SaLookup(Protocol):
    """Where IKE SAs are looked up."""

    async def by_spis(self, spi_i: bytes, spi_r: bytes) -> SaKey | None:
        """The SA a KeyID names, or None."""
        ...

    async def for_peer(self, host: str, initiate: bool) -> PeerSa | None:
        """The SA with the peer at ``host``, set up first if ``initiate``; None if none."""
        ...


@dataclass(slots=True)
class IkeServerKeys:
    """The server's RFC 7717 key source: the SA named by the KeyID's SPIs (D4, D7)."""

    lookup: SaLookup
    check_peer: bool = True  # D7: the SA's peer must be the control connection's source
    name: KeySourceKind = KeySourceKind.IKEV2
    ikev2_derived: bool = True

    async def server_secret(self, key_id: bytes, peer: str) -> Credentials | None:
        """The IPPM key of the SA in octets 0-15 of KeyID (16-79 ignored, D4).

        None when no SA has those SPIs; KeySourceError when it belongs to another peer.
        """
        spi_i, spi_r = key_id[:SPI_SIZE], key_id[SPI_SIZE : 2 * SPI_SIZE]
        sa = await self.lookup.by_spis(spi_i, spi_r)
        if sa is None:
            return None
        if self.check_peer and not same_host(sa.peer, peer):
            raise KeySourceError(f"the IKE SA {sa.label} belongs to {sa.peer}, not to {peer}")
        return sa.credentials()


def same_host(a: str, b: str) -> bool:
    """Whether two addresses name one host; IPv4-mapped IPv6 equals its IPv4 address."""
    return _canonical(a) == _canonical(b)


def _canonical(host: str) -> str:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


class Policy(enum.Enum):
    """What a client does without an IKE SA for the server (D6)."""

    INITIATE = "initiate"  # set one up, then go on (default)
    FALLBACK = "fallback"  # use the pass-phrase key, if configured
    REQUIRE = "require"  # fail


@dataclass(slots=True)
class IkeClientKeys:
    """The client's RFC 7717 key source: the SA with the server's address (D6)."""

    lookup: SaLookup
    policy: Policy = Policy.INITIATE
    fallback: ClientKeySource | None = None  # the pass-phrase key of Policy.FALLBACK
    name: KeySourceKind = KeySourceKind.IKEV2
    ikev2_derived: bool = True

    async def credentials_for(self, server: str, derived_offered: bool = True) -> Credentials:
        """KeyID and IPPM key of the SA with ``server``, per the policy when there is none.

        ``derived_offered`` is whether the server's greeting offers the IKEv2-derived
        Mode bit (RFC 7717 §5.2); without it only the fallback key can be used.
        """
        if not derived_offered:  # a pass-phrase key, if given, unless IKE is required
            why = "the server does not offer IKEv2-derived keys"
            return await self._fall_back(server, why, self.policy is not Policy.REQUIRE)
        initiate = self.policy is Policy.INITIATE
        try:
            found = await self.lookup.for_peer(server, initiate)
        except KeySourceError as exc:
            if self.policy is not Policy.FALLBACK:
                raise
            return await self._fall_back(server, str(exc))
        if found is not None:
            if found.initiated:
                log.info("using IKE SA %s with %s, set up now (RFC 7717)", found.sa.label, server)
            return found.sa.credentials()
        return await self._fall_back(server, f"no IKE SA with {server}")

    async def _fall_back(self, server: str, why: str, allowed: bool = False) -> Credentials:
        """The pass-phrase key under policy fallback (or if ``allowed``); else KeySourceError."""
        if (allowed or self.policy is Policy.FALLBACK) and self.fallback is not None:
            log.error("%s: falling back to the pass-phrase key", why)
            credentials: Credentials = await self.fallback.credentials_for(server)
            return credentials
        raise KeySourceError(f"{why} (key source {self.name.value}, policy {self.policy.value})")
