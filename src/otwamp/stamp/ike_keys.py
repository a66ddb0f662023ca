"""HMAC keys of authenticated STAMP from IKEv2 SAs (our pairing of RFC 7717 with RFC 8762).

No standard says how STAMP gets keys from IKEv2: RFC 8762 §4.4 leaves key
management out of scope, and RFC 7717 keys O/TWAMP only. We apply RFC 7717
§5.1's derivation: the HMAC-SHA-256 key of STAMP (RFC 8762 §4.4) is
prf(SK_d, "IPPM") of the IKE SA with the peer, used as it is (HMAC takes a
key of any length, RFC 2104; there is no Server-Greeting to carry the Salt
and Count that O/TWAMP feed to PBKDF2). Only that derived key leaves the
IKE daemon, never SK_d (D7).

STAMP packets name no SA, so each side picks one by the peer's address:

* the Session-Sender takes the newest SA with the reflector's address when
  the session starts (``IkeClientKeys``, which can set one up first) and
  keeps its key for the whole session, as D5 pins TWAMP's;
* the Session-Reflector takes the newest SA with the packet's source
  address the first time that address sends, and keeps that key while the
  address keeps sending (``IDLE_SECONDS`` without a packet: asked again).
  The SSID plays no part: one key per peer address, whatever its sessions.
"""

import logging
from dataclasses import dataclass, field

from otwamp.errors import KeySourceError
from otwamp.keys.ikev2 import SaLookup
from otwamp.stamp.packets import StampHmac
from otwamp.stamp.tlv import IPAddress

log = logging.getLogger("otwamp.server")

IDLE_SECONDS = 60.0  # a peer silent this long has its SA looked up again
RETRY_SECONDS = 1.0  # a peer without an SA is asked about again after this long


@dataclass(slots=True)
class _Entry:
    key: StampHmac | None = field(repr=False)  # None: no SA with the peer
    label: str  # the SA's SPIs, for logs
    until: float  # monotonic seconds after which the peer is asked about again


@dataclass(slots=True)
class IkeStampKeys:
    """The reflector's STAMP keys from the newest IKE SA with each peer address."""

    lookup: SaLookup
    _peers: dict[IPAddress, _Entry] = field(default_factory=dict, repr=False)

    def __call__(self, peer: IPAddress, ssid: int) -> StampHmac | None:
        """The key of the SA with ``peer`` (the SSID is not involved), if one was found."""
        entry = self._peers.get(peer)
        return None if entry is None else entry.key

    def known(self, peer: IPAddress, now: float) -> bool:
        """Whether ``peer``'s key is settled; each call while it is counts as its activity."""
        entry = self._peers.get(peer)
        if entry is None or now >= entry.until:
            return False
        if entry.key is not None:
            entry.until = now + IDLE_SECONDS  # kept while the peer keeps sending
        return True

    async def fetch(self, peer: IPAddress, now: float) -> None:
        """Look up the newest SA with ``peer`` (never set one up); failures mean no key."""
        try:
            found = await self.lookup.for_peer(str(peer), initiate=False)
        except KeySourceError as exc:
            log.warning("STAMP: no IKE key for %s: %s", peer, exc)
            found = None
        if found is None:
            self._peers[peer] = _Entry(None, "", now + RETRY_SECONDS)
            return
        sa = found.sa
        previous = self._peers.get(peer)
        if previous is None or previous.label != sa.label:
            log.info("STAMP: HMAC key of %s from IKE SA %s (RFC 7717 §5.1, ours)", peer, sa.label)
        self._peers[peer] = _Entry(StampHmac(sa.key), sa.label, now + IDLE_SECONDS)
