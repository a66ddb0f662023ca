"""``otwamp ping`` and ``owping`` option handling: modes without -A, and -v/--verbose."""

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from otwamp.cli import owping, ping
from otwamp.cli.logs import setup_logging
from otwamp.cli.main import main
from otwamp.drivers.control_client import PingSettings
from otwamp.wire.registry import TwampMode

OPEN, AUTH, ENC, MIXED = (
    TwampMode.UNAUTHENTICATED,
    TwampMode.AUTHENTICATED,
    TwampMode.ENCRYPTED,
    TwampMode.MIXED,
)


@pytest.fixture(autouse=True)
def otwamp_logger() -> Iterator[logging.Logger]:
    """The ``otwamp`` logger, restored after the test (the commands configure it)."""
    logger = logging.getLogger("otwamp")
    handlers, level = list(logger.handlers), logger.level
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    path = tmp_path / "keys.pfs"
    path.write_text("alice\t" + b"correct horse".hex() + "\n")
    return path


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[PingSettings]:
    """The settings each command would measure with; the measurement itself is refused."""
    settings: list[PingSettings] = []

    async def refuse(given: PingSettings, job: Any) -> Any:
        settings.append(given)
        raise ConnectionRefusedError

    monkeypatch.setattr(ping, "run_with_keys", refuse)
    monkeypatch.setattr(owping, "run_with_keys", refuse)
    return settings


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _modes(seen: list[PingSettings], *args: str) -> set[TwampMode]:
    result = _run(*args)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("otwamp: connection to 192.0.2.1")
    return set(seen[-1].modes)


@pytest.mark.parametrize(
    ("command", "secured"), [("ping", {AUTH, ENC, MIXED}), ("owping", {AUTH, ENC})]
)
def test_a_key_without_a_mode_list_allows_only_secured_modes(
    seen: list[PingSettings], keyfile: Path, command: str, secured: set[TwampMode]
) -> None:
    assert _modes(seen, command, "192.0.2.1", "-u", "alice", "-k", str(keyfile)) == secured
    ike = ("--key-source", "ike", "--ike-socket", "/nonexistent/ike.sock")
    assert _modes(seen, command, "192.0.2.1", *ike) == secured
    assert _modes(seen, command, "192.0.2.1", *ike, "-u", "alice", "-k", str(keyfile)) == secured


@pytest.mark.parametrize("command", ["ping", "owping"])
def test_no_key_means_open_and_a_mode_list_is_kept(
    seen: list[PingSettings], keyfile: Path, command: str
) -> None:
    assert _modes(seen, command, "192.0.2.1") == {OPEN}
    keyed = ("-u", "alice", "-k", str(keyfile))
    assert _modes(seen, command, "192.0.2.1", "-A", "open", *keyed) == {OPEN}
    assert _modes(seen, command, "192.0.2.1", "-A", "open,authenticated", *keyed) == {OPEN, AUTH}


def test_owamp_refuses_mixed_even_with_a_key(seen: list[PingSettings], keyfile: Path) -> None:
    result = _run("owping", "192.0.2.1", "-A", "mixed", "-u", "alice", "-k", str(keyfile))
    assert result.exit_code == 1
    assert result.stderr.startswith("otwamp: OWAMP has no mixed mode")
    assert seen == []


@pytest.mark.parametrize("command", ["ping", "owping"])
def test_verbose_levels(seen: list[PingSettings], command: str) -> None:
    quiet = _run(command, "192.0.2.1")
    assert "INFO" not in quiet.stderr and "DEBUG" not in quiet.stderr
    info = _run(command, "192.0.2.1", "-v")
    protocol = "TWAMP" if command == "ping" else "OWAMP"
    assert f"otwamp INFO {protocol} to 192.0.2.1 port" in info.stderr
    assert "modes allowed: open; key source: none" in info.stderr
    assert "DEBUG" not in info.stderr
    debug = _run(command, "192.0.2.1", "-vv", "--schedule", "poisson")
    assert "otwamp INFO" in debug.stderr
    assert "otwamp DEBUG count 100, interval 0.1 s, schedule poisson" in debug.stderr


def test_verbose_never_logs_the_pass_phrase(seen: list[PingSettings], keyfile: Path) -> None:
    result = _run("ping", "192.0.2.1", "-vv", "-u", "alice", "-k", str(keyfile))
    assert "key source: pass-phrase of 'alice'" in result.stderr
    assert "correct horse" not in result.stderr
    assert b"correct horse".hex() not in result.stderr


def test_default_level_shows_warnings(
    capsys: pytest.CaptureFixture[str], otwamp_logger: logging.Logger
) -> None:
    setup_logging(0)
    setup_logging(0)  # a second call replaces the handler instead of adding one
    log = logging.getLogger("otwamp.keys")
    log.info("not shown")
    log.warning("shown once")
    err = capsys.readouterr().err
    assert "not shown" not in err
    assert err.count("otwamp WARNING shown once") == 1
