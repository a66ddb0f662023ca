"""``otwamp server`` settings from a TOML file and command-line flags."""

import tomllib
from pathlib import Path
from typing import Any

from otwamp.cli.addresses import parse_endpoint, parse_port_range
from otwamp.drivers.twamp_server import TWAMP_PORT, ServerSettings
from otwamp.errors import ConfigError

_KEYS = {"listen", "test_ports", "max_control_sessions", "control_timeout", "refwait"}


def load_server_config(path: Path) -> dict[str, Any]:
    """The [server] table of a TOML file, checked for unknown keys."""
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
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
    if "listen" in merged:
        listen = merged["listen"]
        items = [listen] if isinstance(listen, str) else list(listen)
        kwargs["listen"] = tuple(parse_endpoint(str(item), TWAMP_PORT) for item in items)
    if "test_ports" in merged:
        kwargs["test_ports"] = parse_port_range(str(merged["test_ports"]))
    for key in ("max_control_sessions", "control_timeout", "refwait"):
        if key in merged:
            kwargs[key] = _positive(key, merged[key])
    return ServerSettings(**kwargs)


def _positive(key: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigError(f"{key} must be a positive number, got {value!r}")
    return int(value) if key == "max_control_sessions" else float(value)
