"""The IKE daemon's TOML configuration (issue 5: ``otwamp ike --config FILE``).

Relative paths are relative to the file's directory. Every problem raises ConfigError as one
line naming the file, the key and what is wrong; PSKs and private keys never appear in it.

Example (the full reference is docs/IKE.md)::

    [local]
    address = "127.0.0.1"          # default 0.0.0.0
    port = 15500                   # default 500; other ports use the Non-ESP marker (D8)
    id = "fqdn:resp.ippm.test"     # fqdn:, email:, ip:, keyid:HEX, dn:RFC4514, or bare
    certificate = "resp.pem"       # optional: sign AUTH (RFC 7427) with this and ...
    key = "resp.key"               # ... this PKCS#8/SEC1/PKCS#1 PEM key (RSA or ECDSA)
    chain = ["sub-ca.pem"]         # optional intermediates sent along
    ca = ["ca.pem"]                # trust anchors for peers' certificates
    proposals = ["aes128-sha256-x25519"]   # strongSwan notation, preferred first
    broker = "/run/otwamp/ike.sock"        # the key broker's UNIX socket (0600); when unset,
                                           # otwamp ike uses this default and an embedded
                                           # daemon (otwamp server --ike-config) opens none
    rekey_time = 14400             # seconds: rekey the IKE SA after this (minus jitter)
    lifetime = 15840               # seconds: delete it then if rekeying failed
    cookie_threshold = 64          # half-open SAs before we demand COOKIEs (RFC 7296 §2.6)
    max_half_open = 1024           # half-open SAs we keep at most
    cookie_threshold_per_source = 4   # the same, from one IPv4 address or IPv6 /64 ...
    max_half_open_per_source = 16     # ... (docs/IKE.md: "Half-open SAs under a flood")

    [[peers]]
    id = "fqdn:init.ippm.test"
    address = "127.0.0.2"          # needed to initiate; also the broker's "peer" lookups
    port = 15600                   # default 500
    psk = "a shared secret"        # or psk_file = "init.psk"; none: certificates
    initiate = true                # set up an IKE SA when the daemon starts
"""

import ipaddress
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)

from otwamp.errors import ConfigError, ProtocolError
from otwamp.files import MissingFileError, read_bounded, read_text_bounded
from otwamp.ike.admission import HalfOpenLimits
from otwamp.ike.crypto.signature import PrivateKey
from otwamp.ike.framing import IKE_PORT
from otwamp.ike.policy import Policy
from otwamp.ike.proposal import Suite
from otwamp.ike.registry import IdType
from otwamp.ike.sa import Address
from otwamp.ike.timers import DEFAULT_REKEY_TIME, LIFETIME_MARGIN, Lifetimes
from otwamp.ike.trust import Credentials, TrustStore
from otwamp.ike.wire.identity import Identity

DEFAULT_PROPOSALS = ("aes128-sha256-x25519", "aes256-sha384-ecp384", "aes128gcm16-prfsha256-ecp256")
DEFAULT_BROKER = Path("/run/otwamp/ike.sock")
_LOCAL_KEYS = {
    "address",
    "port",
    "id",
    "certificate",
    "key",
    "chain",
    "ca",
    "proposals",
    "broker",
    "rekey_time",
    "lifetime",
    "cookie_threshold",
    "max_half_open",
    "cookie_threshold_per_source",
    "max_half_open_per_source",
}
_PEER_KEYS = {"id", "address", "port", "psk", "psk_file", "initiate"}

CONFIG_LIMIT = 1 << 20  # octets of a configuration or PEM file: far beyond real ones


@dataclass(frozen=True)
class PeerConfig:
    """A peer we know: its identity, where it listens, and whether we initiate on start."""

    identity: Identity
    address: Address | None
    initiate: bool


@dataclass(frozen=True)
class DaemonConfig:
    """Everything the daemon needs; PSKs and keys live in ``policy`` (never printed)."""

    policy: Policy
    local: Address
    peers: tuple[PeerConfig, ...]
    broker: Path | None
    half_open: HalfOpenLimits = field(default_factory=HalfOpenLimits)
    lifetimes: Lifetimes = field(default_factory=Lifetimes)


