"""What ``otwamp ping`` and ``otwamp owping`` share: options, settings, one-line reasons."""

import errno
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from otwamp.cli.addresses import parse_endpoint
from otwamp.cli.dscp import parse_dscp
from otwamp.cli.modes import parse_modes
from otwamp.cli.strongswan import client_keys as strongswan_keys
from otwamp.cli.strongswan import strongswan_options
from otwamp.control.security import DEFAULT_MAX_COUNT
from otwamp.drivers.control_client import PingSettings
from otwamp.drivers.ike_lookup import BrokerLookup, EmbeddedLookup
from otwamp.drivers.strongswan_ha import HaLookup
from otwamp.errors import ConfigError
from otwamp.ike.config import DEFAULT_BROKER
from otwamp.ike.config import load as load_ike_config
from otwamp.ike.service import IkeService
from otwamp.keys.ikev2 import IkeClientKeys, Policy, SaLookup
from otwamp.keys.passphrase import IdentityKeys, PassphraseFile
from otwamp.keys.source import ClientKeySource
from otwamp.session.schedule import Schedule
from otwamp.wire.registry import MODE_NAMES, TwampMode
from otwamp.wire.twamp_test import MAX_UDP_PAYLOAD, SENDER_OPEN_SIZE

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
MAX_PADDING = MAX_UDP_PAYLOAD - SENDER_OPEN_SIZE  # the largest padding that fits a datagram
log = logging.getLogger("otwamp.cli")

SCHEDULE_HELP = (
    "How packets are spaced: 'fixed' sends one every --interval (a periodic stream, RFC 3432); "
    "'poisson' draws each gap from an exponential distribution with mean --interval "
    "(Poisson sampling, RFC 2330 §11.1.1)."
)


@dataclass(frozen=True)
class Protocol:
    """What differs between the ``ping`` (TWAMP) and ``owping`` (OWAMP) command lines."""

    name: str
    port: int  # the well-known control port
    modes: tuple[TwampMode, ...]  # every mode the protocol has
    padding_help: str
    schedule_help: str  # how the schedule reaches the other side, after SCHEDULE_HELP
    wait_help: str
    control: bool = True  # a Control handshake (greeting, PBKDF2 Count); STAMP has none

    @property
    def secured(self) -> tuple[TwampMode, ...]:
        """The modes with a key: the default when one is given without -A."""
        return tuple(mode for mode in self.modes if mode is not TwampMode.UNAUTHENTICATED)


def _options(protocol: Protocol) -> list[Callable[[F], F]]:
    """The shared options, with ``protocol``'s own help texts."""
    secured = ", ".join(MODE_NAMES[mode] for mode in protocol.secured)
    modes = ", ".join(MODE_NAMES[mode] for mode in protocol.modes)
    chosen = "the strongest that the server also offers"
    if not protocol.control:
        chosen = "the strongest the key allows"
    max_count = click.option(
        "--max-count",
        type=click.IntRange(min=1024),
        default=DEFAULT_MAX_COUNT,
        show_default=True,
        help="Highest PBKDF2 Count to accept from a server.",
    )
    return [
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
            help="Seconds between packets (the mean gap with --schedule poisson).",
        ),
        click.option(
            "--schedule",
            type=click.Choice([kind.value for kind in Schedule]),
            default=Schedule.FIXED.value,
            show_default=True,
            help=f"{SCHEDULE_HELP} {protocol.schedule_help}",
        ),
        click.option(
            "--padding",
            type=click.IntRange(min=0, max=MAX_PADDING),
            help=protocol.padding_help,
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
            help=protocol.wait_help,
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
            metavar="MODES",
            help=(
                f"Acceptable modes, comma-separated: {modes}; {chosen} is used. "
                f"Default: open; with -u/-k or --key-source ike: {secured}."
            ),
        ),
        click.option("-u", "--identity", help="Identity (KeyID) in the pass-phrase file."),
        click.option(
            "-k",
            "--keyfile",
            type=click.Path(dir_okay=False, readable=False, path_type=Path),
            help="Pass-phrase file (identity<TAB>hex).",
        ),
        *([max_count] if protocol.control else []),
        click.option(
            "-v",
            "--verbose",
            count=True,
            help="Log to stderr: -v what happens (INFO), -vv details (DEBUG).",
        ),
        click.argument("target", metavar="HOST[:PORT]"),
    ]


