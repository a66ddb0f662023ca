"""Reflect Octets and Symmetrical Size (RFC 6038): control fields, formats, both engines."""

import contextlib
import ipaddress
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import ProtocolError
from otwamp.results.records import Stamp, TwampSessionRecord
from otwamp.results.twamp_features import FeatureTally
from otwamp.session.reflector import SessionReflector
from otwamp.session.sender import SessionSender
from otwamp.wire.registry import TwampMode
from otwamp.wire.timestamp import ErrorEstimate, ns_to_ntp
from otwamp.wire.twamp_control import AcceptSession, RequestTwSession
from otwamp.wire.twamp_features import PacketFormat
from tests.session.helpers import SID, protection_for

V4 = ipaddress.ip_address("192.0.2.1")
NOW = 1_800_000_000 * 10**9
REFLECT = TwampMode.UNAUTHENTICATED | TwampMode.REFLECT_OCTETS
BOTH = REFLECT | TwampMode.SYMMETRICAL_SIZE


def test_mode_bits_are_the_registered_ones():
    # RFC 6038 §7: Reflect Octets is bit 5 (32), Symmetrical Size bit 6 (64).
    assert (TwampMode.REFLECT_OCTETS, TwampMode.SYMMETRICAL_SIZE) == (32, 64)


def test_request_carries_the_reflect_fields_after_the_type_p_descriptor():
    # RFC 6038 §4.2: octets 88-89 Octets to be reflected, 90-91 Length, 92-95 MBZ.
    request = RequestTwSession(V4, V4, 1, 2, 40, reflect_octets=0xBEEF, reflect_length=12)
    wire = request.encode()
    assert wire[88:96] == b"\xbe\xef\x00\x0c" + bytes(4)
    assert RequestTwSession.decode(wire, reflect_octets=True) == request


def test_without_the_mode_the_fields_are_mbz_and_ignored():
    # RFC 4656 §3.1: MBZ octets are ignored by the receiver.
    wire = RequestTwSession(V4, V4, 1, 2, reflect_octets=7, reflect_length=9).encode()
    assert RequestTwSession.decode(wire) == RequestTwSession(V4, V4, 1, 2)
    accept = AcceptSession(0, 9, SID, 0x1234, 0x5678).encode()
    assert AcceptSession.decode(accept) == AcceptSession(0, 9, SID)


def test_accept_session_carries_reflected_and_server_octets():
    # RFC 6038 §4.3: octets 20-21 Reflected octets, 22-23 Server octets, 24-31 MBZ.
    wire = AcceptSession(0, 18792, SID, 0xBEEF, 0x0102).encode()
    assert wire[20:32] == b"\xbe\xef\x01\x02" + bytes(8)
    assert AcceptSession.decode(wire, reflect_octets=True) == AcceptSession(
        0, 18792, SID, 0xBEEF, 0x0102
    )


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(min_size=16, max_size=16))
def test_accept_round_trips(reflected, server, sid):
    accept = AcceptSession(0, 1, sid, reflected, server)
    assert AcceptSession.decode(accept.encode(), reflect_octets=True) == accept


@given(st.binary(max_size=120), st.booleans())
def test_garbage_raises_only_protocol_errors(data, reflect):
    for decode in (RequestTwSession.decode, AcceptSession.decode):
        with contextlib.suppress(ProtocolError):
            decode(data, reflect)


@pytest.mark.parametrize(
    ("form", "reflect_from", "equal"),
    [
        # RFC 6038 §5.1.3 table: 27 octets truncated unauthenticated; 64 with erratum 5045.
        (PacketFormat(False, None), 41, 27),
        (PacketFormat(True, None), 112, 64),
        # §5.1.2: the octets to reflect start the padding; §4.2: Padding >= 27 + Length.
        (PacketFormat(False, 8), 14, 35),
        (PacketFormat(True, 8), 48, 72),
        # §5.1.5: with Symmetrical Size they follow 27 (56 authenticated) MBZ octets.
        (PacketFormat(False, 8, True), 41, 35),
        (PacketFormat(True, 8, True), 104, 72),
        # RFC 7750 §2.2.2 Figure 4: 28 MBZ octets; the reflector header is 44 octets.
        (PacketFormat(False, 8, True, True), 42, 38),
    ],
)
def test_format_offsets(form, reflect_from, equal):
    assert form.reflect_from == reflect_from
    assert form.equal_padding == equal


