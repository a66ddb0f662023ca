"""What the client machine tests share: a recorded random source and the vectors' key.

Given the random octets perfSONAR's client drew (its session keys and
Client-IV, in the order RFC 4656 §3.1 lists them) and the vectors'
throwaway pass-phrase, our client machine must send the recorded
Set-Up-Response byte for byte.
"""

from collections.abc import Callable, Iterator

from otwamp.keys.source import Credentials, KeySourceKind
from otwamp.wire.registry import TwampMode
from otwamp.wire.setup import SetUpResponse, encode_key_id
from tests.vectors import load_vector

CREDENTIALS = Credentials(encode_key_id("test"), b"secret", KeySourceKind.PASSPHRASE, "test")


def draws(*chunks: bytes) -> Callable[[int], bytes]:
    """A random source handing out ``chunks`` in order, each exactly as long as asked."""
    queue: Iterator[bytes] = iter(chunks)

    def random(n: int) -> bytes:
        chunk = next(queue)
        assert len(chunk) == n, (len(chunk), n)
        return chunk

    return random


def recorded_random(name: str, setup: SetUpResponse) -> Callable[[int], bytes]:
    """The random octets the recorded client drew: AES key, HMAC key, Client-IV."""
    derived = load_vector(name)["derived_for_checking"]
    if not derived:
        return draws()
    return draws(
        bytes.fromhex(derived["aes_session_key"]),
        bytes.fromhex(derived["hmac_session_key"]),
        setup.client_iv,
    )


def recorded_mode(name: str) -> tuple[TwampMode, ...]:
    """The one mode the recorded client asked for, as this client's allowed modes."""
    return (TwampMode(load_vector(name)["mode_value"]),)
