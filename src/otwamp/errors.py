"""The one exception hierarchy of otwamp.

Messages never carry key material: callers pass field names, sections and
peer addresses, never secrets.
"""


class OtwampError(Exception):
    """Base of every error otwamp raises on purpose."""


class ProtocolError(OtwampError):
    """Malformed or unexpected bytes from a peer.

    ``field`` names the offending field and ``section`` the RFC section that
    constrains it, so the message tells an operator what was wrong and where
    the rule is written.
    """

    def __init__(self, message: str, *, field: str = "", section: str = "") -> None:
        self.field = field
        self.section = section
        where = f" ({section})" if section else ""
        what = f"{field}: " if field else ""
        super().__init__(f"{what}{message}{where}")


class AuthenticationError(ProtocolError):
    """An HMAC, Token or Challenge check failed (RFC 4656 §3.1-3.2)."""


class RefusedError(OtwampError):
    """The peer refused a request with a non-zero Accept value (RFC 4656 §3.3)."""


class ConfigError(OtwampError):
    """Invalid configuration or command-line input."""


class KeySourceError(OtwampError):
    """A key source could not provide a shared secret."""
