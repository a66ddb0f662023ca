"""TWAMP-Test formats of the optional modes: RFC 6038 and RFC 7750.

Reflect Octets (RFC 6038 §4.2, §5.1.2, §5.2.1) makes the reflector return
"Length of padding to reflect" octets of the sender's padding at the start
of its own; Symmetrical Size (RFC 6038 §5.1.4, §5.2.2) starts the sender's
padding with MBZ octets and makes the reply exactly as long as the sender's
packet; DSCP and ECN Monitoring (RFC 7750 §2.2.1) adds the S-DSCP-ECN octet
after the Sender TTL of the reflector's packet. ``PacketFormat`` gathers what
one session uses; the engines ask it for offsets and layouts.
"""

import struct
from dataclasses import dataclass

from otwamp.wire.registry import TwampMode
from otwamp.wire.twamp_test import (
    REFLECTOR_AUTH,
    REFLECTOR_OPEN,
    SECTION_REFLECTOR,
    SENDER_AUTH_SIZE,
    SENDER_OPEN_SIZE,
    Layout,
)

INDIVIDUAL = TwampMode.INDIVIDUAL_SESSION_CONTROL
EXTENSION_BITS = int(
    TwampMode.INDIVIDUAL_SESSION_CONTROL
    | TwampMode.REFLECT_OCTETS
    | TwampMode.SYMMETRICAL_SIZE
    | TwampMode.REFLECT_DSCP_ECN
)
EXTENSION_NAMES: dict[str, TwampMode] = {
    "individual": TwampMode.INDIVIDUAL_SESSION_CONTROL,  # RFC 5938
    "reflect-octets": TwampMode.REFLECT_OCTETS,  # RFC 6038
    "symmetrical-size": TwampMode.SYMMETRICAL_SIZE,  # RFC 6038
    "dscp-ecn": TwampMode.REFLECT_DSCP_ECN,  # RFC 7750
}

_ESTIMATES = ((2, "Error Estimate"), (6, "Sender Error Estimate"))
# RFC 7750 Figure 2: as RFC 5357's, then S-DSCP-ECN and 2 MBZ octets after the Sender TTL.
REFLECTOR_OPEN_DSCP_ECN = Layout(
    struct.Struct("!IQH2xQIQH2xBB2x"),
    False,
    _ESTIMATES,
    "Session-Reflector packet",
    "RFC 7750 §2.2.1",
)
# RFC 7750 Figure 3: S-DSCP-ECN takes the first of the MBZ octets after the Sender TTL.
REFLECTOR_AUTH_DSCP_ECN = Layout(
    struct.Struct("!I12xQH6xQ8xI12xQH6xBB14x"),
    True,
    _ESTIMATES,
    "Session-Reflector packet",
    SECTION_REFLECTOR,
)
# MBZ octets that start a Symmetrical Size sender's padding: RFC 6038 §5.1.4-5.1.5 (27
# unauthenticated, 56 authenticated/encrypted), RFC 7750 §2.2.2 Figure 4 (28 with DSCP/ECN).
_SYMMETRIC_MBZ = {(False, False): 27, (False, True): 28, (True, False): 56, (True, True): 56}


def split_dscp_ecn(octet: int) -> tuple[int, int]:
    """DSCP and ECN of an S-DSCP-ECN octet (RFC 7750 §2.2.1 Figure 1) or a TOS octet."""
    return octet >> 2, octet & 0x3


@dataclass(frozen=True, slots=True)
class PacketFormat:
    """The TWAMP-Test formats of one session, from the Mode and its Request-TW-Session."""

    secured: bool = False  # authenticated or encrypted test packets
    reflect_length: int | None = None  # Length of padding to reflect; None: no Reflect Octets
    symmetrical: bool = False
    dscp_ecn: bool = False

    @classmethod
    def of(cls, mode: int, secured: bool, reflect_length: int = 0) -> "PacketFormat":
        """The format a Mode word (Set-Up-Response) and the request's length select."""
        return cls(
            secured,
            reflect_length if mode & TwampMode.REFLECT_OCTETS else None,
            bool(mode & TwampMode.SYMMETRICAL_SIZE),
            bool(mode & TwampMode.REFLECT_DSCP_ECN),
        )

    @property
    def reflector_layout(self) -> Layout:
        """The Session-Reflector packet's fixed fields (RFC 5357 §4.2.1, RFC 7750 §2.2.1)."""
        if self.dscp_ecn:
            return REFLECTOR_AUTH_DSCP_ECN if self.secured else REFLECTOR_OPEN_DSCP_ECN
        return REFLECTOR_AUTH if self.secured else REFLECTOR_OPEN

    @property
    def sender_header(self) -> int:
        """Octets of the sender packet before its Packet Padding (RFC 5357 §4.1.2)."""
        return SENDER_AUTH_SIZE if self.secured else SENDER_OPEN_SIZE

    @property
    def symmetric_mbz(self) -> int:
        """MBZ octets at the start of the sender's padding (0 without Symmetrical Size)."""
        return _SYMMETRIC_MBZ[self.secured, self.dscp_ecn] if self.symmetrical else 0

    @property
    def reflect_from(self) -> int:
        """Where, in the sender's packet, the octets that start the reply's padding are.

        With Reflect Octets: the Packet Padding (to be reflected), after any Symmetrical
        Size MBZ (RFC 6038 §5.1.2, §5.1.5). Without: the same offset as in the reply, so
        the reflector re-uses the sender's padding truncated (RFC 5357 §4.2.1).
        """
        if self.reflect_length is None:
            return self.reflector_layout.size
        return self.sender_header + self.symmetric_mbz

    @property
    def equal_padding(self) -> int:
        """The Padding Length for equal sizes both ways that carries the octets to reflect.

        RFC 6038 §4.2, §5.1.3: at least 27 (56 in RFC 6038's authenticated count, 64 with
        erratum 5045) plus the Length of padding to reflect; RFC 7750 §2.2.2 adds the
        S-DSCP-ECN field's octets in unauthenticated mode.
        """
        return self.reflector_layout.size - self.sender_header + (self.reflect_length or 0)

    def padding_problem(self, padding_length: int) -> str | None:
        """Why a Padding Length cannot give what the session asks, or None (RFC 6038 §4.3)."""
        needs = bool(self.reflect_length) or self.symmetrical
        if needs and padding_length < self.equal_padding:
            return (
                f"Padding Length {padding_length} is less than the {self.equal_padding} octets "
                "that equal sizes and the octets to reflect need (RFC 6038 §4.3)"
            )
        return None

    def sender_padding(self, padding_length: int, server_octets: int, fill: bytes) -> bytes:
        """The sender's Packet Padding: MBZ, the octets to reflect, then ``fill`` octets.

        RFC 6038 §5.1.2: a non-zero Server octets value starts the Packet Padding (to be
        reflected); §5.1.4: Symmetrical Size starts the padding with MBZ octets.
        """
        padding = bytearray(fill[:padding_length].ljust(padding_length, b"\0"))
        mbz = min(self.symmetric_mbz, padding_length)
        padding[:mbz] = bytes(mbz)
        if self.reflect_length and server_octets and padding_length >= mbz + 2:
            padding[mbz : mbz + 2] = server_octets.to_bytes(2, "big")
        return bytes(padding)

    def reflected(self, padding: bytes) -> bytes:
        """The octets of a sender's ``padding`` that the reflector must return (RFC 6038 §5.2.1)."""
        if not self.reflect_length:
            return b""
        start = self.reflect_from - self.sender_header
        return padding[start : start + self.reflect_length]
