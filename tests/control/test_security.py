"""Connection set-up security: mode choice, Count checks, Token and channels (RFC 4656 §3.1)."""

import itertools
from collections.abc import Callable

import pytest

from otwamp.control.security import (
    check_count,
    choose_mode,
    client_setup,
    security_mode,
    server_setup,
)
from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.keys.source import Credentials, KeySourceKind
from otwamp.wire.registry import TwampMode
from otwamp.wire.setup import ServerGreeting, encode_key_id

OPEN, A, E, M = (
    TwampMode.UNAUTHENTICATED,
    TwampMode.AUTHENTICATED,
    TwampMode.ENCRYPTED,
    TwampMode.MIXED,
)
GREETING = ServerGreeting(0x0F, bytes(range(16)), bytes(range(16, 32)), 1024)


def test_strongest_common_mode() -> None:
    assert choose_mode(0x0F, (OPEN, A, E, M)) is E
    assert choose_mode(0x0B, (OPEN, A, E, M)) is A
    assert choose_mode(0x09, (OPEN, A, M)) is M
    assert choose_mode(0x01, (OPEN, A)) is OPEN
    assert choose_mode(0x06, (OPEN, M)) is None


def test_security_mode_needs_exactly_one_bit() -> None:
    assert security_mode(0x82) is A
    assert security_mode(0x03) is None
    assert security_mode(0x80) is None


@pytest.mark.parametrize(
    ("count", "ok"), [(1024, True), (32768, True), (65536, False), (1000, False), (3072, False)]
)
def test_count_limits(count: int, ok: bool) -> None:
    if ok:
        check_count(count, 32768)
    else:
        with pytest.raises(ProtocolError, match="Count"):
            check_count(count, 32768)


def _random_source() -> Callable[[int], bytes]:
    counter = itertools.count(1)
    return lambda n: bytes(next(counter) % 256 for _ in range(n))


def test_client_and_server_agree_on_keys_and_channels() -> None:
    credentials = Credentials(encode_key_id("alice"), b"pass", KeySourceKind.PASSPHRASE, "alice")
    response, client = client_setup(GREETING, E, credentials, _random_source())
    assert response.mode == 0x04
    assert response.key_id == encode_key_id("alice")
    assert response.client_iv == bytes(range(49, 65))  # drawn after the 16 + 32 key octets
    server, rx = server_setup(GREETING, response, credentials, bytes(16))
    assert server.keys == client.keys
    message = bytes(range(32))
    assert rx.open(client.tx.seal(message)) == message


def test_wrong_secret_is_an_authentication_error() -> None:
    good = Credentials(encode_key_id("alice"), b"pass", KeySourceKind.PASSPHRASE, "alice")
    bad = Credentials(encode_key_id("alice"), b"wrong", KeySourceKind.PASSPHRASE, "alice")
    response, _ = client_setup(GREETING, A, good, _random_source())
    with pytest.raises(AuthenticationError):
        server_setup(GREETING, response, bad, bytes(16))


def test_key_source_bits_are_added_to_the_mode() -> None:
    credentials = Credentials(bytes(80), b"k", "ikev2", "spis")
    response, _ = client_setup(
        GREETING, A, credentials, _random_source(), int(TwampMode.IKEV2_DERIVED)
    )
    assert response.mode == 0x82


def test_open_mode_needs_no_keys() -> None:
    response, channels = client_setup(GREETING, OPEN, None, _random_source())
    assert response.mode == 1
    assert channels.keys is None
    assert response.token == bytes(64)


@pytest.mark.parametrize("name", ["twamp-A", "twamp-E", "twamp-M", "twamp-A-pad0", "twamp-E-pad0"])
def test_set_up_reproduces_the_perfsonar_transcript(name: str) -> None:
    """Given the recorded random values, our set-up produces perfSONAR's bytes exactly."""
    from tests.control.conftest import Recorded

    recorded = Recorded(name)
    greeting = recorded.greeting()
    wire = recorded.stream("client->server")
    keys = recorded.keys
    client_iv = wire[148:164]  # Set-Up-Response: Mode 4, KeyID 80, Token 64, Client-IV 16
    draws = iter([keys.aes_key, keys.hmac_key, client_iv])
    credentials = Credentials(encode_key_id("test"), b"secret", KeySourceKind.PASSPHRASE, "test")
    mode = TwampMode(int.from_bytes(wire[:4], "big"))
    response, client = client_setup(greeting, mode, credentials, lambda n: next(draws))
    assert response.encode() == wire[:164]
    # The server opens the Token to the same keys and checks the client's first command's HMAC.
    server, rx = server_setup(greeting, response, credentials, bytes(16))
    assert server.keys == keys
    request = rx.open(wire[164 : 164 + 112])  # Request-TW-Session: its HMAC verifies
    assert request[0] == 5
    assert client.tx.seal(request) == wire[164 : 164 + 112]  # and our client encrypts it alike
