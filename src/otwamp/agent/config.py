"""``otwamp agent``'s TOML configuration: ``[agent]``, ``[agent.server]`` and ``[[test]]``.

docs/AGENT.md is the reference. Every problem is one ConfigError naming the
file, the line and the key. ``[agent.server]`` is exactly ``otwamp server``'s
``[server]`` table, checked and built by the same code (cli/config.py);
relative paths in any table are relative to the configuration file.
"""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otwamp.agent.mesh import Member, Mesh, load_mesh
from otwamp.agent.tomlfile import Table, TomlFile
from otwamp.archive import DEFAULT_ARCHIVE
from otwamp.archive.store import Retention
from otwamp.archive.timespec import parse_duration
from otwamp.cli.addresses import format_endpoint, parse_endpoint
from otwamp.cli.config import SERVER_KEYS, server_settings
from otwamp.cli.dscp import parse_dscp
from otwamp.cli.measure import MAX_PADDING, Protocol, acceptable_modes
from otwamp.cli.owping import OWAMP
from otwamp.cli.ping import TWAMP
from otwamp.cli.stamp import stamp_reflector_settings
from otwamp.drivers.control_server import ServerSettings
from otwamp.drivers.stamp_reflector import StampReflectorSettings
from otwamp.errors import ConfigError, KeySourceError
from otwamp.keys.ikev2 import Policy
from otwamp.keys.passphrase import IdentityKeys, PassphraseFile
from otwamp.session.schedule import Schedule
from otwamp.web.settings import WebSettings, web_settings
from otwamp.wire.registry import TwampMode

PROTOCOLS: dict[str, Protocol] = {"twamp": TWAMP, "owamp": OWAMP}
KEY_SOURCES = ("none", "passphrase", "ike")
DEFAULT_METRICS = ("127.0.0.1", 9477)  # loopback: expose it wider on purpose, not by default
DEFAULT_MAX_SESSIONS = 16
MIN_CONTINUOUS = 2.0  # seconds of sending a continuous session needs at least (scheduler LEAD)
AGENT_KEYS = {
    "name",
    "address",
    "mesh",
    "archive",
    "keep_records",
    "sessions_days",
    "records_days",
    "max_sessions",
    "metrics",
    "server",
}
TEST_KEYS = {
    "name",
    "protocol",
    "targets",
    "sources",
    "modes",
    "key_source",
    "identity",
    "keyfile",
    "ike_policy",
    "packets",
    "interval",
    "schedule",
    "padding",
    "dscp",
    "wait",
    "every",
    "continuous",
    "directions",
}
_PATHS = ("keyfile", "ike_config", "ike_socket", "stamp_keyfile")  # [agent.server] file keys


@dataclass(frozen=True)
class TestSpec:
    """One ``[[test]]``: what to measure, to whom, how often. Targets are resolved by the plan."""

    name: str
    protocol: str  # "twamp" or "owamp"
    targets: tuple[str, ...]  # "mesh", "group:NAME", member names, ADDR[:PORT]
    sources: tuple[str, ...] | None  # the members that run it (None: every agent)
    modes: tuple[TwampMode, ...]
    key_source: str  # "none", "passphrase" or "ike"
    passphrase: IdentityKeys | None  # the -u/-k key (the IKE fallback with ike_policy fallback)
    ike_policy: Policy
    packets: int
    interval: float
    schedule: Schedule
    padding: int | None
    dscp: int
    wait: float
    every: float | None  # seconds; None: continuous
    directions: tuple[str, ...]  # OWAMP: "to", "from"
    line: int  # where its [[test]] starts

    @property
    def continuous(self) -> bool:
        """Back-to-back sessions rather than one per period."""
        return self.every is None

    @property
    def sending(self) -> float:
        """Seconds a session spends sending (the mean, for Poisson schedules)."""
        return self.packets * self.interval


@dataclass(frozen=True)
class AgentConfig:
    """A checked configuration file."""

    path: Path
    name: str | None
    address: str | None  # the agent's source address for its sessions
    mesh: Mesh | None
    me: Member | None  # this host in the mesh
    archive: str
    keep_records: bool
    retention: Retention
    max_sessions: int
    metrics: tuple[str, int] | None
    server: ServerSettings
    stamp: StampReflectorSettings
    tests: tuple[TestSpec, ...]
    web: WebSettings | None = None  # [web]: the dashboard over this agent's archive


