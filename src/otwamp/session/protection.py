"""Test-packet protection of one TWAMP session, by mode (RFC 5357 §4.1.2, §4.2.1).

Open and mixed modes send test packets in the clear (RFC 5618 §3.2);
authenticated mode encrypts the first block and HMACs it, encrypted mode
encrypts and HMACs everything before the HMAC field. Keys come from the SID
and the control session keys (RFC 4656 §4.1.2). ``open_packet`` is the one
place where a received test packet is unprotected, decoded and, when
refused, counted.
"""

from dataclasses import dataclass
from typing import Protocol

from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.security.sessionkeys import SessionKeys
from otwamp.security.testkeys import derive_test_session_keys
from otwamp.security.testpacket import PacketLayout, PacketMode, PacketProtection
from otwamp.wire.registry import TwampMode
from otwamp.wire.twamp_test import CorruptPacket, Layout


@dataclass(frozen=True, slots=True)
class SessionProtection:
    """Both directions' packet protection for one session."""

    mode: PacketMode
    sender: PacketProtection
    reflector: PacketProtection

    @property
    def encrypts_timestamp(self) -> bool:
        """Whether the send timestamp lies inside the encrypted octets (encrypted mode)."""
        return self.mode is PacketMode.ENCRYPTED


def protects(mode: int, keys: SessionKeys | None) -> bool:
    """Whether a control Mode protects test packets (authenticated or encrypted, not mixed)."""
    return keys is not None and not mode & (TwampMode.UNAUTHENTICATED | TwampMode.MIXED)


def session_protection(mode: int, sid: bytes, keys: SessionKeys | None) -> SessionProtection | None:
    """The protection a control Mode implies for test packets, or None for clear packets."""
    if keys is None or not protects(mode, keys):
        return None
    packet_mode = PacketMode.ENCRYPTED if mode & TwampMode.ENCRYPTED else PacketMode.AUTHENTICATED
    test_keys = derive_test_session_keys(sid, keys)
    return SessionProtection(
        packet_mode,
        PacketProtection(test_keys, packet_mode, PacketLayout.SENDER),
        PacketProtection(test_keys, packet_mode, PacketLayout.REFLECTOR),
    )


class DropCounts(Protocol):
    """The counters ``open_packet`` adds to, e.g. ``Dropped`` or ``ReflectorCounters``."""

    truncated: int
    corrupt: int
    auth_failures: int


def open_packet(
    data: bytes, protection: PacketProtection | None, layout: Layout, counts: DropCounts
) -> tuple[int, ...] | None:
    """The fixed fields of a received test packet, or None once counted as refused.

    Too short: ``truncated``; HMAC mismatch: ``auth_failures``; an Error
    Estimate with Multiplier 0: ``corrupt`` (RFC 4656 §4.1.2).
    """
    try:
        return layout.unpack(data if protection is None else protection.unprotect(data))
    except AuthenticationError:
        counts.auth_failures += 1
    except CorruptPacket:
        counts.corrupt += 1
    except ProtocolError:
        counts.truncated += 1
    return None
