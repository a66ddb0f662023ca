"""Every command's ``--help``: no internal decision ids, and each protocol's own text."""

import re
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from otwamp.cli.main import main

DECISION_ID = re.compile(r"\(D\d|D\d+\)")


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The argument paths of ``group`` and of every command under it."""
    yield prefix
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name)


COMMANDS = list(_commands(main))


def _help(*path: str) -> str:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exception is None, result.output
    assert result.exit_code == 0
    return result.output


def test_every_command_is_covered() -> None:
    names = {" ".join(path) for path in COMMANDS}
    assert {"", "server", "ping", "owping", "keys add", "ike status"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "otwamp" for p in COMMANDS])
def test_help_has_no_decision_ids(path: tuple[str, ...]) -> None:
    text = _help(*path)
    assert text.startswith("Usage: ")
    assert "Traceback" not in text
    assert DECISION_ID.search(text) is None, DECISION_ID.findall(text)


def test_pattern_catches_decision_ids() -> None:
    assert DECISION_ID.search("behind NAT (D7)")
    assert DECISION_ID.search("(D14, RFC 5357)")
    assert DECISION_ID.search("see R7") is None


def test_schedule_is_explained() -> None:
    for command in ("ping", "owping"):
        text = " ".join(_help(command).split())
        assert "'fixed' sends one every --interval" in text
        assert "exponential distribution with mean --interval" in text
    assert "slot type 1 or 0 (RFC 4656 §3.6)" in " ".join(_help("owping").split())


def test_owping_help_has_no_twamp_defaults() -> None:
    text = " ".join(_help("owping").split())
    assert "TWAMP" not in text
    assert "mixed" not in text
    assert "RFC 5357" not in text
    assert "Packet Padding in each test packet (default 0; RFC 4656 §3.5)" in text


def test_ping_help_states_its_padding_default() -> None:
    text = " ".join(_help("ping").split())
    assert "27 in open and mixed mode, 64 in authenticated and encrypted mode" in text
    assert "OWAMP" not in text
