"""The strongSwan HA key source options of ``server``, ``ping``, ``owping`` (docs/STRONGSWAN.md)."""

from collections.abc import Callable
from typing import Any, TypeVar

import click

from otwamp.drivers.strongswan_ha import DEFAULT_CHARON, HaEndpoints, HaLookup
from otwamp.errors import ConfigError
from otwamp.keys.ikev2 import IkeClientKeys, IkeServerKeys, Policy
from otwamp.keys.source import ClientKeySource, KeySourceKind

F = TypeVar("F", bound=Callable[..., Any])
KEYS = ("strongswan_ha", "strongswan_ha_charon", "strongswan_ha_force", "strongswan_resync")

_OPTIONS = [
    click.option(
        "--strongswan-ha",
        metavar="ADDR",
        help=(
            "Take RFC 7717 keys from strongSwan: listen on ADDR:4510, charon's "
            "charon.plugins.ha.remote (e.g. 127.0.0.2)."
        ),
    ),
    click.option(
        "--strongswan-ha-charon",
        metavar="ADDR",
        help=(
            "charon's charon.plugins.ha.local: HA datagrams are taken from ADDR:4510 only "
            f"(default {DEFAULT_CHARON})."
        ),
    ),
    click.option(
        "--strongswan-ha-force",
        is_flag=True,
        default=None,
        help="Allow non-loopback HA addresses (the messages carry IKE secrets in clear text).",
    ),
    click.option(
        "--strongswan-resync",
        is_flag=True,
        default=None,
        help=(
            "At start, ask charon to replay its IKE SAs (HA RESYNC); charon also rekeys "
            "their CHILD_SAs."
        ),
    ),
]


def strongswan_options(command: F) -> F:
    """Add the strongSwan HA options to a command."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def _lookup(settings: dict[str, Any]) -> HaLookup:
    for key in ("strongswan_ha_force", "strongswan_resync"):
        if not isinstance(settings.get(key) or False, bool):
            raise ConfigError(f"{key} must be true or false, got {settings[key]!r}")
    return HaLookup(
        HaEndpoints.checked(
            str(settings["strongswan_ha"]),
            None
            if settings.get("strongswan_ha_charon") is None
            else str(settings["strongswan_ha_charon"]),
            bool(settings.get("strongswan_ha_force")),
            bool(settings.get("strongswan_resync")),
        )
    )


def server_keys(settings: dict[str, Any], check_peer: bool) -> IkeServerKeys | None:
    """The server's key source for ``--strongswan-ha`` (or the config key), if given."""
    if settings.get("strongswan_ha") is None:
        if any(settings.get(key) is not None for key in KEYS):
            raise ConfigError("the strongSwan HA options need --strongswan-ha ADDR")
        return None
    return IkeServerKeys(_lookup(settings), check_peer, name=KeySourceKind.STRONGSWAN)


def client_keys(options: dict[str, Any], passphrase: ClientKeySource | None) -> IkeClientKeys:
    """The client's key source for ``--key-source strongswan``: charon's newest SA with the server.

    charon alone sets SAs up: ``--ike-policy fallback`` uses -u/-k when there is none, any
    other policy fails.
    """
    if options.get("strongswan_ha") is None:
        raise ConfigError("--key-source strongswan needs --strongswan-ha ADDR")
    policy = Policy.FALLBACK if options["ike_policy"] == Policy.FALLBACK.value else Policy.REQUIRE
    return IkeClientKeys(_lookup(options), policy, passphrase, name=KeySourceKind.STRONGSWAN)
