"""What ``otwamp ping`` and ``otwamp owping`` share: options, settings, one-line reasons."""

import errno
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from otwamp.cli.addresses import parse_endpoint
from otwamp.cli.dscp import parse_dscp
from otwamp.cli.modes import parse_modes
from otwamp.control.security import DEFAULT_MAX_COUNT
from otwamp.drivers.control_client import PingSettings
from otwamp.drivers.ike_lookup import BrokerLookup, EmbeddedLookup
from otwamp.errors import ConfigError
from otwamp.ike.config import DEFAULT_BROKER
from otwamp.ike.config import load as load_ike_config
from otwamp.ike.service import IkeService
from otwamp.keys.ikev2 import IkeClientKeys, Policy, SaLookup
from otwamp.keys.passphrase import IdentityKeys, PassphraseFile
from otwamp.keys.source import ClientKeySource
from otwamp.session.schedule import Schedule
from otwamp.wire.twamp_test import MAX_UDP_PAYLOAD, SENDER_OPEN_SIZE

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
MAX_PADDING = MAX_UDP_PAYLOAD - SENDER_OPEN_SIZE  # the largest padding that fits a datagram
_OPTIONS = [
    click.option(
        "-c",
        "--count",
        type=click.IntRange(min=1, max=10_000_000),
        default=100,
        show_default=True,
        help="Test packets to send.",
    ),
    click.option(
        "-i",
        "--interval",
        type=click.FloatRange(min=0),
        default=0.1,
        show_default=True,
        help="Seconds between packets (mean, for poisson).",
    ),
    click.option(
        "--schedule", type=click.Choice(["fixed", "poisson"]), default="fixed", show_default=True
    ),
    click.option(
        "--padding",
        type=click.IntRange(min=0, max=MAX_PADDING),
        help="Octets of Packet Padding (TWAMP default: equal sizes both ways; OWAMP: 0).",
    ),
    click.option(
        "--dscp",
        default="0",
        show_default=True,
        help="DSCP of test packets: a name (EF, AF41, CS5...) or 0-63.",
    ),
    click.option("-4", "ipv4", is_flag=True, help="Use IPv4 only."),
    click.option("-6", "ipv6", is_flag=True, help="Use IPv6 only."),
    click.option(
        "--wait",
        type=click.FloatRange(min=0),
        default=2.0,
        show_default=True,
        help="Timeout: seconds to wait for late packets after the last one (RFC 4656 §3.5).",
    ),
    click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print one JSON object (with --raw: one JSON record per packet).",
    ),
    click.option("--raw", is_flag=True, help="Print one line per packet."),
    click.option("-a", "--percentiles", is_flag=True, help="Add percentiles to the report."),
    click.option(
        "-A",
        "--auth-modes",
        "modes",
        default="open",
        show_default=True,
        help="Acceptable modes, strongest used: open, authenticated, encrypted, mixed (TWAMP).",
    ),
    click.option("-u", "--identity", help="Identity (KeyID) in the pass-phrase file."),
    click.option(
        "-k",
        "--keyfile",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Pass-phrase file (identity<TAB>hex).",
    ),
    click.option(
        "--max-count",
        type=click.IntRange(min=1024),
        default=DEFAULT_MAX_COUNT,
        show_default=True,
        help="Highest PBKDF2 Count to accept from a server.",
    ),
    click.argument("target", metavar="HOST[:PORT]"),
]


def measurement_options(command: F) -> F:
    """Apply the options every measurement command takes."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return ike_options(command)


def settings_from(target: str, port: int, options: dict[str, Any], **extra: Any) -> PingSettings:
    """PingSettings from the shared options; ``port`` is the protocol's default."""
    if options["ipv4"] and options["ipv6"]:
        raise ConfigError("-4 and -6 exclude each other")
    host, port = parse_endpoint(target, port)
    family = (
        socket.AF_INET
        if options["ipv4"]
        else socket.AF_INET6
        if options["ipv6"]
        else socket.AF_UNSPEC
    )
    return PingSettings(
        host=host,
        port=port,
        family=family,
        count=options["count"],
        interval=options["interval"],
        schedule=Schedule(options["schedule"]),
        padding=options["padding"],
        dscp=parse_dscp(options["dscp"]),
        wait=options["wait"],
        modes=parse_modes(options["modes"]),
        keys=keys_from(options),
        max_count=options["max_count"],
        **extra,
    )


def client_keys(identity: str | None, keyfile: Path | None) -> IdentityKeys | None:
    """The client's pass-phrase key, from -u and -k together."""
    if (identity is None) != (keyfile is None):
        raise ConfigError("-u IDENTITY and -k FILE go together")
    if identity is None or keyfile is None:
        return None
    return IdentityKeys(PassphraseFile.load(keyfile), identity)


def network_reason(exc: OSError, target: str, protocol: str) -> str:
    """A one-line reason for a failed connection."""
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {target}: {exc.strerror}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection to {target} refused (no {protocol} server listening?)"
    if isinstance(exc, TimeoutError):
        return f"timed out connecting to {target}"
    if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"no route to {target}"
    return f"{target}: {exc.strerror or exc}"


def ike_options(command: F) -> F:
    """The options that select RFC 7717 keys from an IKE SA (D6)."""
    for option in reversed(_IKE_OPTIONS):
        command = option(command)
    return command


_IKE_OPTIONS = [
    click.option(
        "--key-source",
        type=click.Choice(["passphrase", "ike"]),
        default="passphrase",
        show_default=True,
        help="Where the shared secret comes from: -u/-k, or an IKEv2 SA (RFC 7717).",
    ),
    click.option(
        "--ike-config",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Run an embedded IKEv2 initiator with this configuration (otwamp ike's TOML).",
    ),
    click.option(
        "--ike-socket",
        type=click.Path(path_type=Path),
        help=f"The otwamp ike key broker socket (default {DEFAULT_BROKER}).",
    ),
    click.option(
        "--ike-policy",
        type=click.Choice([policy.value for policy in Policy]),
        default=Policy.INITIATE.value,
        show_default=True,
        help="Without an IKE SA for the server: set one up, fall back to -u/-k, or fail (D6).",
    ),
]


def keys_from(options: dict[str, Any]) -> ClientKeySource | None:
    """The client's key source: the pass-phrase file, or IKEv2 SAs with it as fallback."""
    passphrase = client_keys(options["identity"], options["keyfile"])
    if options["key_source"] != "ike":
        return passphrase
    if options["ike_config"] is not None:
        lookup: SaLookup = EmbeddedLookup(IkeService(load_ike_config(options["ike_config"])))
    else:
        lookup = BrokerLookup(options["ike_socket"] or DEFAULT_BROKER)
    return IkeClientKeys(lookup, Policy(options["ike_policy"]), passphrase)


async def run_with_keys(settings: PingSettings, job: Callable[[], Awaitable[T]]) -> T:
    """Run ``job`` with an embedded IKE initiator up, if the key source has one."""
    keys = settings.keys
    if not isinstance(keys, IkeClientKeys) or not isinstance(keys.lookup, EmbeddedLookup):
        return await job()
    service = keys.lookup.service
    await service.start()
    try:
        return await job()
    finally:
        await service.stop()
