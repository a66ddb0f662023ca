"""The Encrypted (SK) payload: AES-CBC with HMAC, and AES-GCM (RFC 7296 §3.14, RFC 5282)."""

from dataclasses import dataclass, field, replace

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import constant_time, hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher as _Cipher
from cryptography.hazmat.primitives.ciphers import algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.ike.crypto.entropy import RandomSource
from otwamp.ike.registry import EncrId, IntegId
from otwamp.ike.wire.message import Message, decode_payloads, encode_payloads
from otwamp.ike.wire.payloads import Encrypted

_SECTION = "RFC 7296 §3.14"
_AES_BLOCK = 16
_AES_KEY_BITS = (128, 192, 256)
_GCM_SALT = 4  # RFC 5282 §7.1: 4 salt octets follow the key in SK_e*.
_GCM_IV = 8  # RFC 5282 §3.1
_GCM_TAG = 16  # ENCR_AES_GCM_16 (RFC 5282 §8)

# Hash and truncated ICV length of each integrity algorithm (RFC 2404, RFC 4868 §2.1.1).
_INTEGRITY: dict[int, tuple[type[hashes.HashAlgorithm], int]] = {
    IntegId.HMAC_SHA1_96: (hashes.SHA1, 12),
    IntegId.HMAC_SHA2_256_128: (hashes.SHA256, 16),
    IntegId.HMAC_SHA2_384_192: (hashes.SHA384, 24),
    IntegId.HMAC_SHA2_512_256: (hashes.SHA512, 32),
}


@dataclass(frozen=True)
class Integrity:
    """An HMAC integrity algorithm whose key is the hash size (RFC 4868 §2.1.1)."""

    integ_id: int

    @classmethod
    def from_id(cls, integ_id: int) -> "Integrity":
        """The algorithm for a transform ID; unsupported IDs raise ProtocolError."""
        if integ_id not in _INTEGRITY:
            raise ProtocolError(
                f"unsupported integrity algorithm {integ_id}",
                field="INTEG",
                section="RFC 7296 §3.3.2",
            )
        return cls(integ_id)

    @property
    def key_len(self) -> int:
        """Key length in octets."""
        return _INTEGRITY[self.integ_id][0]().digest_size

    @property
    def icv_len(self) -> int:
        """Truncated ICV length in octets."""
        return _INTEGRITY[self.integ_id][1]

    def icv(self, key: bytes, data: bytes) -> bytes:
        """The truncated HMAC of ``data``."""
        mac = hmac.HMAC(key, _INTEGRITY[self.integ_id][0]())
        mac.update(data)
        return mac.finalize()[: self.icv_len]


@dataclass(frozen=True)
class Encryption:
    """AES-CBC (RFC 3602) or AES-GCM with a 16-octet tag (RFC 5282) of ``key_bits``."""

    encr_id: int
    key_bits: int

    @classmethod
    def from_id(cls, encr_id: int, key_bits: int | None) -> "Encryption":
        """The cipher for a transform ID and Key Length; others raise ProtocolError."""
        if encr_id not in (EncrId.AES_CBC, EncrId.AES_GCM_16) or key_bits not in _AES_KEY_BITS:
            raise ProtocolError(
                f"unsupported cipher {encr_id}/{key_bits}", field="ENCR", section="RFC 7296 §3.3.2"
            )
        return cls(encr_id, key_bits)

    @property
    def aead(self) -> bool:
        """True for AES-GCM, which needs no integrity transform (RFC 5282 §8)."""
        return self.encr_id == EncrId.AES_GCM_16

    @property
    def key_len(self) -> int:
        """Length of SK_e* in octets, salt included (RFC 5282 §7.1)."""
        return self.key_bits // 8 + (_GCM_SALT if self.aead else 0)

    @property
    def iv_len(self) -> int:
        """IV length in octets (RFC 3602 §3, RFC 5282 §3.1)."""
        return _GCM_IV if self.aead else _AES_BLOCK

    @property
    def block(self) -> int:
        """The alignment of the padded plaintext: none for GCM, the AES block for CBC."""
        return 1 if self.aead else _AES_BLOCK


