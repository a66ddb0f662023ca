"""``otwamp server`` listen addresses (docs/DECISIONS.md R7) and its settings flags."""

import errno
import logging
import socket
from collections.abc import Iterator
from dataclasses import replace

import pytest
from click.testing import CliRunner

from otwamp.cli import listen
from otwamp.cli import main as main_module
from otwamp.cli.errors import CliError
from otwamp.cli.listen import bind_failure, usable_listeners
from otwamp.cli.main import main
from otwamp.drivers.control_server import ServerSettings

DEFAULTS = ServerSettings()


@pytest.fixture(autouse=True)
def otwamp_logger() -> Iterator[None]:
    """Restore the ``otwamp`` logger, which ``otwamp server`` configures."""
    logger = logging.getLogger("otwamp")
    handlers, level = list(logger.handlers), logger.level
    yield
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.fixture
def taken() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that this test holds, listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[ServerSettings]:
    """The settings ``otwamp server`` would serve with; it returns instead of serving."""
    settings: list[ServerSettings] = []

    async def record(given: ServerSettings, stamp: object) -> None:
        settings.append(given)

    monkeypatch.setattr(main_module, "_serve", record)
    return settings


def _refuse(refused: dict[tuple[str, int], int]) -> object:
    """A bind_failure that refuses the given endpoints with the given errno."""

    def failure(endpoint: tuple[str, int]) -> OSError | None:
        code = refused.get(endpoint)
        return None if code is None else OSError(code, errno.errorcode[code])

    return failure


def test_bind_failure_names_the_os_reason(taken: int) -> None:
    failure = bind_failure(("127.0.0.1", taken))
    assert failure is not None and failure.errno == errno.EADDRINUSE
    assert bind_failure(("127.0.0.1", 0)) is None
    assert bind_failure(("192.0.2.1", 0)) is not None  # not a local address


def test_taken_explicit_address_is_one_line_and_status_1(taken: int, served: list[object]) -> None:
    result = CliRunner().invoke(
        main, ["server", "--listen", f"127.0.0.1:{taken}", "--owamp-listen", "off"]
    )
    assert result.exit_code == 1
    assert result.stderr == (
        f"otwamp: cannot listen for TWAMP-Control on 127.0.0.1:{taken} (Address already in use)\n"
    )
    assert served == []


def test_nothing_to_serve_when_both_are_off(served: list[object]) -> None:
    result = CliRunner().invoke(main, ["server", "--listen", "off", "--owamp-listen", "off"])
    assert result.exit_code == 1
    assert result.stderr == "otwamp: nothing to serve: --listen and --owamp-listen are both off\n"
    assert served == []


def test_default_addresses_that_fail_are_skipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(listen, "bind_failure", _refuse({("::", 862): errno.EAFNOSUPPORT}))
    with caplog.at_level(logging.WARNING, logger="otwamp.server"):
        settings = usable_listeners(DEFAULTS)
    assert settings.listen == (("0.0.0.0", 862),)
    assert settings.owamp_listen == DEFAULTS.owamp_listen
    assert "TWAMP-Control not served on [::]:862" in caplog.text


def test_no_default_address_usable_is_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = {ep: errno.EACCES for ep in (*DEFAULTS.listen, *DEFAULTS.owamp_listen)}
    monkeypatch.setattr(listen, "bind_failure", _refuse(refused))
    with pytest.raises(CliError) as caught:
        usable_listeners(DEFAULTS)
    assert caught.value.message == (
        "nothing to serve: cannot listen for TWAMP-Control on 0.0.0.0:862 (EACCES), "
        "[::]:862 (EACCES); OWAMP-Control on 0.0.0.0:861 (EACCES), [::]:861 (EACCES); "
        "ports below 1024 need root or CAP_NET_BIND_SERVICE"
    )


def test_default_failing_with_the_other_protocol_off_is_fatal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refused = {ep: errno.EADDRINUSE for ep in DEFAULTS.owamp_listen}
    monkeypatch.setattr(listen, "bind_failure", _refuse(refused))
    with pytest.raises(CliError, match=r"^nothing to serve: cannot listen for OWAMP-Control on"):
        usable_listeners(replace(DEFAULTS, listen=()))


def test_one_explicit_failure_is_fatal_even_if_others_bind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listen, "bind_failure", _refuse({("127.0.0.2", 8620): errno.EADDRNOTAVAIL}))
    settings = replace(DEFAULTS, listen=(("127.0.0.1", 8620), ("127.0.0.2", 8620)))
    with pytest.raises(CliError, match=r"TWAMP-Control on 127\.0\.0\.2:8620 \(EADDRNOTAVAIL\)$"):
        usable_listeners(settings)


def test_server_flags_reach_the_settings(served: list[ServerSettings]) -> None:
    result = CliRunner().invoke(
        main,
        [
            "server",
            "--listen",
            "127.0.0.1:0",
            "--owamp-listen",
            "off",
            "--keep-sessions-for",
            "12.5",
            "--keep-sessions-mib",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    (settings,) = served
    assert settings.listen == (("127.0.0.1", 0),)
    assert settings.owamp_listen == ()
    assert (settings.keep_sessions_for, settings.keep_sessions_bytes) == (12.5, 3 << 20)


@pytest.mark.parametrize("flag", ["--keep-sessions-for", "--keep-sessions-mib"])
def test_kept_session_flags_must_be_positive(flag: str, served: list[object]) -> None:
    result = CliRunner().invoke(main, ["server", flag, "0"])
    assert result.exit_code == 2
    assert flag in result.stderr
    assert served == []
