"""OWAMP-Test packets (RFC 4656 §4.1.2).

The layouts are those of TWAMP's Session-Sender packet (RFC 5357 §4.1.2 says
so), so this module reuses ``twamp_test.SenderPacket`` and its structs and
adds what is OWAMP's own: picking the layout from an OWAMP Mode and errors
that cite RFC 4656. Unauthenticated: 14 octets before padding;
authenticated and encrypted: 48 (Seq, MBZ 12, Timestamp, Error Estimate,
MBZ 6, HMAC 16). Encryption and the HMAC are ``otwamp.security``'s work;
MBZ fields are ignored on receipt.

Send schedules (RFC 4656 §3.6, §5) are not a byte format: they live in
``otwamp.session.slots``.
"""

from otwamp.wire.registry import OwampMode
from otwamp.wire.twamp_test import HMAC_SIZE, SENDER_AUTH, SENDER_OPEN, Layout, SenderPacket

__all__ = [
    "AUTH",
    "AUTH_SIZE",
    "HMAC_SIZE",
    "OPEN",
    "OPEN_SIZE",
    "SECTION",
    "SenderPacket",
    "authenticated_layout",
    "decode_packet",
    "encode_packet",
    "layout_for",
    "packet_size",
]

SECTION = "RFC 4656 §4.1.2"
# TWAMP's sender layouts, whose errors name OWAMP's packet and section.
OPEN = SENDER_OPEN.renamed("OWAMP-Test packet", SECTION)
AUTH = SENDER_AUTH.renamed("OWAMP-Test packet", SECTION)
OPEN_SIZE = OPEN.size  # 14
AUTH_SIZE = AUTH.size  # 48
_SECURITY = OwampMode.UNAUTHENTICATED | OwampMode.AUTHENTICATED | OwampMode.ENCRYPTED


def authenticated_layout(mode: int) -> bool:
    """Whether a chosen OWAMP Mode uses the 48-octet layout (RFC 4656 §4.1.2, RFC 7718)."""
    security = mode & _SECURITY
    if security == OwampMode.UNAUTHENTICATED:
        return False
    if security in (OwampMode.AUTHENTICATED, OwampMode.ENCRYPTED):
        return True
    raise ValueError(
        f"Mode {mode:#x} does not choose exactly one of open, authenticated, encrypted"
    )


def layout_for(authenticated: bool) -> Layout:
    """The OWAMP-Test layout of the open or the authenticated/encrypted modes (§4.1.2)."""
    return AUTH if authenticated else OPEN


def packet_size(mode: int, padding: int) -> int:
    """Octets of a test packet with ``padding`` octets of Packet Padding (RFC 4656 §4.1.2)."""
    if padding < 0:
        raise ValueError("Padding Length is not negative")
    return (AUTH_SIZE if authenticated_layout(mode) else OPEN_SIZE) + padding


def encode_packet(packet: SenderPacket, mode: int) -> bytes:
    """Encode for ``mode``; in the 48-octet layout the HMAC field is left zero."""
    return packet.encode(authenticated=authenticated_layout(mode))


def decode_packet(data: bytes, mode: int) -> SenderPacket:
    """Decode a (decrypted) OWAMP-Test packet; padding is what follows the fields.

    A zero Multiplier raises ``CorruptPacket``: the packet SHOULD be
    considered corrupt and discarded (§4.1.2).
    """
    return SenderPacket.decode_with(layout_for(authenticated_layout(mode)), data)