@dataclass(frozen=True)
class Protection:
    """One direction of an IKE SA's SK payload: algorithms and keys (SK_e*, SK_a*)."""

    encryption: Encryption
    integrity: Integrity | None
    encryption_key: bytes = field(repr=False)
    integrity_key: bytes = field(repr=False)

    @property
    def checksum_len(self) -> int:
        """ICV or GCM tag length."""
        if self.integrity is None:
            return _GCM_TAG
        return self.integrity.icv_len

    def seal(self, message: Message, random: RandomSource) -> bytes:
        """Encode ``message`` with all its payloads inside one SK payload (RFC 7296 §3.14)."""
        first_type, inner = encode_payloads(message.payloads)
        iv = random(self.encryption.iv_len)
        pad_len = -(len(inner) + 1) % self.encryption.block
        plaintext = inner + random(pad_len) + bytes([pad_len])
        body_len = len(iv) + len(plaintext) + self.checksum_len
        draft = replace(message, payloads=(Encrypted(first_type, bytes(body_len)),)).encode()
        prefix = draft[: len(draft) - body_len]
        if self.integrity is None:
            return prefix + iv + self._gcm().encrypt(self._nonce(iv), plaintext, prefix)
        encryptor = self._cbc(iv).encryptor()
        protected = prefix + iv + encryptor.update(plaintext) + encryptor.finalize()
        return protected + self.integrity.icv(self.integrity_key, protected)

    def open(self, data: bytes) -> Message:
        """Verify and decrypt a message whose only payload is SK; return the inner payloads."""
        message = Message.decode(data)
        if len(message.payloads) != 1 or not isinstance(message.payloads[0], Encrypted):
            raise ProtocolError("expected one SK payload", field="Next Payload", section=_SECTION)
        sk = message.payloads[0]
        prefix = data[: len(data) - len(sk.data)]
        iv = sk.data[: self.encryption.iv_len]
        ciphertext = sk.data[len(iv) :]
        if len(ciphertext) < self.checksum_len + 1 or (
            (len(ciphertext) - self.checksum_len) % self.encryption.block
        ):
            raise ProtocolError("bad length", field="Encrypted IKE Payloads", section=_SECTION)
        plaintext = self._decrypt(prefix, iv, ciphertext)
        pad_len = plaintext[-1]
        if pad_len + 1 > len(plaintext):
            raise ProtocolError("longer than the plaintext", field="Pad Length", section=_SECTION)
        inner = plaintext[: len(plaintext) - pad_len - 1]
        return replace(message, payloads=decode_payloads(sk.first_payload, inner))

    def _decrypt(self, prefix: bytes, iv: bytes, ciphertext: bytes) -> bytes:
        if self.integrity is None:
            try:
                return self._gcm().decrypt(self._nonce(iv), ciphertext, prefix)
            except InvalidTag:
                raise AuthenticationError(
                    "GCM tag mismatch", field="Integrity Checksum Data", section="RFC 5282 §5"
                ) from None
        body, checksum = ciphertext[: -self.checksum_len], ciphertext[-self.checksum_len :]
        expected = self.integrity.icv(self.integrity_key, prefix + iv + body)
        if not constant_time.bytes_eq(expected, checksum):
            raise AuthenticationError(
                "ICV mismatch", field="Integrity Checksum Data", section=_SECTION
            )
        decryptor = self._cbc(iv).decryptor()
        return decryptor.update(body) + decryptor.finalize()

    def _cbc(self, iv: bytes) -> _Cipher[modes.CBC]:
        return _Cipher(algorithms.AES(self.encryption_key), modes.CBC(iv))

    def _gcm(self) -> AESGCM:
        return AESGCM(self.encryption_key[:-_GCM_SALT])

    def _nonce(self, iv: bytes) -> bytes:
        """Salt | IV (RFC 5282 §4)."""
        return self.encryption_key[-_GCM_SALT:] + iv
