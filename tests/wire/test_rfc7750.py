"""DSCP and ECN Monitoring (RFC 7750): the reflector's packet formats and what the sender sees."""

import contextlib

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
from otwamp.wire.twamp_features import (
    REFLECTOR_AUTH_DSCP_ECN,
    REFLECTOR_OPEN_DSCP_ECN,
    PacketFormat,
    split_dscp_ecn,
)
from tests.session.helpers import SID, protection_for

NOW = 1_800_000_000 * 10**9
EF_CE = 46 << 2 | 3  # DSCP EF, ECN CE: the DS field octet


def test_mode_bit_is_the_registered_one():
    assert TwampMode.REFLECT_DSCP_ECN == 0x100  # RFC 7750 §3: bit position 8


def test_unauthenticated_layout_matches_figure_2():
    # Seq 0-3, Timestamp 4-11, Error 12-13, MBZ, Receive Timestamp 16-23, Sender Seq 24-27,
    # Sender Timestamp 28-35, Sender Error 36-37, MBZ, Sender TTL 40, S-DSCP-ECN 41, MBZ 42-43.
    wire = bytearray(REFLECTOR_OPEN_DSCP_ECN.size)
    REFLECTOR_OPEN_DSCP_ECN.fields.pack_into(wire, 0, 1, 2, 3, 4, 5, 6, 7, 64, EF_CE)
    assert len(wire) == 44
    assert wire[40:44] == bytes([64, EF_CE, 0, 0])
    assert REFLECTOR_OPEN_DSCP_ECN.unpack(bytes(wire)) == (1, 2, 3, 4, 5, 6, 7, 64, EF_CE)


def test_authenticated_layout_matches_figure_3():
    # Sender TTL at 80, S-DSCP-ECN at 81, 14 MBZ octets, HMAC 96-111.
    wire = bytearray(REFLECTOR_AUTH_DSCP_ECN.size)
    REFLECTOR_AUTH_DSCP_ECN.fields.pack_into(wire, 0, 1, 2, 3, 4, 5, 6, 7, 64, EF_CE)
    assert len(wire) == 112
    assert wire[80:96] == bytes([64, EF_CE]) + bytes(14)


def test_s_dscp_ecn_splits_as_figure_1():
    assert split_dscp_ecn(EF_CE) == (46, 3)
    assert split_dscp_ecn(0b000001_10) == (1, 2)


@given(st.binary(max_size=120))
def test_garbage_raises_only_protocol_errors(data):
    for layout in (REFLECTOR_OPEN_DSCP_ECN, REFLECTOR_AUTH_DSCP_ECN):
        with contextlib.suppress(ProtocolError):
            layout.unpack(data)


@pytest.mark.parametrize("secured", ["open", "authenticated", "encrypted"])
def test_reflector_reports_the_received_ds_field_and_the_sender_reads_it(secured):
    protection = protection_for(secured)
    form = PacketFormat(protection is not None, dscp_ecn=True)
    tally = FeatureTally(46, dscp_ecn=True)
    sender = SessionSender(
        TwampSessionRecord(SID, secured, "none"),
        bytes(form.equal_padding),
        protection,
        form,
        tally,
    )
    reflector = SessionReflector(protection_for(secured), test_format=form)
    reflector.start(NOW)
    packet = sender.stamp(sender.prepare(0), ns_to_ntp(NOW), 1)
    sender.mark_sent(0, ns_to_ntp(NOW), ErrorEstimate(False, 0, 1))
    reply = reflector.reflect(bytes(packet), NOW + 1000, 1, 64, EF_CE)
    assert reply is not None
    wire = bytes(reflector.stamp(reply, ns_to_ntp(NOW + 2000), 1))
    assert len(wire) == len(packet)  # equal sizes with the 44-octet header (RFC 7750 §2.2.2)
    # The reply went back marked EF Not-ECT: the backward path did not change it.
    assert sender.on_datagram(wire, Stamp(NOW + 3000, False, 0.0), 64, 46 << 2) is not None
    assert tally.forward == {(46, 3): 1}  # the forward path set CE
    assert tally.backward == {(46, 0): 1}
    assert (tally.changed(tally.forward), tally.changed(tally.backward)) == (1, 0)
    out = tally.to_json()["dscp_ecn"]
    assert out["forward"]["changed"] == 1 and out["backward"]["changed"] == 0
    assert "1 changed on the path" in tally.lines()[0]
    assert "unchanged" in tally.lines()[1]


def test_a_reflector_without_the_mode_keeps_the_rfc_5357_format():
    reflector = SessionReflector()
    reflector.start(NOW)
    packet = (0).to_bytes(12, "big") + (1).to_bytes(2, "big") + bytes(27)  # Multiplier 1
    reply = reflector.reflect(packet, NOW, 1, 64, EF_CE)
    assert reply is not None and len(reply) == 41  # no S-DSCP-ECN field
