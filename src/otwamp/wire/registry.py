"""IANA registries of O/TWAMP-Control as enums, each citing its RFC."""

import enum


class TwampMode(enum.IntFlag):
    """TWAMP-Modes (RFC 5357 §3.1; registry per RFC 7717 §7 and RFC 5618, 5938, 6038, 7750)."""

    UNAUTHENTICATED = 0x001  # RFC 4656 §3.1
    AUTHENTICATED = 0x002  # RFC 4656 §3.1
    ENCRYPTED = 0x004  # RFC 4656 §3.1
    MIXED = 0x008  # RFC 5618 §3.1: encrypted control, unauthenticated test
    INDIVIDUAL_SESSION_CONTROL = 0x010  # RFC 5938 §3.1
    REFLECT_OCTETS = 0x020  # RFC 6038 §3.1
    SYMMETRICAL_SIZE = 0x040  # RFC 6038 §3.1
    IKEV2_DERIVED = 0x080  # RFC 7717 §7
    REFLECT_DSCP_ECN = 0x100  # RFC 7750 §2


class OwampMode(enum.IntFlag):
    """OWAMP-Modes (RFC 4656 §3.1; registry per RFC 7718 §3.2.4)."""

    UNAUTHENTICATED = 0x01
    AUTHENTICATED = 0x02
    ENCRYPTED = 0x04
    RESERVED_3 = 0x08  # RFC 7718 §3.2.4: reserved
    IKEV2_DERIVED = 0x10  # RFC 7718 §3.2.4, RFC 7717 §7


SECURITY_MODES = TwampMode.UNAUTHENTICATED | TwampMode.AUTHENTICATED | TwampMode.ENCRYPTED
MODE_NAMES: dict[TwampMode, str] = {
    TwampMode.UNAUTHENTICATED: "open",
    TwampMode.AUTHENTICATED: "authenticated",
    TwampMode.ENCRYPTED: "encrypted",
    TwampMode.MIXED: "mixed",
}


def mode_names(modes: int) -> list[str]:
    """The security-mode names set in a TWAMP Modes word, weakest first."""
    return [name for bit, name in MODE_NAMES.items() if modes & bit]


class Accept(enum.IntEnum):
    """Values of the Accept field (RFC 4656 §3.3; 6 from RFC 7717 §5.2)."""

    OK = 0
    FAILURE = 1
    INTERNAL_ERROR = 2
    NOT_SUPPORTED = 3
    PERMANENT_RESOURCE_LIMITATION = 4
    TEMPORARY_RESOURCE_LIMITATION = 5
    NO_IKEV2_SA = 6

    @classmethod
    def interpret(cls, value: int) -> "Accept":
        """A received value; unknown values mean 1 (RFC 4656 §3.3)."""
        try:
            return cls(value)
        except ValueError:
            return cls.FAILURE

    @property
    def meaning(self) -> str:
        """The RFC's words for this value."""
        return _ACCEPT_MEANINGS[self]


_ACCEPT_MEANINGS = {
    Accept.OK: "OK",
    Accept.FAILURE: "failure, reason unspecified",
    Accept.INTERNAL_ERROR: "internal error",
    Accept.NOT_SUPPORTED: "some aspect of the request is not supported",
    Accept.PERMANENT_RESOURCE_LIMITATION: "permanent resource limitations",
    Accept.TEMPORARY_RESOURCE_LIMITATION: "temporary resource limitations",
    Accept.NO_IKEV2_SA: "no IKEv2 SA matches the KeyID's SPIs (RFC 7717 §5.2)",
}


class TwampCommand(enum.IntEnum):
    """TWAMP-Control Command Numbers (RFC 5357 §8.3 registry; RFC 5938 §4)."""

    START_SESSIONS = 2
    STOP_SESSIONS = 3
    REQUEST_TW_SESSION = 5
    EXPERIMENTATION = 6
    START_N_SESSION = 7
    START_N_ACK = 8
    STOP_N_SESSION = 9
    STOP_N_ACK = 10


class OwampCommand(enum.IntEnum):
    """OWAMP-Control command numbers (RFC 4656 §3.4)."""

    REQUEST_SESSION = 1
    START_SESSIONS = 2
    STOP_SESSIONS = 3
    FETCH_SESSION = 4