def load_agent_config(path: Path) -> AgentConfig:
    """Read and check an agent configuration (and its mesh file)."""
    file = TomlFile.read(path, "agent configuration file")
    root = file.root()
    root.check_keys({"agent", "test", "web"})
    agent = root.table("agent")
    agent.check_keys(AGENT_KEYS)
    base = path.absolute().parent
    name = agent.string("name", None)
    address = agent.string("address", None)
    mesh = me = None
    if "mesh" in agent:
        mesh = agent.convert("mesh", lambda value: load_mesh(base / str(value)))
        try:
            me = mesh.find_self(name, address)
        except ConfigError as exc:
            raise agent.error(
                "name" if name else "address" if address else None, str(exc)
            ) from None
    server_table = agent.table("server")
    server, stamp = _server(server_table, base, me)
    days = {key: agent.positive(key, None) for key in ("sessions_days", "records_days")}
    tests = tuple(_test(table, base, mesh, server_table) for table in root.tables("test"))
    names = [test.name for test in tests]
    for table, test in zip(root.tables("test"), tests, strict=True):
        if names.count(test.name) > 1:
            raise table.error("name", f"{test.name!r} names two tests")
    return AgentConfig(
        path=path,
        name=name,
        address=address or (me.address if me else None),
        mesh=mesh,
        me=me,
        archive=agent.convert("archive", lambda value: _archive(value, base), DEFAULT_ARCHIVE),
        keep_records=agent.boolean("keep_records", False),
        retention=Retention(days["sessions_days"], days["records_days"]),
        max_sessions=agent.integer("max_sessions", DEFAULT_MAX_SESSIONS),
        metrics=agent.convert("metrics", _metrics, DEFAULT_METRICS),
        server=server,
        stamp=stamp,
        tests=tests,
        web=_web(root.table("web")) if "web" in root else None,
    )


def _web(table: Table) -> WebSettings:
    """The dashboard's settings from [web] (docs/WEB.md); ``archive`` is the agent's own."""
    try:
        return web_settings(table.data)
    except ConfigError as exc:
        raise table.error(None, str(exc)) from None


def _archive(value: Any, base: Path) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError("must be a path or a postgresql:// URL")
    if "://" in value:
        return value
    return str(base / value)


def _metrics(value: Any) -> tuple[str, int] | None:
    if value == "off":
        return None
    if not isinstance(value, str):
        raise ConfigError('must be "ADDR:PORT" or "off"')
    return parse_endpoint(value, DEFAULT_METRICS[1])


def _server(
    table: Table, base: Path, me: Member | None
) -> tuple[ServerSettings, StampReflectorSettings]:
    """``otwamp server``'s settings from [agent.server]; the mesh gives the default addresses."""
    table.check_keys(SERVER_KEYS)
    values = dict(table.data)
    for key in _PATHS:
        if key in values:
            values[key] = str(base / str(values[key]))
    if me is not None:
        values.setdefault("listen", [format_endpoint(me.address, me.twamp_port)])
        values.setdefault("owamp_listen", [format_endpoint(me.address, me.owamp_port)])
    try:
        return server_settings(values, {}), stamp_reflector_settings(values)
    except ConfigError as exc:
        named = [key for key in sorted(table.data, key=len, reverse=True) if key in str(exc)]
        raise table.error(named[0] if named else None, str(exc)) from None


