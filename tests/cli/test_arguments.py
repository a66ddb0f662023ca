"""Command-line argument parsing: endpoints, port ranges, DSCP names, mode lists."""

import pytest

from otwamp.cli.addresses import parse_endpoint, parse_port_range
from otwamp.cli.dscp import parse_dscp
from otwamp.cli.modes import modes_word, parse_modes
from otwamp.errors import ConfigError
from otwamp.wire.registry import TwampMode


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", ("192.0.2.1", 862)),
        ("192.0.2.1:9000", ("192.0.2.1", 9000)),
        ("host.example", ("host.example", 862)),
        ("[::1]", ("::1", 862)),
        ("[::1]:8620", ("::1", 8620)),
        ("2001:db8::1", ("2001:db8::1", 862)),
        ("[fe80::1%lo]:1", ("fe80::1%lo", 1)),
    ],
)
def test_endpoints(text: str, expected: tuple[str, int]) -> None:
    assert parse_endpoint(text, 862) == expected


@pytest.mark.parametrize("text", ["", "[::1", "[::1]x", ":80", "host:port", "host:70000", "[]:1"])
def test_bad_endpoints(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_endpoint(text, 862)


def test_port_ranges() -> None:
    assert parse_port_range("20000-20999") == (20000, 20999)
    assert parse_port_range("5-5") == (5, 5)
    for bad in ("20000", "2-1", "0-10", "1-65536", "a-b"):
        with pytest.raises(ConfigError):
            parse_port_range(bad)


@pytest.mark.parametrize(
    ("text", "dscp"),
    [
        ("EF", 46),
        ("ef", 46),
        ("AF41", 34),
        ("AF11", 10),
        ("CS5", 40),
        ("BE", 0),
        ("63", 63),
        ("0x2e", 46),
    ],
)
def test_dscp(text: str, dscp: int) -> None:
    assert parse_dscp(text) == dscp


@pytest.mark.parametrize("text", ["64", "AF51", "-1", "0x40", "fast"])
def test_bad_dscp(text: str) -> None:
    with pytest.raises(ConfigError, match="is not a DSCP"):
        parse_dscp(text)


def test_modes() -> None:
    assert parse_modes("open,authenticated") == (TwampMode.UNAUTHENTICATED, TwampMode.AUTHENTICATED)
    assert parse_modes("AE") == (TwampMode.AUTHENTICATED, TwampMode.ENCRYPTED)
    assert parse_modes("mixed, mixed") == (TwampMode.MIXED,)
    assert modes_word(parse_modes("OAEM")) == 0x0F
    for bad in ("", "x", "open,x", "OAX"):
        with pytest.raises(ConfigError, match="unknown mode"):
            parse_modes(bad)
