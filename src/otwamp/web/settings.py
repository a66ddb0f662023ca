"""The dashboard's settings: where it listens, its thresholds, when a result is stale.

They come from a ``[web]`` TOML table (``otwamp web --config FILE``, or the
agent's own file) and from command-line flags, which take precedence. Loss
thresholds are written in percent and delay thresholds in milliseconds, as an
operator thinks of them; they are kept as fractions and seconds.
"""

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otwamp.archive.timespec import parse_duration
from otwamp.cli.addresses import parse_endpoint
from otwamp.errors import ConfigError
from otwamp.files import read_text_bounded

DEFAULT_PORT = 8862  # unprivileged; "862" for TWAMP
CONFIG_LIMIT = 1 << 20
KEYS = frozenset(
    {
        "listen",
        "archive",
        "loss_amber",
        "loss_red",
        "delay_amber",
        "delay_red",
        "stale_after",
        "window",
        "refresh",
        "pairs",
    }
)
PAIR_KEYS = frozenset({"source", "destination", "delay_amber", "delay_red"})


@dataclass(frozen=True, slots=True)
class DelayThresholds:
    """Seconds above which a delay is amber, or red; None: not judged."""

    amber: float | None = None
    red: float | None = None


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When a cell turns amber or red (defaults: loss above 0.1 % amber, above 1 % red)."""

    loss_amber: float = 0.001  # fractions of the packets whose fate is known
    loss_red: float = 0.01
    delay: DelayThresholds = DelayThresholds()
    pairs: Mapping[tuple[str, str], DelayThresholds] = field(default_factory=dict)

    def delay_for(self, source: str, destination: str) -> DelayThresholds:
        """The delay thresholds of a pair: its own if it has some, else the global ones."""
        return self.pairs.get((source, destination), self.delay)


@dataclass(frozen=True, slots=True)
class WebSettings:
    """What ``otwamp web`` (or the agent's ``[web]``) serves, and how it judges results."""

    listen: tuple[str, int] = ("127.0.0.1", DEFAULT_PORT)  # loopback unless asked otherwise
    thresholds: Thresholds = Thresholds()
    stale_after: int = 600  # seconds since a pair's last session ended
    window: int = 86_400  # seconds: the grid shows pairs measured this recently
    refresh: int = 10  # seconds between the grid's updates in the browser


DEFAULTS = WebSettings()


def load_web_config(path: Path) -> dict[str, Any]:
    """The [web] table of a TOML file (empty if it has none)."""
    text = read_text_bounded(path, CONFIG_LIMIT, "dashboard configuration file")
    try:
        table = tomllib.loads(text).get("web", {})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [web] must be a table")
    return table


def web_settings(
    table: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> WebSettings:
    """Settings from a [web] table, with the non-None ``overrides`` (flags) taking precedence.

    ``archive`` is the caller's business (the agent has its own); it is accepted
    here so that one table can hold it.
    """
    merged = dict(table) | {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(merged) - KEYS
    if unknown:
        raise ConfigError(f"unknown [web] keys: {', '.join(sorted(unknown))}")
    loss_amber = _number(merged, "loss_amber", 0.1) / 100
    loss_red = _number(merged, "loss_red", 1.0) / 100
    if loss_amber > loss_red:
        raise ConfigError("loss_amber must not be above loss_red")
    pairs = merged.get("pairs", [])
    if not isinstance(pairs, list):
        raise ConfigError("[[web.pairs]] must be an array of tables")
    thresholds = Thresholds(
        loss_amber, loss_red, _delays(merged, "web"), dict(_pair(pair) for pair in pairs)
    )
    listen = parse_endpoint(str(merged.get("listen", "127.0.0.1")), DEFAULT_PORT)
    durations = {
        key: _duration(merged, key, getattr(DEFAULTS, key))
        for key in ("stale_after", "window", "refresh")
    }
    return WebSettings(listen=listen, thresholds=thresholds, **durations)


def _number(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{key} must be a number >= 0, not {value!r}")
    return float(value)


def _delays(table: Mapping[str, Any], where: str) -> DelayThresholds:
    """delay_amber and delay_red, in milliseconds in the table, as seconds."""
    amber, red = (
        None if table.get(key) is None else _number(table, key, 0) / 1000
        for key in ("delay_amber", "delay_red")
    )
    if amber is not None and red is not None and amber > red:
        raise ConfigError(f"{where}: delay_amber must not be above delay_red")
    return DelayThresholds(amber, red)


def _pair(table: Any) -> tuple[tuple[str, str], DelayThresholds]:
    if not isinstance(table, dict) or not {"source", "destination"} <= set(table):
        raise ConfigError("each [[web.pairs]] needs a source and a destination")
    unknown = set(table) - PAIR_KEYS
    if unknown:
        raise ConfigError(f"unknown [[web.pairs]] keys: {', '.join(sorted(unknown))}")
    name = f"pair {table['source']} -> {table['destination']}"
    return (str(table["source"]), str(table["destination"])), _delays(table, name)


def _duration(table: Mapping[str, Any], key: str, default: int) -> int:
    """Seconds from a number or a duration such as "10m"."""
    value = table.get(key, default)
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key} must be a positive number of seconds or a duration like 10m")
    return value