def _test(table: Table, base: Path, mesh: Mesh | None, server: Table) -> TestSpec:
    table.check_keys(TEST_KEYS)
    name = table.string("name")
    protocol_name = table.string("protocol")
    if protocol_name not in PROTOCOLS:
        raise table.error("protocol", f"must be twamp or owamp, not {protocol_name!r}")
    protocol = PROTOCOLS[protocol_name]
    targets = table.strings("targets")
    if not targets:
        raise table.error("targets", "names no target")
    sources = table.strings("sources") if "sources" in table else None
    for key, entries in (("targets", targets), ("sources", sources or ())):
        for entry in entries:
            _check_member_reference(table, key, entry, mesh)
    passphrase = _passphrase(table, base)
    key_source = table.string("key_source", "passphrase" if passphrase else "none")
    if key_source not in KEY_SOURCES:
        raise table.error("key_source", f"must be one of {', '.join(KEY_SOURCES)}")
    if key_source == "passphrase" and passphrase is None:
        raise table.error("key_source", "passphrase needs identity and keyfile")
    if key_source == "ike" and "ike_config" not in server and "ike_socket" not in server:
        raise table.error(
            "key_source", "ike needs [agent.server] ike_config (embedded) or ike_socket (broker)"
        )
    modes = table.convert(
        "modes",
        lambda value: acceptable_modes(str(value), True, protocol),
        acceptable_modes(None, key_source != "none", protocol),
    )
    if protocol_name == "owamp" and TwampMode.MIXED in modes:
        raise table.error("modes", "OWAMP has no mixed mode (RFC 5618 is TWAMP only)")
    if modes != (TwampMode.UNAUTHENTICATED,) and key_source == "none":
        raise table.error("modes", "secured modes need key_source passphrase or ike")
    interval = table.value("interval", (int, float), "a number of seconds", 0.1)
    if not math.isfinite(interval) or interval < 0:
        raise table.error("interval", f"must be a number of seconds, not {interval!r}")
    every = table.convert("every", _every, None)
    continuous = table.boolean("continuous", False)
    if (every is None) == (not continuous):
        raise table.error(None, 'give either every = "60s" or continuous = true')
    packets = table.integer("packets", 100, most=10_000_000)
    if continuous and packets * interval < MIN_CONTINUOUS:
        raise table.error(
            "continuous", f"needs at least {MIN_CONTINUOUS:g} s of sending (packets times interval)"
        )
    directions = table.strings("directions", ("to", "from"))
    if protocol_name == "twamp" and "directions" in table:
        raise table.error("directions", "OWAMP only (TWAMP measures both ways in one session)")
    if not directions or not set(directions) <= {"to", "from"}:
        raise table.error("directions", 'must name "to", "from" or both')
    return TestSpec(
        name=name,
        protocol=protocol_name,
        targets=targets,
        sources=sources,
        modes=modes,
        key_source=key_source,
        passphrase=passphrase,
        ike_policy=table.convert("ike_policy", _policy, Policy.INITIATE),
        packets=packets,
        interval=float(interval),
        schedule=table.convert("schedule", _schedule, Schedule.FIXED),
        padding=table.integer("padding", None, least=0, most=MAX_PADDING),
        dscp=table.convert("dscp", lambda value: parse_dscp(str(value)), 0),
        wait=float(table.positive("wait", 2.0) or 2.0),
        every=every,
        directions=tuple(dict.fromkeys(directions)),
        line=table.file.line(table.path),
    )


def _check_member_reference(table: Table, key: str, entry: str, mesh: Mesh | None) -> None:
    """ "mesh", "group:NAME" and member names need a mesh that has them."""
    if entry == "mesh" or entry.startswith("group:"):
        if mesh is None:
            raise table.error(key, f"{entry!r} needs a mesh file ([agent] mesh)")
        group = entry.removeprefix("group:")
        if entry != "mesh" and group not in mesh.groups():
            raise table.error(key, f"no member of {mesh.path} is in group {group!r}")
    elif key == "sources" and (mesh is None or mesh.member(entry) is None):
        raise table.error(key, f"{entry!r} is no member of the mesh")


def _passphrase(table: Table, base: Path) -> IdentityKeys | None:
    identity = table.string("identity", None)
    keyfile = table.string("keyfile", None)
    if (identity is None) != (keyfile is None):
        raise table.error(
            "identity" if identity is None else "keyfile", "identity and keyfile go together"
        )
    if identity is None or keyfile is None:
        return None
    keys = table.convert("keyfile", lambda value: PassphraseFile.load(base / str(value)))
    try:
        keys.identity_credentials(identity)
    except KeySourceError as exc:
        raise table.error("identity", str(exc)) from None
    return IdentityKeys(keys, identity)


def _every(value: Any) -> float:
    if isinstance(value, str):
        seconds = parse_duration(value)
        if not seconds:
            raise ConfigError(f"{value!r} is no time at all")
        return float(seconds)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f'must be a duration ("60s", "5m") or seconds, not {value!r}')
    if not math.isfinite(value):
        raise ConfigError(f"must be finite, not {value!r}")
    return float(value)


def _policy(value: Any) -> Policy:
    try:
        return Policy(str(value))
    except ValueError:
        raise ConfigError(f"must be one of {', '.join(p.value for p in Policy)}") from None


def _schedule(value: Any) -> Schedule:
    try:
        return Schedule(str(value))
    except ValueError:
        raise ConfigError(f"must be one of {', '.join(s.value for s in Schedule)}") from None