def parse_identity(text: str) -> Identity:
    """``fqdn:``, ``email:``, ``ip:``, ``keyid:HEX``, ``dn:RFC4514``; bare IPs and names too."""
    kind, _, value = text.partition(":")
    try:
        if kind == "fqdn":
            return Identity.fqdn(value)
        if kind in ("email", "rfc822"):
            return Identity.rfc822(value)
        if kind == "ip":
            return Identity.address(value)
        if kind == "keyid":
            return Identity(IdType.KEY_ID, bytes.fromhex(value))
        if kind == "dn":
            name = x509.Name.from_rfc4514_string(value)
            return Identity(IdType.DER_ASN1_DN, name.public_bytes())
        return _bare_identity(text)
    except (ValueError, ProtocolError) as error:
        raise ConfigError(f"bad identity {text!r}: {error}") from None


def _bare_identity(text: str) -> Identity:
    try:
        return Identity.address(text)
    except ValueError:
        return Identity.rfc822(text) if "@" in text else Identity.fqdn(text)


def load(path: Path) -> DaemonConfig:
    """Read and check a configuration file; problems raise ConfigError naming file and key."""
    try:
        text = read_text_bounded(path, CONFIG_LIMIT, "IKE configuration file")
    except MissingFileError:
        raise ConfigError(f"{path}: cannot read: No such file or directory") from None
    try:
        return _build(tomllib.loads(text), path.absolute().parent)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _build(document: dict[str, Any], base: Path) -> DaemonConfig:
    unknown = set(document) - {"local", "peers"}
    if unknown:
        raise ConfigError(f"unknown table {sorted(unknown)[0]!r} (only [local] and [[peers]])")
    local = _table(document, "local")
    _no_unknown_keys(local, "local", _LOCAL_KEYS)
    peers_raw = document.get("peers", [])
    if not isinstance(peers_raw, list):
        raise ConfigError("peers: must be an array of tables ([[peers]])")
    peers: list[PeerConfig] = []
    psks: dict[Identity, bytes] = {}
    for raw in peers_raw:
        table = _as_table(raw, "peers")
        _no_unknown_keys(table, "peers", _PEER_KEYS)
        peer = _peer(table)
        peers.append(peer)
        psk = _psk(table, base)
        if psk is not None:
            psks[peer.identity] = psk
    credentials = _credentials(local, base)
    for peer in peers:
        if credentials is None and peer.identity not in psks:
            raise ConfigError(f"peers.psk: peer {peer.identity} has no PSK and local has no key")
    proposals = local.get("proposals", list(DEFAULT_PROPOSALS))
    if not isinstance(proposals, list) or not proposals:
        raise ConfigError("local.proposals: must be a non-empty array of strings")
    policy = Policy(
        _identity(local, "local"),
        tuple(_suite(p) for p in proposals),
        psks,
        credentials,
        _trust(local, base),
    )
    broker = local.get("broker")
    if broker is not None:
        broker = _string(local, "local", "broker")
    return DaemonConfig(
        policy,
        (_address(local, "local", "0.0.0.0"), _port(local, "local")),
        tuple(peers),
        None if broker is None else base / broker,
        _half_open(local),
        _lifetimes(local),
    )


def _half_open(local: dict[str, Any]) -> HalfOpenLimits:
    defaults = HalfOpenLimits()
    counts = {
        key: _integer(local, "local", key, getattr(defaults, key))
        for key in (
            "cookie_threshold",
            "max_half_open",
            "cookie_threshold_per_source",
            "max_half_open_per_source",
        )
    }
    try:
        return HalfOpenLimits(**counts)
    except ValueError as error:
        raise ConfigError(f"local: {error}") from None


def _lifetimes(local: dict[str, Any]) -> Lifetimes:
    rekey_time = _seconds(local, "rekey_time", DEFAULT_REKEY_TIME)
    lifetime = _seconds(local, "lifetime", rekey_time * LIFETIME_MARGIN)
    if lifetime < rekey_time:
        raise ConfigError(f"local.lifetime: {lifetime:g} is less than rekey_time {rekey_time:g}")
    return Lifetimes(rekey_time, lifetime, rekey_time * 0.1)


