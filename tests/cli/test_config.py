"""``otwamp server`` settings from TOML and flags."""

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from otwamp.cli.config import CONFIG_LIMIT, load_server_config, server_settings
from otwamp.cli.main import main
from otwamp.errors import ConfigError
from otwamp.wire.registry import TwampMode


def test_file_values_and_flag_overrides(tmp_path: Path) -> None:
    keys = tmp_path / "k.pfs"
    keys.write_text("alice\t616263\n")
    config = tmp_path / "server.toml"
    config.write_text(
        '[server]\nlisten = ["127.0.0.1:8620", "[::1]"]\ntest_ports = "20000-20010"\n'
        'max_control_sessions = 3\ncontrol_timeout = 30\nmodes = "open,encrypted"\n'
        f'keyfile = "{keys}"\n'
        "count = 4096\n"
    )
    settings = server_settings(
        load_server_config(config), {"test_ports": "30000-30001", "listen": ()}
    )
    assert settings.listen == (("127.0.0.1", 8620), ("::1", 862))
    assert settings.test_ports == (30000, 30001)
    assert settings.max_control_sessions == 3
    assert settings.control_timeout == 30.0
    assert settings.modes == TwampMode.UNAUTHENTICATED | TwampMode.ENCRYPTED
    assert settings.count == 4096
    assert len(settings.key_sources) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[server]\nbogus = 1\n", "unknown \\[server\\] keys: bogus"),
        ("[server]\nmax_control_sessions = 0\n", "max_control_sessions must be a positive number"),
        ("[server]\ncount = 1000\n", "count must be a power of 2"),
        ('[server]\nmodes = "authenticated"\n', "need keys: --keyfile, --ike-config"),
        ('[server]\ntest_ports = "9-1"\n', "LO <= HI"),
        ("[server\n", "not valid TOML"),
        ("[server]\nkeep_sessions_for = 0\n", "keep_sessions_for must be a positive number"),
        ('[server]\nkeep_sessions_for = "5m"\n', "keep_sessions_for must be a positive number"),
        ("[server]\nkeep_sessions_mib = -1\n", "keep_sessions_mib must be a positive number"),
        ("[server]\nkeep_sessions_mib = true\n", "keep_sessions_mib must be a positive number"),
        ("[server]\nkeep_sessions_mib = inf\n", "keep_sessions_mib must be a finite number"),
        ("[server]\nmax_sessions_per_source = 2.5\n", "must be a whole number"),
        ("[server]\nmax_packets = 0\n", "max_packets must be a positive number"),
        ("[server]\nmax_packets = 1000.5\n", "max_packets must be a whole number"),
        ('[server]\nmax_packets = "10M"\n', "max_packets must be a positive number"),
        ("[server]\nmessage_timeout = 0\n", "message_timeout must be a positive number"),
    ],
)
def test_bad_config(tmp_path: Path, body: str, message: str) -> None:
    config = tmp_path / "server.toml"
    config.write_text(body)
    with pytest.raises(ConfigError, match=message):
        server_settings(load_server_config(config), {})


def test_abuse_limits_from_file(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text(
        "[server]\nmax_connections_per_source = 4\nmax_sessions_per_connection = 8\n"
        "max_sessions_per_source = 32\nmax_packets = 500\nmax_packets_per_connection = 1000\n"
        "max_scheduled_packets = 5000\nmessage_timeout = 3\nwrite_timeout = 4.5\n"
    )
    settings = server_settings(load_server_config(config), {})
    assert (
        settings.max_connections_per_source,
        settings.max_sessions_per_connection,
        settings.max_sessions_per_source,
        settings.max_packets,
        settings.max_packets_per_connection,
        settings.max_scheduled_packets,
        settings.message_timeout,
        settings.write_timeout,
    ) == (4, 8, 32, 500, 1000, 5000, 3.0, 4.5)
    defaults = server_settings({}, {})
    assert (defaults.max_packets, defaults.max_packets_per_connection) == (10**7, 10**7)


def test_missing_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"absent\.toml"):
        load_server_config(tmp_path / "absent.toml")


def test_kept_sessions_from_file_and_flags(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text("[server]\nkeep_sessions_for = 60\nkeep_sessions_mib = 8\n")
    table = load_server_config(config)
    settings = server_settings(table, {})
    assert settings.keep_sessions_for == 60.0
    assert settings.keep_sessions_bytes == 8 << 20
    flags = {"keep_sessions_for": 1.5, "keep_sessions_mib": 0.5}
    settings = server_settings(table, flags)
    assert (settings.keep_sessions_for, settings.keep_sessions_bytes) == (1.5, 512 << 10)
    defaults = server_settings({}, {})
    assert (defaults.keep_sessions_for, defaults.keep_sessions_bytes) == (300.0, 256 << 20)


def test_config_over_the_size_limit(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text("[server]\n" + "#" * CONFIG_LIMIT + "\n")
    with pytest.raises(ConfigError, match=f"server.toml: larger than {CONFIG_LIMIT} octets"):
        load_server_config(config)


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/full"])
def test_config_that_is_a_device(device: str) -> None:
    with pytest.raises(ConfigError, match=f"^{device}: not a regular file"):
        load_server_config(Path(device))


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--config", "/dev/zero"],
            "/dev/zero: not a regular file, cannot be a server configuration file",
        ),
        (
            ["--keyfile", "/dev/full", "--modes", "authenticated"],
            "/dev/full: not a regular file, cannot be a pass-phrase file",
        ),
    ],
)
def test_server_refuses_devices_in_one_line(flags: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["server", *flags])
    assert result.exit_code == 1, result.output
    assert result.stderr == f"otwamp: {message}\n"


def test_server_warns_about_a_key_file_others_can_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    keys = tmp_path / "k.pfs"
    keys.write_text("alice\t616263\n")
    keys.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="otwamp"):
        server_settings({"keyfile": str(keys), "modes": "authenticated"}, {})
    assert [record.getMessage() for record in caplog.records] == [
        f"key file {keys} is readable by group/others (mode 0644); chmod 600 {keys}"
    ]
    caplog.clear()
    keys.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="otwamp"):
        server_settings({"keyfile": str(keys), "modes": "authenticated"}, {})
    assert caplog.records == []
