"""``otwamp server`` settings from TOML and flags."""

from pathlib import Path

import pytest

from otwamp.cli.config import load_server_config, server_settings
from otwamp.drivers.twamp_server import TwampServer
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
    assert TwampServer(settings).offered == 0x05


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[server]\nbogus = 1\n", "unknown \\[server\\] keys: bogus"),
        ("[server]\nmax_control_sessions = 0\n", "max_control_sessions must be a positive number"),
        ("[server]\ncount = 1000\n", "count must be a power of 2"),
        ('[server]\nmodes = "authenticated"\n', "need keys: --keyfile, --ike-config"),
        ('[server]\ntest_ports = "9-1"\n', "LO <= HI"),
        ("[server\n", "not valid TOML"),
    ],
)
def test_bad_config(tmp_path: Path, body: str, message: str) -> None:
    config = tmp_path / "server.toml"
    config.write_text(body)
    with pytest.raises(ConfigError, match=message):
        server_settings(load_server_config(config), {})


def test_missing_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"absent\.toml"):
        load_server_config(tmp_path / "absent.toml")
