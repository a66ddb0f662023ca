"""Which initiators may hold half-open IKE SAs, and how many (RFC 7296 §2.6; sans-I/O).

A half-open SA (IKE_SA_INIT answered, IKE_AUTH not yet) costs the responder a DH exchange and
state for HALF_OPEN_LIFETIME. They are limited per source as well as globally, so that one host
cannot fill the table however many UDP ports it sends from: a source is an IPv4 address or an
IPv6 /64 (what one host usually holds). When the table is full, a source holding fewer than the
biggest holder evicts that holder's oldest half-open SA; a newcomer is thus always served.
"""

import ipaddress
from dataclasses import dataclass

from otwamp.ike.sa import Address

Key = tuple[bytes, Address]  # a responder: the initiator's SPIi and its address and port
IPV6_SOURCE_PREFIX = 64  # one IPv6 host usually holds a whole /64 (RFC 4291 §2.5.1)
# Log causes (ThrottledLog): what happened, and which limit made it happen.
SOURCE_FULL = "IKE_SA_INIT dropped: its source holds max_half_open_per_source half-open SAs"
TABLE_FULL = "IKE_SA_INIT dropped: max_half_open reached, no source holds more than its sender"
EVICTED = "half-open IKE SA of the biggest holder evicted for a new one: max_half_open reached"


@dataclass(frozen=True)
class HalfOpenLimits:
    """How many half-open IKE SAs we keep, and when we demand COOKIEs (RFC 7296 §2.6)."""

    cookie_threshold: int = 64  # in all, before every new IKE_SA_INIT needs a COOKIE
    max_half_open: int = 1024  # in all
    cookie_threshold_per_source: int = 4  # from one source, before it needs a COOKIE
    max_half_open_per_source: int = 16  # from one source

    def __post_init__(self) -> None:
        if min(self.cookie_threshold, self.cookie_threshold_per_source) < 0:
            raise ValueError("cookie_threshold and cookie_threshold_per_source must be >= 0")
        if not 0 < self.max_half_open_per_source <= self.max_half_open:
            raise ValueError("max_half_open_per_source must be from 1 to max_half_open")
        if self.cookie_threshold_per_source >= self.max_half_open_per_source:
            # Else a spoofer could take all of a peer's slots without ever echoing a COOKIE.
            raise ValueError(
                "cookie_threshold_per_source must be less than max_half_open_per_source"
            )


def source_of(address: Address) -> str:
    """Whom per-source limits count: an IPv4 address, or the /64 of an IPv6 one."""
    ip = ipaddress.ip_address(address[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_SOURCE_PREFIX), strict=False))
    return str(ip)


class HalfOpenTable:
    """The half-open IKE SAs by source: who may add one, and whose is evicted when full."""

    def __init__(self, limits: HalfOpenLimits) -> None:
        self.limits = limits
        self._by_source: dict[str, dict[Key, int]] = {}  # oldest first, with an arrival number
        self._count = 0
        self._arrivals = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: Key) -> bool:
        return key in self._by_source.get(source_of(key[1]), {})

    def held(self, source: str) -> int:
        """How many half-open SAs ``source`` holds."""
        return len(self._by_source.get(source, ()))

    def refusal(self, source: str) -> str | None:
        """Why a new half-open SA from ``source`` would be refused now (a log cause), or None."""
        held = self.held(source)
        if held >= self.limits.max_half_open_per_source:
            return SOURCE_FULL
        if self._count >= self.limits.max_half_open and self._victim(held) is None:
            return TABLE_FULL
        return None

    def cookies_required(self, source: str) -> bool:
        """True when a new IKE_SA_INIT from ``source`` must carry a valid COOKIE."""
        return (
            self._count >= self.limits.cookie_threshold
            or self.held(source) >= self.limits.cookie_threshold_per_source
        )

    def add(self, key: Key) -> Key | None:
        """Record a new half-open SA (``refusal`` said yes); return the one evicted for it."""
        source = source_of(key[1])
        evicted = None
        if self._count >= self.limits.max_half_open:
            victim = self._victim(self.held(source))
            assert victim is not None, "add() without checking refusal()"
            evicted = next(iter(self._by_source[victim]))
            self.remove(evicted)
        self._arrivals += 1
        self._by_source.setdefault(source, {})[key] = self._arrivals
        self._count += 1
        return evicted

    def remove(self, key: Key) -> None:
        """Forget a half-open SA (established, failed, expired or evicted); unknown is fine."""
        source = source_of(key[1])
        held = self._by_source.get(source, {})
        if held.pop(key, None) is not None:
            self._count -= 1
            if not held:
                del self._by_source[source]

    def _victim(self, held: int) -> str | None:
        """The source to evict from: the biggest holder above ``held``, the oldest one on a tie."""
        if not self._by_source:
            return None
        source, keys = max(
            self._by_source.items(), key=lambda item: (len(item[1]), -next(iter(item[1].values())))
        )
        return source if len(keys) > held else None
