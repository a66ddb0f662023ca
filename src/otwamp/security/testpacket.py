"""O/TWAMP-Test packet protection in authenticated and encrypted modes.

Authenticated mode encrypts the first block with AES-ECB; encrypted mode
encrypts every octet before the HMAC with AES-CBC, IV 0, each packet its own
chain. The HMAC (HMAC-SHA1-128 under the test HMAC key) covers the same octets
as plaintext, sits right after them, and is never encrypted; padding after it
is neither covered nor encrypted (RFC 4656 §4.1.2, RFC 5357 §4.1.2, §4.2.1).
Mixed mode (RFC 5618) and open mode send test packets unprotected.
"""

from collections.abc import Callable
from enum import Enum

from cryptography.hazmat.primitives.ciphers import Cipher, modes

from otwamp.errors import ProtocolError
from otwamp.security.primitives import BLOCK_LEN, HMAC_LEN, Hmac128, cbc, ecb, require_equal
from otwamp.security.sessionkeys import SessionKeys


class PacketMode(Enum):
    """How much of a test packet AES protects."""

    AUTHENTICATED = "authenticated"  # the first block, AES-ECB
    ENCRYPTED = "encrypted"  # every octet before the HMAC, AES-CBC with IV 0


class PacketLayout(Enum):
    """Where a protected test packet's HMAC starts, with the section that says so."""

    # OWAMP-Test and TWAMP Session-Sender packets: 48 octets before padding.
    SENDER = (32, "RFC 4656 §4.1.2")
    # TWAMP Session-Reflector packets: 112 octets before padding (erratum 5045).
    REFLECTOR = (96, "RFC 5357 §4.2.1")

    def __init__(self, hmac_offset: int, section: str) -> None:
        self.hmac_offset = hmac_offset
        self.section = section

    @property
    def min_length(self) -> int:
        """The shortest protected packet: everything up to and including the HMAC."""
        return self.hmac_offset + HMAC_LEN


class PacketProtection:
    """Protects and checks the packets of one layout in one test session.

    Cipher and HMAC set-up happens once here, not per packet.
    """

    __slots__ = ("_cbc", "_covered", "_decrypt", "_encrypt", "_hmac", "_layout")

    def __init__(self, keys: SessionKeys, mode: PacketMode, layout: PacketLayout) -> None:
        self._layout = layout
        self._hmac = Hmac128(keys.hmac_key)
        self._encrypt: Callable[[bytes], bytes]
        self._decrypt: Callable[[bytes], bytes]
        self._cbc: Cipher[modes.CBC] | None = None
        if mode is PacketMode.AUTHENTICATED:
            self._covered = BLOCK_LEN
            # ECB chains nothing, so one pair of contexts serves every packet.
            ecb_cipher = ecb(keys.aes_key)
            self._encrypt = ecb_cipher.encryptor().update
            self._decrypt = ecb_cipher.decryptor().update
        else:
            self._covered = layout.hmac_offset
            # Each packet is a CBC chain of its own from IV 0: one context per packet.
            cbc_cipher = self._cbc = cbc(keys.aes_key)
            self._encrypt = lambda data: cbc_cipher.encryptor().update(data)
            self._decrypt = lambda data: cbc_cipher.decryptor().update(data)

    def protect(self, packet: bytes) -> bytes:
        """Wire form of a plaintext packet: its HMAC field filled in, the covered octets
        encrypted, the rest unchanged."""
        if len(packet) < self._layout.min_length:
            raise ValueError(
                f"a protected test packet has at least {self._layout.min_length} octets"
            )
        covered = packet[: self._covered]
        offset = self._layout.hmac_offset
        return b"".join(
            (
                self._encrypt(covered),
                packet[self._covered : offset],
                self._hmac.digest(covered),
                packet[offset + HMAC_LEN :],
            )
        )

    def begin(self, packet: bytes | bytearray) -> Callable[[bytearray], bytearray]:
        """Encrypted mode in two steps: the first block now, the rest by the function returned.

        The first block (Sequence Number and MBZ) does not depend on the
        Timestamp in the second, so its AES-CBC encryption and its HMAC update
        run before the stamp (RFC 7717 §1); the function takes the stamped
        plaintext (the same first block) and returns its wire form, as
        ``protect`` would, running only the rest of the CBC chain and the HMAC.
        """
        if self._cbc is None:
            raise ValueError("only encrypted mode covers the Timestamp")
        if len(packet) < self._layout.min_length:
            raise ValueError(
                f"a protected test packet has at least {self._layout.min_length} octets"
            )
        first = bytes(packet[:BLOCK_LEN])
        chain, mac = self._cbc.encryptor(), self._hmac.new()
        mac.update(first)
        covered, offset = self._covered, self._layout.hmac_offset
        wire = bytearray(packet)
        wire[:BLOCK_LEN] = chain.update(first)
        update, encrypt = mac.update, chain.update

        def finish(plaintext: bytearray) -> bytearray:
            rest = memoryview(plaintext)[BLOCK_LEN:covered]
            wire[BLOCK_LEN:covered] = encrypt(rest)
            update(rest)
            wire[offset : offset + HMAC_LEN] = mac.finalize()[:HMAC_LEN]
            return wire

        return finish

    def unprotect(self, packet: bytes) -> bytes:
        """Plaintext of a received packet, HMAC checked; the HMAC field and padding as received.

        Raises ProtocolError for a packet too short for its layout and
        AuthenticationError when the HMAC does not match.
        """
        if len(packet) < self._layout.min_length:
            raise ProtocolError(
                f"{len(packet)} octets, at least {self._layout.min_length} expected",
                field="test packet length",
                section=self._layout.section,
            )
        plaintext = self._decrypt(packet[: self._covered])
        offset = self._layout.hmac_offset
        require_equal(
            self._hmac.digest(plaintext),
            packet[offset : offset + HMAC_LEN],
            "HMAC does not match the packet",
            field="HMAC",
            section=self._layout.section,
        )
        return plaintext + packet[self._covered :]
