"""One direction of an O/TWAMP-Control connection: its AES-CBC stream and HMAC chain.

In authenticated, encrypted and mixed modes each direction is one AES-128-CBC
chain under the AES Session-key, kept across messages, with IV = Client-IV
(client to server) or Server-IV (server to client); it starts with the block
after the one holding the IV (RFC 4656 §3.4, RFC 5357 §3.1; mixed mode's
control connection is that of encrypted mode, RFC 5618 §3.1). Each HMAC is
HMAC-SHA1-128 under the HMAC Session-key over exactly the plaintext sent in
that direction since the previous HMAC, computed before encryption and then
encrypted with the stream (RFC 4656 §3.2, RFC 5357 §3.2, DESIGN D13). So the
server's last Server-Start block goes through ``encrypt`` and the first
Accept-Session's HMAC covers it.

In open mode the same interface passes data through and the HMAC fields are
zero on sending and ignored on receipt (MBZ semantics, RFC 4656 §3.2).

Callers pass whole 16-octet blocks at any message boundaries they like; a
stream whose HMAC check failed is not to be used again.
"""

from abc import ABC, abstractmethod

from otwamp.security.primitives import BLOCK_LEN, HMAC_LEN, Hmac128, cbc, finish, require_equal
from otwamp.security.sessionkeys import SessionKeys

_ZERO_HMAC = bytes(HMAC_LEN)


def _require_blocks(data: bytes) -> None:
    if len(data) % BLOCK_LEN:
        raise ValueError("control data must be whole 16-octet blocks")


class ControlSender(ABC):
    """The sending side of one control direction."""

    __slots__ = ()

    @abstractmethod
    def encrypt(self, plaintext: bytes) -> bytes:
        """Wire bytes for ``plaintext``, which the next HMAC will cover."""

    @abstractmethod
    def _hmac_block(self) -> bytes:
        """Wire bytes of the HMAC over everything since the previous one."""

    def seal(self, plaintext: bytes) -> bytes:
        """Wire bytes for a message part that ends in an HMAC: ``plaintext`` then that HMAC."""
        return self.encrypt(plaintext) + self._hmac_block()


class ControlReceiver(ABC):
    """The receiving side of one control direction."""

    __slots__ = ()

    @abstractmethod
    def decrypt(self, wire: bytes) -> bytes:
        """Plaintext of ``wire``, which the next HMAC will cover."""

    @abstractmethod
    def _check_hmac(self, wire_hmac: bytes) -> None:
        """Check one 16-octet HMAC field as received."""

    def verify(self, wire_hmac: bytes) -> None:
        """Check a received HMAC field; AuthenticationError if it is wrong."""
        if len(wire_hmac) != HMAC_LEN:
            raise ValueError("an HMAC field is 16 octets")
        self._check_hmac(wire_hmac)

    def open(self, wire: bytes) -> bytes:
        """Plaintext of a message part that ends in an HMAC, checked, without the HMAC."""
        end = len(wire) - HMAC_LEN
        if end < 0:
            raise ValueError("a message part that ends in an HMAC has at least 16 octets")
        plaintext = self.decrypt(wire[:end])
        self.verify(wire[end:])
        return plaintext


class _HmacChain:
    """The HMAC accumulator of one direction (RFC 4656 §3.2, DESIGN D13)."""

    __slots__ = ("_mac", "_pending")

    def __init__(self, hmac_key: bytes) -> None:
        self._mac = Hmac128(hmac_key)
        self._pending = self._mac.new()

    def cover(self, plaintext: bytes) -> None:
        self._pending.update(plaintext)

    def take(self) -> bytes:
        """The HMAC of everything covered since the last ``take``; starts the next one."""
        digest = finish(self._pending)
        self._pending = self._mac.new()
        return digest


class SecureControlSender(ControlSender):
    """Encrypts one direction and inserts its HMACs (authenticated, encrypted, mixed modes)."""

    __slots__ = ("_cbc", "_chain")

    def __init__(self, keys: SessionKeys, iv: bytes) -> None:
        self._cbc = cbc(keys.aes_key, iv).encryptor()
        self._chain = _HmacChain(keys.hmac_key)

    def encrypt(self, plaintext: bytes) -> bytes:
        _require_blocks(plaintext)
        self._chain.cover(plaintext)
        return self._cbc.update(plaintext)

    def _hmac_block(self) -> bytes:
        return self._cbc.update(self._chain.take())


class SecureControlReceiver(ControlReceiver):
    """Decrypts one direction and checks its HMACs (authenticated, encrypted, mixed modes)."""

    __slots__ = ("_cbc", "_chain")

    def __init__(self, keys: SessionKeys, iv: bytes) -> None:
        self._cbc = cbc(keys.aes_key, iv).decryptor()
        self._chain = _HmacChain(keys.hmac_key)

    def decrypt(self, wire: bytes) -> bytes:
        _require_blocks(wire)
        plaintext = self._cbc.update(wire)
        self._chain.cover(plaintext)
        return plaintext

    def _check_hmac(self, wire_hmac: bytes) -> None:
        received = self._cbc.update(wire_hmac)
        require_equal(
            self._chain.take(),
            received,
            "HMAC does not match the control stream",
            field="HMAC",
            section="RFC 4656 §3.2",
        )


class OpenControlSender(ControlSender):
    """Open mode: plaintext on the wire, HMAC fields zero (RFC 4656 §3.2)."""

    __slots__ = ()

    def encrypt(self, plaintext: bytes) -> bytes:
        _require_blocks(plaintext)
        return plaintext

    def _hmac_block(self) -> bytes:
        return _ZERO_HMAC


class OpenControlReceiver(ControlReceiver):
    """Open mode: plaintext on the wire, HMAC fields ignored (MBZ semantics, RFC 4656 §3.2)."""

    __slots__ = ()

    def decrypt(self, wire: bytes) -> bytes:
        _require_blocks(wire)
        return wire

    def _check_hmac(self, wire_hmac: bytes) -> None:
        """Nothing to check: the receiver ignores MBZ fields."""
