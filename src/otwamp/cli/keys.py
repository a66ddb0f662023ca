"""``otwamp keys``: pass-phrase files in perfSONAR's pfs format (identity<TAB>hex)."""

import getpass
import sys
from pathlib import Path

import click

from otwamp.cli.errors import one_line_errors
from otwamp.errors import ConfigError
from otwamp.files import check_replaceable
from otwamp.keys.passphrase import PassphraseFile, check_identity, check_passphrase

PASSPHRASE_LIMIT = 1024  # octets read from stdin at most: /dev/zero must not fill memory
_FILE = click.option(  # readable=False: PassphraseFile.load explains a refusal in one line
    "-f",
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False, readable=False, path_type=Path),
)


@click.group()
def keys() -> None:
    """Manage pass-phrase files (perfSONAR pfs format: identity<TAB>hex)."""


@keys.command(name="add")
@_FILE
@click.argument("identity")
@one_line_errors
def keys_add(path: Path, identity: str) -> None:
    """Add or replace IDENTITY; the pass-phrase is read from the terminal or stdin, never echoed."""
    check_identity(identity)
    store = PassphraseFile.load(path, missing_ok=True)
    check_replaceable(path)  # before asking: a read-only directory fails at once
    passphrase = _read_passphrase(identity)
    check_passphrase(passphrase)
    store.entries[identity] = passphrase
    store.save()
    click.echo(f"{identity}: pass-phrase stored in {path}", err=True)


@keys.command(name="del")
@_FILE
@click.argument("identity")
@one_line_errors
def keys_del(path: Path, identity: str) -> None:
    """Remove IDENTITY."""
    store = PassphraseFile.load(path)
    if store.entries.pop(identity, None) is None:
        raise ConfigError(f"{path}: no identity {identity!r}")
    store.save()


@keys.command(name="list")
@_FILE
@one_line_errors
def keys_list(path: Path) -> None:
    """List the identities (never the pass-phrases)."""
    for identity in sorted(PassphraseFile.load(path).entries):
        click.echo(identity)


def _read_passphrase(identity: str) -> bytes:
    """A pass-phrase from the terminal (asked twice, not echoed) or one line of stdin."""
    if sys.stdin.isatty():
        first = getpass.getpass(f"pass-phrase for {identity}: ")
        if getpass.getpass("again: ") != first:
            raise ConfigError("the two pass-phrases differ")
        passphrase = first.encode("utf-8")
    else:
        passphrase = sys.stdin.buffer.readline(PASSPHRASE_LIMIT + 1).rstrip(b"\r\n")
    if len(passphrase) > PASSPHRASE_LIMIT:
        raise ConfigError(f"a pass-phrase for keys add is at most {PASSPHRASE_LIMIT} octets")
    return passphrase
