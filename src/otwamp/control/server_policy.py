"""What an operator's settings tell the server machines, and the shared Accept helpers.

The machines take a ``ServerPolicy`` instead of the driver's settings: only
the values that decide protocol answers, with times in nanoseconds.
"""

import errno
import ipaddress
import logging
from dataclasses import dataclass

from otwamp.wire.registry import Accept, TwampMode

log = logging.getLogger("otwamp.server")

NS = 1_000_000_000
SERVWAIT_NS = 900 * NS  # RFC 5357 §3.1: default control inactivity timeout
REFWAIT_NS = 900 * NS  # RFC 5357 §4.2: default test inactivity timeout
PBKDF2_COUNT = 2048  # RFC 4656 §3.1: a power of 2, at least 1024


@dataclass(frozen=True, slots=True)
class ServerPolicy:
    """The settings that decide a server machine's answers."""

    modes: TwampMode = TwampMode.UNAUTHENTICATED  # security modes allowed
    ikev2_keys: bool = False  # an RFC 7717 key source is configured (D3)
    count: int = PBKDF2_COUNT  # PBKDF2 Count of the Server-Greeting (RFC 4656 §3.1)
    start_time: int = 0  # Start-Time of Server-Start: when the server started (RFC 4656 §3.1)
    servwait_ns: int = SERVWAIT_NS
    refwait_ns: int = REFWAIT_NS
    max_packets: int = 10_000_000  # per OWAMP session (docs/DECISIONS.md R24)
    max_slots: int = 1024  # per OWAMP Request-Session
    shutdown_grace_ns: int = 2 * NS  # when the server stops: time left to exchange Stop and Fetch
    message_timeout_ns: int = 10 * NS  # a whole message, once begun, or the set-up (S4)
    max_sessions_per_connection: int = 64  # test sessions one control connection may hold (S3)
    max_packets_per_connection: int = 10_000_000  # OWAMP packets scheduled on one connection (S2)
    twamp_extensions: int = 0  # TWAMP-Modes bits of RFC 5938, 6038, 7750 to offer

    def offered(self, security_bits: int, ikev2_bit: int) -> int:
        """The Modes word of the Server-Greeting: security modes plus the IKEv2 bit (D3).

        The IKEv2-derived bit is offered only with a secured mode and a key source for it.
        """
        modes = int(self.modes) & security_bits
        secured = modes & ~int(TwampMode.UNAUTHENTICATED)
        return modes | (ikev2_bit if self.ikev2_keys and secured else 0)


def bind_refusal(code: int) -> Accept:
    """The Accept value for a test port that could not be bound (RFC 4656 §3.3, R5)."""
    return (
        Accept.NOT_SUPPORTED
        if code == errno.EADDRNOTAVAIL
        else Accept.TEMPORARY_RESOURCE_LIMITATION
    )


def ip_version(host: str) -> int:
    """4 or 6."""
    return ipaddress.ip_address(host.split("%", maxsplit=1)[0]).version


def fmt(host: str, port: int) -> str:
    """host:port, IPv6 in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def key_id_text(key_id: bytes) -> str:
    """A KeyID for a log line: the identity if it is text, else hex (no key material)."""
    raw = key_id.rstrip(b"\0")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex()
    return repr(text) if text.isprintable() else raw.hex()


def spis_text(key_id: bytes) -> str:
    """The SPIs a KeyID names in IKEv2-derived mode (D4), for a log line."""
    return f"SPIi={key_id[:8].hex()} SPIr={key_id[8:16].hex()}"
