"""The options that enable the TWAMP extensions (RFC 5938, 6038, 7750) and STAMP's IKEv2 keys."""

import pytest

from otwamp.cli.config import server_settings
from otwamp.cli.modes import parse_extensions
from otwamp.cli.stamp import stamp_reflector_settings
from otwamp.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "bits"),
    [
        ("none", 0),
        ("all", 16 | 32 | 64 | 256),
        ("individual", 16),
        ("reflect-octets, symmetrical-size", 32 | 64),
        ("DSCP-ECN", 256),
        ("", 0),
    ],
)
def test_extension_lists(text, bits):
    assert parse_extensions(text) == bits


def test_an_unknown_extension_is_one_line():
    with pytest.raises(ConfigError, match="unknown TWAMP extension 'ecn'"):
        parse_extensions("individual,ecn")


def test_config_key_takes_a_string_or_a_list_and_defaults_to_none():
    assert server_settings({}, {}).twamp_extensions == 0
    assert server_settings(
        {"twamp_extensions": ["individual", "dscp-ecn"]}, {}
    ).twamp_extensions == (16 | 256)
    flags = {"twamp_extensions": "all"}
    assert (
        server_settings({"twamp_extensions": "none"}, flags).twamp_extensions == 16 | 32 | 64 | 256
    )


def test_stamp_key_source():
    assert stamp_reflector_settings({"stamp_key_source": "ike"}).ike_keys
    assert not stamp_reflector_settings({}).ike_keys
    with pytest.raises(ConfigError, match="not both"):
        stamp_reflector_settings({"stamp_key_source": "ike", "stamp_keyfile": "/k.pfs"})
    with pytest.raises(ConfigError, match="'file' or 'ike'"):
        stamp_reflector_settings({"stamp_key_source": "charon"})
