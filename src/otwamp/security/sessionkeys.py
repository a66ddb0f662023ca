"""The AES and HMAC Session-key pair of a control connection or a test session."""

from dataclasses import dataclass, field

AES_KEY_LEN = 16
HMAC_KEY_LEN = 32


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """AES Session-key (16 octets) and HMAC Session-key (32 octets) (RFC 4656 §3.1).

    The same shape serves the control connection (carried in the Token) and
    each test session (derived from the SID, RFC 4656 §4.1.2).
    """

    aes_key: bytes = field(repr=False)
    hmac_key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.aes_key) != AES_KEY_LEN or len(self.hmac_key) != HMAC_KEY_LEN:
            raise ValueError("session keys must be 16 (AES) and 32 (HMAC) octets")
