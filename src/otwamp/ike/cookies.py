"""Stateless IKE_SA_INIT cookies (RFC 7296 §2.6)."""

import ipaddress
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import constant_time, hashes, hmac

_VERSION_LEN = 4


@dataclass(frozen=True)
class CookieGuard:
    """Cookie = <VersionIDofSecret> | HMAC-SHA-256(<secret>, Ni | IPi | SPIi) (RFC 7296 §2.6)."""

    secret: bytes = field(repr=False)
    version: int = 0

    def cookie(self, ni: bytes, address: str, spi_i: bytes) -> bytes:
        """The 36-octet cookie of an initiator at ``address`` (RFC 7296 §3.10.1: 1..64)."""
        mac = hmac.HMAC(self.secret, hashes.SHA256())
        mac.update(ni + ipaddress.ip_address(address).packed + spi_i)
        return self.version.to_bytes(_VERSION_LEN, "big") + mac.finalize()

    def valid(self, cookie: bytes, ni: bytes, address: str, spi_i: bytes) -> bool:
        """True when ``cookie`` is the one we would hand out now."""
        return constant_time.bytes_eq(cookie, self.cookie(ni, address, spi_i))
