"""HMAC keys of authenticated STAMP by Session Identifier and peer (RFC 8762 §4.4).

RFC 8762 leaves key management out of scope. We keep the keys in the
pass-phrase file format (perfSONAR's pfs, ``identity<TAB>hex(secret)``, the
file ``otwamp keys`` manages), the identity naming what the key is for:

* ``SSID@ADDR``: the session of that SSID (RFC 8972 §3) from that peer;
* ``SSID``: that SSID from any peer;
* ``ADDR``: any session of that peer.

The most specific entry wins. The pass-phrase's octets are the HMAC-SHA-256
key as they are (RFC 2104 takes a key of any length); as in every pfs file
it holds no newline, so a random one of 64 hex characters (256 bits) suits.
"""

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from otwamp.errors import ConfigError
from otwamp.keys.passphrase import PassphraseFile
from otwamp.stamp.packets import StampHmac
from otwamp.stamp.tlv import IPAddress

Selector = tuple[IPAddress | None, int | None]


def parse_selector(identity: str) -> Selector:
    """The peer and SSID an identity names; ConfigError when it names neither."""
    ssid_text, at, address_text = identity.partition("@")
    if not at:
        ssid_text, address_text = (identity, "") if identity.isdigit() else ("", identity)
    ssid = None
    if ssid_text:
        if not ssid_text.isdigit() or not 1 <= int(ssid_text) <= 0xFFFF:
            raise ConfigError(f"{identity!r}: an SSID is a number from 1 to 65535 (RFC 8972 §3)")
        ssid = int(ssid_text)
    address = None
    if address_text:
        try:
            address = ipaddress.ip_address(address_text.strip("[]"))
        except ValueError:
            raise ConfigError(
                f"{identity!r}: a STAMP key identity is SSID@ADDR, SSID or ADDR"
            ) from None
    if address is None and ssid is None:
        raise ConfigError(f"{identity!r}: a STAMP key identity is SSID@ADDR, SSID or ADDR")
    return address, ssid


@dataclass(slots=True)
class StampKeys:
    """The reflector's keys, looked up by peer address and SSID."""

    path: Path
    _keys: dict[Selector, StampHmac] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: Path) -> "StampKeys":
        """Read a key file (a ConfigError names a bad line or identity)."""
        entries = PassphraseFile.load_server_keys(path).entries
        keys = cls(path)
        for identity, secret in entries.items():
            try:
                keys._keys[parse_selector(identity)] = StampHmac(secret)
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from None
        return keys

    def __call__(self, peer: IPAddress, ssid: int) -> StampHmac | None:
        """The key for ``peer``'s session ``ssid``: SSID@ADDR, then SSID, then ADDR."""
        keys = self._keys
        if not keys:
            return None
        return keys.get((peer, ssid)) or keys.get((None, ssid)) or keys.get((peer, None))


def sender_key(path: Path, identity: str) -> tuple[StampHmac, int | None]:
    """The Session-Sender's key ``identity`` (``-u``) from ``path`` (``-k``), and its SSID."""
    _address, ssid = parse_selector(identity)
    secret = PassphraseFile.load(path).identity_credentials(identity).secret
    return StampHmac(secret), ssid