def measurement_options(protocol: Protocol) -> Callable[[F], F]:
    """A decorator applying the options every measurement command takes."""

    def apply(command: F) -> F:
        command = ike_options(command)  # innermost: listed after the others in --help
        for option in reversed(_options(protocol)):
            command = option(command)
        return command

    return apply


def settings_from(
    target: str, protocol: Protocol, options: dict[str, Any], **extra: Any
) -> PingSettings:
    """PingSettings from the shared options, logged at INFO (what) and DEBUG (how)."""
    if options["ipv4"] and options["ipv6"]:
        raise ConfigError("-4 and -6 exclude each other")
    host, port = parse_endpoint(target, protocol.port)
    family = (
        socket.AF_INET
        if options["ipv4"]
        else socket.AF_INET6
        if options["ipv6"]
        else socket.AF_UNSPEC
    )
    keys = keys_from(options)
    settings = PingSettings(
        host=host,
        port=port,
        family=family,
        count=options["count"],
        interval=options["interval"],
        schedule=Schedule(options["schedule"]),
        padding=options["padding"],
        dscp=parse_dscp(options["dscp"]),
        wait=options["wait"],
        modes=acceptable_modes(options["modes"], keys is not None, protocol),
        keys=keys,
        max_count=options.get("max_count", DEFAULT_MAX_COUNT),
        **extra,
    )
    _log_settings(settings, protocol, _key_words(options))
    return settings


def acceptable_modes(text: str | None, keyed: bool, protocol: Protocol) -> tuple[TwampMode, ...]:
    """The modes -A names; without -A, the secured ones when a key is given, else open."""
    if text is not None:
        return parse_modes(text)
    return protocol.secured if keyed else (TwampMode.UNAUTHENTICATED,)


def _key_words(options: dict[str, Any]) -> str:
    """Where the key comes from, in a log line's words (never the key)."""
    if options["key_source"] == "ike":
        return f"IKEv2 SA (policy {options['ike_policy']})"
    if options["key_source"] == "strongswan":
        return f"strongSwan's IKEv2 SA via its HA plugin on {options['strongswan_ha']}"
    if options["identity"] is not None:
        return f"pass-phrase of {options['identity']!r}"
    return "none"


def _log_settings(settings: PingSettings, protocol: Protocol, key: str) -> None:
    """What the command is about to do: INFO for the target and security, DEBUG for the rest."""
    modes = ", ".join(MODE_NAMES[mode] for mode in settings.modes)
    log.info(
        "%s to %s port %d; modes allowed: %s; key source: %s",
        protocol.name,
        settings.host,
        settings.port,
        modes,
        key,
    )
    log.debug(
        "count %d, interval %g s, schedule %s, padding %s, DSCP %d, wait %g s, max Count %d",
        settings.count,
        settings.interval,
        settings.schedule.value,
        "default" if settings.padding is None else settings.padding,
        settings.dscp,
        settings.wait,
        settings.max_count,
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
    """The options that select RFC 7717 keys from an IKE SA."""
    for option in reversed(_IKE_OPTIONS):
        command = option(command)
    return strongswan_options(command)


_IKE_OPTIONS = [
    click.option(
        "--key-source",
        type=click.Choice(["passphrase", "ike", "strongswan"]),
        default="passphrase",
        show_default=True,
        help=(
            "Where the shared secret comes from: -u/-k, an IKEv2 SA of otwamp ike, "
            "or strongSwan's IKEv2 SA via --strongswan-ha (RFC 7717)."
        ),
    ),
    click.option(
        "--ike-config",
        type=click.Path(dir_okay=False, readable=False, path_type=Path),
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
        help=(
            "With --key-source ike and no IKE SA with the server yet: set one up (initiate), "
            "use the -u/-k pass-phrase instead (fallback), or fail (require)."
        ),
    ),
]


def keys_from(options: dict[str, Any]) -> ClientKeySource | None:
    """The client's key source: the pass-phrase file, or IKEv2 SAs with it as fallback."""
    passphrase = client_keys(options["identity"], options["keyfile"])
    if options["key_source"] == "strongswan":
        return strongswan_keys(options, passphrase)
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
    if isinstance(keys, IkeClientKeys) and isinstance(keys.lookup, HaLookup):
        async with keys.lookup.listening():
            return await job()
    if not isinstance(keys, IkeClientKeys) or not isinstance(keys.lookup, EmbeddedLookup):
        return await job()
    service = keys.lookup.service
    await service.start()
    try:
        return await job()
    finally:
        await service.stop()
