"""Every message recorded from strongSwan 5.9.8 decodes and re-encodes byte for byte."""

import re
from collections.abc import Callable
from typing import Any

import pytest

from otwamp.errors import ProtocolError
from otwamp.ike.errors import UnsupportedCriticalPayload
from otwamp.ike.registry import ExchangeType, HeaderFlag, NotifyType, PayloadType, TransformType
from otwamp.ike.wire.header import HEADER_LEN, IkeHeader
from otwamp.ike.wire.identity import Identity, IdInitiator
from otwamp.ike.wire.message import Message, decode_payloads, encode_payloads
from otwamp.ike.wire.payloads import Encrypted, Nonce, Notify, OpaquePayload
from otwamp.ike.wire.sa import Proposal, SecurityAssociation


def _proposal(proposal: Proposal) -> dict[str, Any]:
    transforms = []
    for t in proposal.transforms:
        fields: dict[str, Any] = {
            "type": TransformType(t.transform_type).name,
            "id": t.transform_id,
        }
        if t.key_bits is not None:
            fields["key_length"] = t.key_bits
        transforms.append(fields)
    return {
        "num": proposal.number,
        "protocol_id": proposal.protocol_id,
        "spi": proposal.spi.hex(),
        "transforms": transforms,
    }


_FIELDS: dict[str, Callable[[Any], dict[str, Any]]] = {
    "SA": lambda p: {"proposals": [_proposal(x) for x in p.proposals]},
    "KE": lambda p: {"dh_group": p.dh_group, "key_data": p.data.hex()},
    "Nonce": lambda p: {"nonce": p.data.hex()},
    "Notify": lambda p: {
        "notify_type": p.notify_type,
        "notify_name": NotifyType(p.notify_type).name,
        "notify_data": p.data.hex(),
    },
    "IDi": lambda p: {
        "id_type": p.identity.id_type,
        "id_data": p.identity.data.hex(),
        "id_text": str(p.identity),
    },
    "AUTH": lambda p: {"auth_method": p.method, "auth_data": p.data.hex()},
    "CERT": lambda p: {"cert_encoding": p.encoding, "cert_der": p.data.hex()},
    "Delete": lambda p: {"protocol_id": p.protocol_id, "num_spis": len(p.spis), "spi_size": 0},
    "CERTREQ": lambda p: {},
    "SK": lambda p: {},
}
_FIELDS["IDr"] = _FIELDS["IDi"]


def _project(recorded: Any, expected: Any) -> Any:
    """The part of ``recorded`` that has the keys of ``expected``."""
    if isinstance(expected, dict):
        return {key: _project(recorded[key], value) for key, value in expected.items()}
    if isinstance(expected, list):
        return [_project(r, e) for r, e in zip(recorded, expected, strict=True)]
    return recorded


def _check_payloads(decoded: tuple[Any, ...], recorded: list[dict[str, Any]]) -> None:
    assert [p.payload_type for p in decoded] == [r["type"] for r in recorded]
    for payload, record in zip(decoded, recorded, strict=True):
        assert payload.encode_body().hex() == record["body_hex"]
        expected = _FIELDS[record["name"]](payload)
        assert _project(record, expected) == expected


def test_vectors_are_present(vector):
    assert vector["messages"], "every vector file records messages"


def test_recorded_message_round_trips(recorded):
    raw = bytes.fromhex(recorded.message["hex"])
    message = Message.decode(raw)
    header = recorded.message["header"]
    assert message.spi_i.hex() == header["spi_i"]
    assert message.spi_r.hex() == header["spi_r"]
    assert message.exchange_type == header["exchange_type"]
    assert int(message.flags) == header["flags"]
    assert message.message_id == header["message_id"]
    _check_payloads(message.payloads, recorded.message["payloads"])
    assert message.encode() == raw


def test_recorded_inner_payloads_round_trip(encrypted):
    inner_hex = encrypted.message["decrypted_inner_payloads_hex"]
    sk = Message.decode(bytes.fromhex(encrypted.message["hex"])).find(Encrypted)
    assert sk is not None
    inner = decode_payloads(sk.first_payload, bytes.fromhex(inner_hex))
    _check_payloads(inner, encrypted.message["inner_payloads"])
    assert encode_payloads(inner) == (sk.first_payload, bytes.fromhex(inner_hex))


def test_rekey_sa_carries_new_spis(rekey_vector):
    vector = rekey_vector
    rekey = vector["rekey"]
    request, response = vector["messages"][4], vector["messages"][5]
    assert request["hex"] == rekey["create_child_sa_request_hex"]
    assert response["hex"] == rekey["create_child_sa_response_hex"]
    assert Message.decode(bytes.fromhex(request["hex"])).exchange_type == (
        ExchangeType.CREATE_CHILD_SA
    )
    for index, key in ((4, "new_spi_i"), (5, "new_spi_r")):
        inner = vector["messages"][index]["inner_payloads"][0]
        body = bytes.fromhex(inner["body_hex"])
        proposal = SecurityAssociation.decode_body(body).proposals[0]
        assert proposal.spi.hex() == rekey[key]


def _init_request() -> Message:
    return Message(
        b"\x01" * 8,
        b"\x00" * 8,
        ExchangeType.IKE_SA_INIT,
        HeaderFlag.INITIATOR,
        0,
        (Nonce(b"n" * 16), Notify(NotifyType.COOKIE, b"c")),
    )


def test_header_length_must_match_datagram():
    raw = _init_request().encode()
    with pytest.raises(ProtocolError, match="Length"):
        Message.decode(raw + b"\x00")
    with pytest.raises(ProtocolError, match=re.escape("RFC 7296 §3.1")):
        Message.decode(raw[: HEADER_LEN - 1])


def test_major_version_other_than_2_is_rejected():
    raw = bytearray(_init_request().encode())
    raw[17] = 0x30
    with pytest.raises(ProtocolError, match="MjVer"):
        IkeHeader.decode(bytes(raw))


def test_unknown_non_critical_payload_is_kept_opaque_and_critical_one_refused():
    opaque = OpaquePayload(200, b"xyz")
    first, body = encode_payloads((opaque, IdInitiator(Identity.fqdn("a.example"))))
    assert first == 200
    decoded = decode_payloads(first, body)
    assert decoded == (opaque, IdInitiator(Identity.fqdn("a.example")))
    first, body = encode_payloads((OpaquePayload(200, b"xyz", critical=True),))
    with pytest.raises(UnsupportedCriticalPayload) as caught:
        decode_payloads(first, body)
    assert caught.value.payload_type == 200


def test_known_payload_with_critical_bit_is_decoded():
    # RFC 7296 §2.5: the critical bit only matters for types the receiver does not know.
    _, body = encode_payloads((Nonce(b"n" * 16),))
    flagged = body[:1] + b"\x80" + body[2:]
    assert decode_payloads(PayloadType.NONCE, flagged) == (Nonce(b"n" * 16),)


def test_sk_must_be_last():
    sk = Encrypted(PayloadType.IDI, b"\x00" * 32)
    with pytest.raises(ValueError, match="last"):
        encode_payloads((sk, Nonce(b"n" * 16)))
    first, body = encode_payloads((sk,))
    with pytest.raises(ProtocolError, match="after the last payload"):
        decode_payloads(first, body + b"\x00\x00\x00\x04")


def test_payload_length_beyond_message_is_rejected():
    _, body = encode_payloads((Nonce(b"n" * 16),))
    with pytest.raises(ProtocolError, match="Payload Length"):
        decode_payloads(PayloadType.NONCE, body[:-1])
