"""``otwamp stamp --help`` offers what STAMP uses and nothing of TWAMP-Control's (issue 13).

STAMP has no Control handshake (RFC 8762 §4): no Server-Greeting, so no
PBKDF2 Count to bound and no mode the server offers. ``otwamp ping`` and
``otwamp owping``, which share the measurement options, keep theirs.
"""

import click
from click.testing import CliRunner

from otwamp.cli.main import main

SHARED = {
    "--count",
    "--interval",
    "--schedule",
    "--padding",
    "--dscp",
    "-4",
    "-6",
    "--wait",
    "--json",
    "--raw",
    "--percentiles",
    "--auth-modes",
    "--identity",
    "--keyfile",
    "--verbose",
    "--key-source",
    "--ike-config",
    "--ike-socket",
    "--ike-policy",
    "--strongswan-ha",
    "--strongswan-ha-charon",
    "--strongswan-ha-force",
    "--strongswan-resync",
}
STAMP_ONLY = {"--ssid", "--tlv", "--cos-dscp", "--access-report"}


def _offered(name: str) -> set[str]:
    """The long option names (or the only one) of command ``name``."""
    command = main.commands[name]
    names = set()
    for param in command.params:
        if isinstance(param, click.Option):
            longs = [opt for opt in param.opts if opt.startswith("--")]
            names.add(longs[0] if longs else param.opts[0])
    return names


def _help(name: str) -> str:
    result = CliRunner().invoke(main, [name, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_stamp_offers_what_applies_and_nothing_else() -> None:
    assert _offered("stamp") == SHARED | STAMP_ONLY
    text = _help("stamp")
    for option in SHARED | STAMP_ONLY:
        assert option in text
    assert "--max-count" not in text and "PBKDF2" not in text
    assert "server also offers" not in text  # no Server-Greeting to offer modes
    assert "open, authenticated; the strongest the key allows is used" in text


def test_ping_and_owping_keep_their_options() -> None:
    assert _offered("ping") == SHARED | {"--max-count", "--start-n", "--reflect-octets"}
    assert _offered("owping") == SHARED | {"--max-count", "--to", "--from"}
    for name in ("ping", "owping"):
        text = _help(name)
        assert "Highest PBKDF2 Count to accept from a server." in text
        assert "the strongest that the server also offers is used" in text


def test_stamp_refuses_max_count() -> None:
    result = CliRunner().invoke(main, ["stamp", "127.0.0.1", "--max-count", "2048"])
    assert result.exit_code == 2
    assert "No such option '--max-count'" in result.output
