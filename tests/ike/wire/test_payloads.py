"""Field checks of individual payloads (RFC 7296 §3.4-3.11)."""

import pytest

from otwamp.errors import ProtocolError
from otwamp.ike.registry import CertEncoding, DhGroup, IdType, NotifyType, ProtocolId
from otwamp.ike.wire.identity import Identity
from otwamp.ike.wire.payloads import CertificateRequest, Delete, Nonce, Notify
from otwamp.ike.wire.sa import SecurityAssociation


@pytest.mark.parametrize(
    ("identity", "text", "body"),
    [
        (Identity.address("192.0.2.7"), "192.0.2.7", "01000000c0000207"),
        (
            Identity.address("2001:db8::1"),
            "2001:db8::1",
            "0500000020010db8000000000000000000000001",
        ),
        (Identity.fqdn("a.example"), "a.example", "02000000612e6578616d706c65"),
        (
            Identity.rfc822("u@a.example"),
            "u@a.example",
            "03000000" + b"u@a.example".hex(),
        ),
        (Identity(IdType.KEY_ID, b"\x01\x02"), "KEY_ID:0102", "0b0000000102"),
    ],
)
def test_identity_bodies(identity, text, body):
    assert str(identity) == text
    assert identity.encode_body().hex() == body
    assert Identity.decode_body(identity.encode_body()) == identity


@pytest.mark.parametrize(
    ("id_type", "data"),
    [
        (IdType.IPV4_ADDR, b"\x01\x02\x03"),
        (IdType.IPV6_ADDR, b"\x00" * 4),
        (IdType.FQDN, b"a\x00b"),
        (IdType.RFC822_ADDR, b"\xff"),
        (IdType.DER_ASN1_DN, b""),
    ],
)
def test_identity_data_is_checked(id_type, data):
    with pytest.raises(ProtocolError, match="Identification Data"):
        Identity(id_type, data)


@pytest.mark.parametrize("length", [15, 257])
def test_nonce_length_is_checked(length):
    with pytest.raises(ProtocolError, match="Nonce Data"):
        Nonce(b"n" * length)


@pytest.mark.parametrize(
    ("notify_type", "data"),
    [
        (NotifyType.COOKIE, b""),
        (NotifyType.COOKIE, b"c" * 65),
        (NotifyType.INVALID_KE_PAYLOAD, b"\x00"),
        (NotifyType.NAT_DETECTION_SOURCE_IP, b"\x00" * 19),
        (NotifyType.SIGNATURE_HASH_ALGORITHMS, b"\x00\x02\x00"),
    ],
)
def test_notify_data_is_checked(notify_type, data):
    with pytest.raises(ProtocolError, match="Notification Data"):
        Notify(notify_type, data)


def test_notify_accessors():
    assert Notify.invalid_ke(DhGroup.ECP_384).dh_group == DhGroup.ECP_384
    assert Notify.hash_algorithms((2, 3, 4)).algorithms == (2, 3, 4)
    assert Notify.hash_algorithms((2, 3, 4)).data.hex() == "000200030004"


def test_delete_bodies():
    assert Delete().encode_body().hex() == "01000000"
    esp = Delete(ProtocolId.ESP, (b"\x00\x00\x00\x01", b"\x00\x00\x00\x02"))
    assert esp.encode_body().hex() == "030400020000000100000002"
    assert Delete.decode_body(esp.encode_body()) == esp
    with pytest.raises(ProtocolError, match="SPI Size"):
        Delete.decode_body(bytes.fromhex("01040001deadbeef"))
    with pytest.raises(ProtocolError, match="Num of SPIs"):
        Delete.decode_body(bytes.fromhex("03040001deadbeef00"))


def test_certificate_request_lists_ca_hashes():
    request = CertificateRequest(CertEncoding.X509_SIGNATURE, b"a" * 20 + b"b" * 20)
    assert request.authorities == (b"a" * 20, b"b" * 20)
    with pytest.raises(ProtocolError, match="SHA-1"):
        CertificateRequest(CertEncoding.X509_SIGNATURE, b"a" * 21)


def test_sa_substructure_lengths_are_checked():
    body = bytes.fromhex(
        "0000002c010100040300000c0100000c800e0080030000080300000c0300000802000005000000080400001f"
    )
    assert SecurityAssociation.decode_body(body).proposals[0].number == 1
    with pytest.raises(ProtocolError, match="Proposal"):
        SecurityAssociation.decode_body(body[:-1])
    with pytest.raises(ProtocolError, match="Num Transforms"):
        SecurityAssociation.decode_body(body[:7] + b"\x03" + body[8:])
    with pytest.raises(ProtocolError, match="Last Substruc"):
        SecurityAssociation.decode_body(b"\x05" + body[1:])