def _seconds(table: dict[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"local.{key}: must be a positive number of seconds, not {value!r}")
    return float(value)


def _peer(raw: dict[str, Any]) -> PeerConfig:
    address = raw.get("address")
    port = _port(raw, "peers")
    if address is not None:
        address = _address(raw, "peers", None)
    initiate = raw.get("initiate", False)
    if not isinstance(initiate, bool):
        raise ConfigError("peers.initiate: must be true or false")
    if initiate and address is None:
        raise ConfigError("peers.initiate: needs peers.address")
    return PeerConfig(
        _identity(raw, "peers"), None if address is None else (address, port), initiate
    )


def _identity(table: dict[str, Any], name: str) -> Identity:
    try:
        return parse_identity(_string(table, name, "id"))
    except ConfigError as error:
        raise ConfigError(f"{name}.id: {error}") from None


def _address(table: dict[str, Any], name: str, default: str | None) -> str:
    text = _string(table, name, "address", default)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ConfigError(f"{name}.address: {text!r} is not an IP address") from None
    return text


def _port(table: dict[str, Any], name: str) -> int:
    port = _integer(table, name, "port", IKE_PORT)
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name}.port: {port} is not a UDP port")
    return port


def _psk(raw: dict[str, Any], base: Path) -> bytes | None:
    if "psk_file" in raw:
        psk = _read(base, "peers", "psk_file", _string(raw, "peers", "psk_file")).strip()
    elif "psk" in raw:
        psk = _string(raw, "peers", "psk").encode()
    else:
        return None
    if not psk:
        raise ConfigError("peers.psk: empty")
    return psk


def _credentials(local: dict[str, Any], base: Path) -> Credentials | None:
    if "certificate" not in local:
        if "key" in local:
            raise ConfigError("local.key: needs local.certificate")
        return None
    certificate = _certificate(base, "certificate", _string(local, "local", "certificate"))
    key_path = _string(local, "local", "key")
    try:
        key = load_pem_private_key(_read(base, "local", "key", key_path), None)
    except (ValueError, TypeError):
        raise ConfigError(f"local.key: {key_path} is not an unencrypted PEM private key") from None
    if not isinstance(key, PrivateKey):
        raise ConfigError("local.key: only RSA and ECDSA keys are supported")
    if _spki(key.public_key()) != _spki(certificate.public_key()):
        raise ConfigError(f"local.key: {key_path} does not belong to local.certificate")
    chain = tuple(_certificate(base, "chain", c) for c in _strings(local, "chain"))
    return Credentials(certificate, key, chain)


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _trust(local: dict[str, Any], base: Path) -> TrustStore | None:
    anchors = [_certificate(base, "ca", c) for c in _strings(local, "ca")]
    return TrustStore(tuple(anchors)) if anchors else None


def _certificate(base: Path, key: str, name: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_read(base, "local", key, name))
    except ValueError:
        raise ConfigError(f"local.{key}: {name} is not a PEM certificate") from None


def _read(base: Path, table: str, key: str, name: str) -> bytes:
    try:
        return read_bounded(base / name, CONFIG_LIMIT, "file")
    except MissingFileError:
        raise ConfigError(f"{table}.{key}: cannot read {name}: No such file") from None
    except ConfigError as error:
        raise ConfigError(f"{table}.{key}: cannot read {name}: {error}") from None


def _suite(text: object) -> Suite:
    try:
        return Suite.parse(str(text))
    except ValueError as error:
        raise ConfigError(f"local.proposals: {error}") from None


def _table(document: dict[str, Any], key: str) -> dict[str, Any]:
    if key not in document:
        raise ConfigError(f"missing [{key}] table")
    return _as_table(document[key], key)


def _as_table(value: object, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: must be a table")
    return value


def _no_unknown_keys(table: dict[str, Any], name: str, known: set[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{name}.{unknown[0]}: unknown key")


def _string(table: dict[str, Any], name: str, key: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if value is None:
        raise ConfigError(f"{name}.{key}: missing")
    if not isinstance(value, str):
        raise ConfigError(f"{name}.{key}: must be a string")
    return value


def _strings(table: dict[str, Any], key: str) -> list[str]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"local.{key}: must be an array of file names")
    return value


def _integer(table: dict[str, Any], name: str, key: str, default: int) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{name}.{key}: must be an integer")
    return value