def test_a_padding_too_short_for_equal_sizes_is_a_problem():
    # RFC 6038 §4.3: insufficient padding for equal sizes gets Accept 3.
    assert PacketFormat(False, 8).padding_problem(34) is not None
    assert PacketFormat(False, 8).padding_problem(35) is None
    assert PacketFormat(False, None, True).padding_problem(26) is not None
    assert PacketFormat(False, None).padding_problem(0) is None  # nothing asked


def session(mode: int, secured: str, length: int, padding: int | None = None):
    """A reflector and a sender of one session in ``mode``, joined by hand."""
    protection = protection_for(secured)
    form = PacketFormat.of(mode, protection is not None, length)
    padding = form.equal_padding if padding is None else padding
    fill = form.sender_padding(padding, 0, os.urandom(padding))
    record = TwampSessionRecord(SID, secured, "none")
    tally = FeatureTally(0, form.dscp_ecn, form.reflect_length or 0)
    sender = SessionSender(record, fill, protection, form, tally)
    reflector = SessionReflector(protection_for(secured), test_format=form)
    reflector.start(NOW)
    return sender, reflector, fill, form


def exchange(sender, reflector, seq=0):
    packet = sender.stamp(sender.prepare(seq), ns_to_ntp(NOW), 1)
    sender.mark_sent(seq, ns_to_ntp(NOW), ErrorEstimate(False, 0, 1))
    reply = reflector.reflect(bytes(packet), NOW + 1000, 1, 64)
    assert reply is not None
    wire = bytes(reflector.stamp(reply, ns_to_ntp(NOW + 2000), 1))
    return bytes(packet), wire


@pytest.mark.parametrize("secured", ["open", "authenticated", "encrypted"])
@pytest.mark.parametrize("mode", [REFLECT, BOTH])
def test_reflector_returns_the_octets_to_reflect_first(mode, secured):
    sender, reflector, fill, form = session(mode, secured, 12)
    packet, wire = exchange(sender, reflector)
    header = form.reflector_layout.size
    # RFC 6038 §5.2.1: Packet Padding (from Session-Sender) follows the Sender TTL field.
    assert wire[header : header + 12] == form.reflected(fill)
    assert len(wire) == len(packet)  # truncated to equal sizes (RFC 5357 §4.2.1)
    assert sender.on_datagram(wire, Stamp(NOW + 3000, False, 0.0), 64) is not None
    assert (sender.tally.reflected_ok, sender.tally.reflected_wrong) == (1, 0)


def test_symmetrical_size_sender_starts_its_padding_with_mbz():
    # RFC 6038 §5.1.4: 27 MBZ octets after the Error Estimate; the reply is as long.
    sender, reflector, _fill, _form = session(
        TwampMode.UNAUTHENTICATED | TwampMode.SYMMETRICAL_SIZE, "open", 0, 100
    )
    packet, wire = exchange(sender, reflector)
    assert packet[14:41] == bytes(27)
    assert len(packet) == len(wire) == 114


def test_an_altered_reflected_octet_is_counted():
    sender, reflector, _fill, form = session(REFLECT, "open", 4)
    _packet, wire = exchange(sender, reflector)
    altered = bytearray(wire)
    altered[form.reflector_layout.size] ^= 0xFF
    sender.on_datagram(bytes(altered), Stamp(NOW + 3000, False, 0.0), 64)
    assert (sender.tally.reflected_ok, sender.tally.reflected_wrong) == (0, 1)


def test_server_octets_start_the_octets_to_reflect():
    # RFC 6038 §5.1.2: a non-zero Server octets value is the first 2 octets of them.
    form = PacketFormat(False, 8, True)
    padding = form.sender_padding(40, 0xABCD, b"\x11" * 40)
    assert padding[:27] == bytes(27) and padding[27:29] == b"\xab\xcd"
    assert form.reflected(padding) == b"\xab\xcd" + b"\x11" * 6
