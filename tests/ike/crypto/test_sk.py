"""SK payloads of the strongSwan 5.9.8 vectors: decrypt, verify, and re-encrypt byte for byte."""

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import AuthenticationError, ProtocolError
from otwamp.ike.crypto.sk import Encryption, Integrity, Protection
from otwamp.ike.registry import EncrId, ExchangeType, HeaderFlag, IntegId
from otwamp.ike.wire.message import Message, decode_payloads
from otwamp.ike.wire.payloads import Encrypted

from ..vectors import Replay, protection


def test_recorded_message_decrypts_to_recorded_plaintext(encrypted):
    opened = protection(encrypted).open(encrypted.raw)
    outer = Message.decode(encrypted.raw)
    sk = outer.find(Encrypted)
    assert sk is not None
    inner = bytes.fromhex(encrypted.message["decrypted_inner_payloads_hex"])
    assert opened.payloads == decode_payloads(sk.first_payload, inner)
    assert (opened.spi_i, opened.message_id) == (outer.spi_i, outer.message_id)


def test_recorded_message_re_encrypts_byte_for_byte(encrypted):
    opened = protection(encrypted).open(encrypted.raw)
    padding = bytes.fromhex(encrypted.message["sk_padding_and_padlen_hex"])[:-1]
    random = Replay(bytes.fromhex(encrypted.message["sk_iv"]) + padding)
    assert protection(encrypted).seal(opened, random) == encrypted.raw
    assert random.exhausted


def test_tampered_ciphertext_fails_authentication(encrypted):
    raw = bytearray(encrypted.raw)
    raw[-20] ^= 0x01
    with pytest.raises(AuthenticationError):
        protection(encrypted).open(bytes(raw))


def test_tampered_header_fails_authentication(encrypted):
    # The ICV and the GCM AAD cover the IKE header (RFC 7296 §3.14, RFC 5282 §5.1).
    raw = bytearray(encrypted.raw)
    raw[23] ^= 0x01  # Message ID
    with pytest.raises(AuthenticationError):
        protection(encrypted).open(bytes(raw))


def test_plain_message_is_refused_by_open():
    plain = Message(b"i" * 8, b"r" * 8, ExchangeType.INFORMATIONAL, HeaderFlag.INITIATOR, 1, ())
    sealer = _cbc()
    with pytest.raises(ProtocolError, match="SK"):
        sealer.open(plain.encode())


def _cbc() -> Protection:
    return Protection(
        Encryption.from_id(EncrId.AES_CBC, 128),
        Integrity.from_id(IntegId.HMAC_SHA2_256_128),
        b"e" * 16,
        b"a" * 32,
    )


def _gcm() -> Protection:
    return Protection(Encryption.from_id(EncrId.AES_GCM_16, 256), None, b"e" * 36, b"")


@pytest.mark.parametrize("sealer", [_cbc(), _gcm()], ids=["cbc", "gcm"])
def test_keys_are_not_in_repr(sealer):
    assert "eeee" not in repr(sealer) and "aaaa" not in repr(sealer)


@given(st.binary(max_size=300), st.booleans())
def test_random_octets_raise_only_protocol_error(data, gcm):
    with contextlib.suppress(ProtocolError):
        (_gcm() if gcm else _cbc()).open(data)


@given(st.binary(min_size=1, max_size=200), st.booleans())
def test_random_sk_body_raises_only_protocol_error(body, gcm):
    message = Message(
        b"i" * 8,
        b"r" * 8,
        ExchangeType.INFORMATIONAL,
        HeaderFlag.INITIATOR,
        2,
        (Encrypted(0, body),),
    )
    with contextlib.suppress(ProtocolError):
        (_gcm() if gcm else _cbc()).open(message.encode())
