"""Connection set-up messages: Server-Greeting, Set-Up-Response, Server-Start.

Layouts are RFC 4656 §3.1, used unchanged by TWAMP (RFC 5357 §3.1) and by
RFC 7717 (decision D1: Set-Up-Response stays 164 octets). MBZ and Unused
fields are sent as zero and ignored on receipt, as RFC 4656 §3.1 requires
("the party that interprets the message MUST ignore the value").
"""

import struct
from dataclasses import dataclass

from otwamp.errors import ProtocolError
from otwamp.wire._fields import need_length

SECTION = "RFC 4656 §3.1"
KEY_ID_SIZE = 80


@dataclass(frozen=True, slots=True)
class ServerGreeting:
    """Server-Greeting: the modes on offer, Challenge, Salt and PBKDF2 Count."""

    modes: int
    challenge: bytes
    salt: bytes
    count: int

    SIZE = 64
    _S = struct.Struct("!12xI16s16sI12x")

    def __post_init__(self) -> None:
        if (len(self.challenge), len(self.salt)) != (16, 16):
            raise ValueError("Challenge and Salt are 16 octets each")

    def encode(self) -> bytes:
        """Encode as 64 octets."""
        return self._S.pack(self.modes, self.challenge, self.salt, self.count)

    @classmethod
    def decode(cls, data: bytes) -> "ServerGreeting":
        """Decode 64 octets."""
        need_length(data, cls.SIZE, "Server-Greeting", SECTION)
        modes, challenge, salt, count = cls._S.unpack(data)
        return cls(modes, challenge, salt, count)


def encode_key_id(identity: str | bytes) -> bytes:
    """KeyID: UTF-8, 1 to 80 octets, zero-padded to 80 (RFC 4656 §3.1)."""
    raw = identity.encode("utf-8") if isinstance(identity, str) else identity
    if not 1 <= len(raw) <= KEY_ID_SIZE:
        raise ValueError(f"a KeyID is 1 to {KEY_ID_SIZE} octets, got {len(raw)}")
    return raw.ljust(KEY_ID_SIZE, b"\0")


def decode_key_id(key_id: bytes) -> str:
    """The identity a pass-phrase KeyID names: UTF-8 up to the first zero octet."""
    try:
        return key_id.split(b"\0", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("KeyID is not UTF-8", field="KeyID", section=SECTION) from None


@dataclass(frozen=True, slots=True)
class SetUpResponse:
    """Set-Up-Response: the chosen Mode, KeyID, Token and Client-IV."""

    mode: int
    key_id: bytes = bytes(KEY_ID_SIZE)
    token: bytes = bytes(64)
    client_iv: bytes = bytes(16)

    SIZE = 164
    _S = struct.Struct("!I80s64s16s")

    def __post_init__(self) -> None:
        if (len(self.key_id), len(self.token), len(self.client_iv)) != (80, 64, 16):
            raise ValueError("KeyID, Token and Client-IV are 80, 64 and 16 octets")

    def encode(self) -> bytes:
        """Encode as 164 octets."""
        return self._S.pack(self.mode, self.key_id, self.token, self.client_iv)

    @classmethod
    def decode(cls, data: bytes) -> "SetUpResponse":
        """Decode 164 octets."""
        need_length(data, cls.SIZE, "Set-Up-Response", SECTION)
        return cls(*cls._S.unpack(data))


@dataclass(frozen=True, slots=True)
class ServerStart:
    """Server-Start: Accept, Server-IV and the server's Start-Time."""

    accept: int
    server_iv: bytes = bytes(16)
    start_time: int = 0

    SIZE = 48
    CLEAR_SIZE = 32  # octets 32-47 (Start-Time, MBZ) are encrypted in secured modes
    _S = struct.Struct("!15xB16sQ8x")

    def __post_init__(self) -> None:
        if len(self.server_iv) != 16:
            raise ValueError("Server-IV is 16 octets")

    def encode(self) -> bytes:
        """Encode as 48 octets (plaintext)."""
        return self._S.pack(self.accept, self.server_iv, self.start_time)

    @classmethod
    def decode(cls, data: bytes) -> "ServerStart":
        """Decode 48 octets (plaintext)."""
        need_length(data, cls.SIZE, "Server-Start", SECTION)
        return cls(*cls._S.unpack(data))
