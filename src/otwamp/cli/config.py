"""``otwamp server`` settings from a TOML file and command-line flags."""

import math
import tomllib
from pathlib import Path
from typing import Any

from otwamp.cli.addresses import parse_endpoint, parse_port_range
from otwamp.cli.modes import modes_word, parse_extensions, parse_modes
from otwamp.cli.strongswan import KEYS as STRONGSWAN_KEYS
from otwamp.cli.strongswan import server_keys as strongswan_keys
from otwamp.drivers.control_server import ServerSettings
from otwamp.drivers.ike_lookup import BrokerLookup
from otwamp.drivers.owamp_server import OWAMP_PORT
from otwamp.drivers.twamp_server import TWAMP_PORT
from otwamp.errors import ConfigError
from otwamp.files import read_text_bounded
from otwamp.keys.ikev2 import IkeServerKeys
from otwamp.keys.passphrase import PassphraseFile
from otwamp.keys.source import KeySource
from otwamp.wire.registry import TwampMode

_INTEGERS = (
    "max_control_sessions",
    "max_connections_per_source",
    "max_sessions_per_connection",
    "max_sessions_per_source",
    "max_packets",
    "max_packets_per_connection",
    "max_scheduled_packets",
)
_SECONDS = ("control_timeout", "refwait", "keep_sessions_for", "message_timeout", "write_timeout")
_KEYS = {
    "owamp_listen",
    "listen",
    "test_ports",
    "modes",
    "twamp_extensions",  # RFC 5938, 6038, 7750 modes offered (otwamp.cli.modes)
    "keyfile",
    "count",
    "ike_config",
    "ike_socket",
    "ike_check_peer",
    "keep_sessions_mib",
    "stamp_listen",  # the STAMP reflector's keys (otwamp.cli.stamp)
    "stamp_mode",
    "stamp_keyfile",
    "stamp_key_source",
    *STRONGSWAN_KEYS,
    *_INTEGERS,
    *_SECONDS,
}
SERVER_KEYS = frozenset(_KEYS)  # what a [server] table holds; the agent's [agent.server] too
MIB = 1 << 20
CONFIG_LIMIT = MIB  # a [server] table is a few hundred octets


def load_server_config(path: Path) -> dict[str, Any]:
    """The [server] table of a TOML file, checked for unknown keys."""
    text = read_text_bounded(path, CONFIG_LIMIT, "server configuration file")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    table = document.get("server", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [server] must be a table")
    unknown = set(table) - _KEYS
    if unknown:
        raise ConfigError(f"{path}: unknown [server] keys: {', '.join(sorted(unknown))}")
    return table


def server_settings(table: dict[str, Any], overrides: dict[str, Any]) -> ServerSettings:
    """Settings from a config table, with command-line values taking precedence."""
    merged = table | {key: value for key, value in overrides.items() if value not in (None, ())}
    kwargs: dict[str, Any] = {}
    for key, port in (("listen", TWAMP_PORT), ("owamp_listen", OWAMP_PORT)):
        if key in merged:
            kwargs[key] = _endpoints(merged[key], port)
    if "test_ports" in merged:
        kwargs["test_ports"] = parse_port_range(str(merged["test_ports"]))
    for key in (*_INTEGERS, *_SECONDS):
        if key in merged:
            kwargs[key] = _positive(key, merged[key])
    if "keep_sessions_mib" in merged:
        kwargs["keep_sessions_bytes"] = _mebibytes("keep_sessions_mib", merged["keep_sessions_mib"])
    modes = parse_modes(str(merged.get("modes", "open")))
    kwargs["modes"] = modes_word(modes)
    extensions = merged.get("twamp_extensions", "none")
    if isinstance(extensions, list):
        extensions = ",".join(str(item) for item in extensions)
    kwargs["twamp_extensions"] = parse_extensions(str(extensions))
    if "count" in merged:
        kwargs["count"] = _count(merged["count"])
    check_peer = merged.get("ike_check_peer", True)
    if not isinstance(check_peer, bool):
        raise ConfigError(f"ike_check_peer must be true or false, got {check_peer!r}")
    sources: list[KeySource] = []
    if "keyfile" in merged:
        sources.append(PassphraseFile.load_server_keys(Path(str(merged["keyfile"]))))
    if "ike_socket" in merged:
        sources.append(IkeServerKeys(BrokerLookup(Path(str(merged["ike_socket"]))), check_peer))
    if "ike_config" in merged:
        kwargs["ike_config"] = Path(str(merged["ike_config"]))
    strongswan = strongswan_keys(merged, check_peer)
    if strongswan is not None:
        if "ike_config" in merged or "ike_socket" in merged:
            raise ConfigError("strongswan_ha excludes ike_config and ike_socket: one IKE source")
        sources.append(strongswan)
    secured = any(mode is not TwampMode.UNAUTHENTICATED for mode in modes)
    if secured and not sources and "ike_config" not in kwargs:
        raise ConfigError(
            "authenticated, encrypted and mixed modes need keys: "
            "--keyfile, --ike-config, --ike-socket or --strongswan-ha"
        )
    return ServerSettings(key_sources=tuple(sources), ike_check_peer=check_peer, **kwargs)


def _endpoints(value: Any, port: int) -> tuple[tuple[str, int], ...]:
    """Listen addresses from a string or list; "off" serves nothing."""
    items = [value] if isinstance(value, str) else list(value)
    if [str(item) for item in items] == ["off"]:
        return ()
    return tuple(parse_endpoint(str(item), port) for item in items)


def _count(value: Any) -> int:
    """PBKDF2 Count for the greeting: a power of 2, at least 1024 (RFC 4656 §3.1)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1024 or value & (value - 1):
        raise ConfigError(
            f"count must be a power of 2 of at least 1024 (RFC 4656 §3.1), got {value!r}"
        )
    return value


def _mebibytes(key: str, value: Any) -> int:
    """Octets from a positive, finite number of MiB."""
    mib: float = _positive(key, value)
    if not math.isfinite(mib):
        raise ConfigError(f"{key} must be a finite number of MiB, got {value!r}")
    return max(1, round(mib * MIB))


def _positive(key: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{key} must be a positive number, got {value!r}")
    if key in _INTEGERS and value != int(value):
        raise ConfigError(f"{key} must be a whole number, got {value!r}")
    return int(value) if key in _INTEGERS else float(value)
