"""Round trips of generated messages, and random octets raising only ProtocolError."""

import contextlib
import struct

from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import ProtocolError
from otwamp.ike.registry import PayloadType
from otwamp.ike.wire.header import HEADER_LEN
from otwamp.ike.wire.message import Message, decode_payloads

from .strategies import messages


@given(messages())
def test_message_round_trip(message):
    encoded = message.encode()
    assert len(encoded) == struct.unpack_from("!I", encoded, 24)[0]
    assert Message.decode(encoded) == message


@given(st.binary(max_size=512))
def test_random_octets_raise_only_protocol_error(data):
    with contextlib.suppress(ProtocolError):
        Message.decode(data)


@given(st.sampled_from(list(PayloadType)), st.binary(max_size=512))
def test_random_payload_chain_raises_only_protocol_error(first_type, data):
    with contextlib.suppress(ProtocolError):
        decode_payloads(first_type, data)


@given(st.binary(min_size=HEADER_LEN, max_size=HEADER_LEN), st.binary(max_size=512))
def test_random_body_behind_valid_header_raises_only_protocol_error(header, body):
    # Force a version-2 header whose Length matches, so decoding reaches the payload chain.
    length = HEADER_LEN + len(body)
    raw = header[:17] + b"\x20" + header[18:24] + length.to_bytes(4, "big") + body
    with contextlib.suppress(ProtocolError):
        Message.decode(raw)
