"""Security of connection set-up: mode choice, Token and channels (RFC 4656 §3.1).

Pure: randomness comes from a ``random(n)`` callable so a recorded transcript
can be replayed byte for byte. The shared secret (a pass-phrase, or the RFC
7717 key per decision D2) becomes the secret key through PBKDF2-HMAC-SHA1
with the greeting's Salt and Count; the Token carries the session keys.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from otwamp.errors import ProtocolError
from otwamp.keys.source import Credentials, KeySourceKind
from otwamp.security.control import (
    ControlReceiver,
    ControlSender,
    OpenControlReceiver,
    OpenControlSender,
    SecureControlReceiver,
    SecureControlSender,
)
from otwamp.security.kdf import derive_secret_key
from otwamp.security.sessionkeys import SessionKeys
from otwamp.security.token import open_token, seal_token
from otwamp.wire.registry import TwampMode
from otwamp.wire.setup import ServerGreeting, SetUpResponse

Random = Callable[[int], bytes]
SECURITY_BITS = (
    TwampMode.UNAUTHENTICATED | TwampMode.AUTHENTICATED | TwampMode.ENCRYPTED | TwampMode.MIXED
)
# Strongest first: encrypted protects all of both protocols; authenticated
# encrypts control and authenticates test packets; mixed (RFC 5618) leaves
# test packets clear.
STRENGTH = (
    TwampMode.ENCRYPTED,
    TwampMode.AUTHENTICATED,
    TwampMode.MIXED,
    TwampMode.UNAUTHENTICATED,
)
MIN_COUNT = 1024  # RFC 4656 §3.1
DEFAULT_MAX_COUNT = 1 << 15  # decision D11, RFC 5357 §6


def choose_mode(offered: int, allowed: tuple[TwampMode, ...]) -> TwampMode | None:
    """The strongest security mode both sides allow, or None."""
    for mode in STRENGTH:
        if mode in allowed and offered & mode:
            return mode
    return None


def security_mode(mode: int) -> TwampMode | None:
    """The one security-mode bit of a Mode word, or None if zero or several are set."""
    bits = mode & SECURITY_BITS
    return TwampMode(bits) if bits.bit_count() == 1 else None


def check_count(count: int, max_count: int) -> None:
    """Raise unless Count is a power of 2, at least 1024 (RFC 4656 §3.1), within our cap."""
    if count < MIN_COUNT or count & (count - 1):
        raise ProtocolError(
            f"{count} is not a power of 2 of at least {MIN_COUNT}",
            field="Count",
            section="RFC 4656 §3.1",
        )
    if count > max_count:
        raise ProtocolError(
            f"{count} exceeds this client's limit of {max_count} (raise it with --max-count)",
            field="Count",
            section="RFC 5357 §6",
        )


@dataclass(frozen=True, slots=True)
class Channels:
    """The session keys (None in unauthenticated mode) and the sending channel."""

    keys: SessionKeys | None = field(repr=False)
    tx: ControlSender

    def receiver(self, iv: bytes) -> ControlReceiver:
        """The receiving channel from the peer's IV (Client-IV or Server-IV)."""
        return OpenControlReceiver() if self.keys is None else SecureControlReceiver(self.keys, iv)


OPEN_CHANNELS = Channels(None, OpenControlSender())


@dataclass(frozen=True, slots=True)
class Security:
    """What connection set-up settled: the mode, keys and where they came from."""

    mode: TwampMode
    mode_word: int  # as sent in the Set-Up-Response, key-source bits included
    keys: SessionKeys | None = field(repr=False)
    key_source: KeySourceKind
    label: str  # the KeyID's identity, or the IKE SA's SPIs

    @property
    def ike_spis(self) -> tuple[str, str] | None:
        """SPIi and SPIr in hex when the key is IKEv2-derived (D4), for reports."""
        if not self.key_source.ikev2_derived:
            return None
        spi_i, spi_r = (part.split("=")[1] for part in self.label.split())
        return spi_i, spi_r


def client_setup(
    greeting: ServerGreeting,
    mode: TwampMode,
    credentials: Credentials | None,
    random: Random,
    mode_bits: int = 0,
) -> tuple[SetUpResponse, Channels]:
    """Set-Up-Response and channels for ``mode`` (RFC 4656 §3.1).

    Random octets are drawn in the order AES Session-key, HMAC Session-key,
    Client-IV. ``mode_bits`` adds key-source bits such as IKEv2-derived (D3).
    """
    if mode is TwampMode.UNAUTHENTICATED or credentials is None:
        return SetUpResponse(int(TwampMode.UNAUTHENTICATED)), OPEN_CHANNELS
    keys = SessionKeys(random(16), random(32))
    client_iv = random(16)
    secret_key = derive_secret_key(credentials.secret, greeting.salt, greeting.count)
    token = seal_token(secret_key, greeting.challenge, keys)
    response = SetUpResponse(int(mode) | mode_bits, credentials.key_id, token, client_iv)
    return response, Channels(keys, SecureControlSender(keys, client_iv))


def server_setup(
    greeting: ServerGreeting, response: SetUpResponse, credentials: Credentials, server_iv: bytes
) -> tuple[Channels, ControlReceiver]:
    """Open the Token (AuthenticationError if its Challenge is wrong) and build both channels."""
    secret_key = derive_secret_key(credentials.secret, greeting.salt, greeting.count)
    keys = open_token(secret_key, response.token, greeting.challenge)
    return Channels(keys, SecureControlSender(keys, server_iv)), SecureControlReceiver(
        keys, response.client_iv
    )
