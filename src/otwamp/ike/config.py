"""The IKE daemon's TOML configuration (issue 5: ``otwamp ike --config FILE``)."""

import ipaddress
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from otwamp.errors import ConfigError, ProtocolError
from otwamp.ike.crypto.signature import PrivateKey
from otwamp.ike.framing import IKE_PORT
from otwamp.ike.policy import Policy
from otwamp.ike.proposal import Suite
from otwamp.ike.registry import IdType
from otwamp.ike.sa import Address
from otwamp.ike.trust import Credentials, TrustStore
from otwamp.ike.wire.identity import Identity

DEFAULT_PROPOSALS = ("aes128-sha256-x25519", "aes256-sha384-ecp384", "aes128gcm16-prfsha256-ecp256")


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
    cookie_threshold: int
    max_half_open: int


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
    """Read and check a configuration file; problems raise ConfigError naming the key."""
    try:
        return _build(tomllib.loads(path.read_text()), path.parent)
    except (OSError, ValueError) as error:  # unreadable files, TOML, PEM, or key errors
        raise ConfigError(f"{path}: {error}") from None


def _build(document: dict[str, Any], base: Path) -> DaemonConfig:
    local = _table(document, "local")
    peers_raw = document.get("peers", [])
    if not isinstance(peers_raw, list):
        raise ConfigError("peers must be an array of tables ([[peers]])")
    peers: list[PeerConfig] = []
    psks: dict[Identity, bytes] = {}
    for raw in peers_raw:
        table = _as_table(raw, "peers")
        peer = _peer(table)
        peers.append(peer)
        psk = _psk(table, base)
        if psk is not None:
            psks[peer.identity] = psk
    policy = Policy(
        parse_identity(_string(local, "id")),
        tuple(_suite(p) for p in local.get("proposals", DEFAULT_PROPOSALS)),
        psks,
        _credentials(local, base),
        _trust(local, base),
    )
    broker = local.get("broker")
    return DaemonConfig(
        policy,
        (_string(local, "address", "0.0.0.0"), _integer(local, "port", IKE_PORT)),
        tuple(peers),
        None if broker is None else base / str(broker),
        _integer(local, "cookie_threshold", 64),
        _integer(local, "max_half_open", 1024),
    )


def _peer(raw: dict[str, Any]) -> PeerConfig:
    address = raw.get("address")
    port = _integer(raw, "port", IKE_PORT)
    if address is not None:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ConfigError(f"peers.address: {address!r} is not an IP address") from None
    initiate = bool(raw.get("initiate", False))
    if initiate and address is None:
        raise ConfigError("peers.initiate needs peers.address")
    return PeerConfig(
        parse_identity(_string(raw, "id")),
        None if address is None else (str(address), port),
        initiate,
    )


def _psk(raw: dict[str, Any], base: Path) -> bytes | None:
    if "psk_file" in raw:
        return (base / _string(raw, "psk_file")).read_bytes().strip()
    psk = raw.get("psk")
    return None if psk is None else str(psk).encode()


def _credentials(local: dict[str, Any], base: Path) -> Credentials | None:
    if "certificate" not in local:
        return None
    certificate = x509.load_pem_x509_certificate(
        (base / _string(local, "certificate")).read_bytes()
    )
    key = load_pem_private_key((base / _string(local, "key")).read_bytes(), None)
    if not isinstance(key, PrivateKey):
        raise ConfigError("local.key: only RSA and ECDSA keys are supported")
    chain = tuple(
        x509.load_pem_x509_certificate((base / c).read_bytes()) for c in local.get("chain", [])
    )
    return Credentials(certificate, key, chain)


def _trust(local: dict[str, Any], base: Path) -> TrustStore | None:
    anchors = [x509.load_pem_x509_certificate((base / c).read_bytes()) for c in local.get("ca", [])]
    return TrustStore(tuple(anchors)) if anchors else None


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
        raise ConfigError(f"{key} must be a table")
    return value


def _string(table: dict[str, Any], key: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string")
    return value


def _integer(table: dict[str, Any], key: str, default: int) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{key} must be an integer")
    return value
