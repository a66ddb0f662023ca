"""Test-packet protection of one TWAMP session, by mode (RFC 5357 §4.1.2, §4.2.1).

Open and mixed modes send test packets in the clear (RFC 5618 §3.2);
authenticated mode encrypts the first block and HMACs it, encrypted mode
encrypts and HMACs everything before the HMAC field. Keys come from the SID
and the control session keys (RFC 4656 §4.1.2).
"""

from dataclasses import dataclass

from otwamp.security.sessionkeys import SessionKeys
from otwamp.security.testkeys import derive_test_session_keys
from otwamp.security.testpacket import PacketLayout, PacketMode, PacketProtection
from otwamp.wire.registry import TwampMode


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
