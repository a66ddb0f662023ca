"""Registries: Modes, Accept values and Command Numbers (RFC 4656, 5357, 5618, 5938, 6038, 7717,
7718, 7750)."""

import pytest

from otwamp.wire.registry import (
    SECURITY_MODES,
    Accept,
    OwampCommand,
    OwampMode,
    TwampCommand,
    TwampMode,
    mode_names,
)


def test_twamp_mode_bits():
    assert TwampMode.UNAUTHENTICATED == 1  # RFC 4656 §3.1
    assert TwampMode.AUTHENTICATED == 2
    assert TwampMode.ENCRYPTED == 4
    assert TwampMode.MIXED == 8  # RFC 5618 §3.1, bit 3
    assert TwampMode.INDIVIDUAL_SESSION_CONTROL == 16  # RFC 5938 §3.1, bit 4
    assert TwampMode.REFLECT_OCTETS == 32  # RFC 6038, bit 5
    assert TwampMode.SYMMETRICAL_SIZE == 64  # RFC 6038, bit 6
    assert TwampMode.IKEV2_DERIVED == 0x80  # RFC 7717 §7, bit 7 (DESIGN D3)
    assert TwampMode.REFLECT_DSCP_ECN == 0x100  # RFC 7750, bit 8


def test_owamp_mode_bits():
    assert OwampMode.UNAUTHENTICATED == 1
    assert OwampMode.AUTHENTICATED == 2
    assert OwampMode.ENCRYPTED == 4
    assert OwampMode.IKEV2_DERIVED == 0x10  # RFC 7718 §3.2.4, bit 4 (DESIGN D3)


def test_modes_combine_as_flags():
    # DESIGN D3: authenticated mode with an IKEv2-derived key.
    assert int(TwampMode.AUTHENTICATED | TwampMode.IKEV2_DERIVED) == 0x82
    assert int(OwampMode.AUTHENTICATED | OwampMode.IKEV2_DERIVED) == 0x12
    assert SECURITY_MODES == 7


@pytest.mark.parametrize(
    ("modes", "names"),
    [
        (15, ["open", "authenticated", "encrypted", "mixed"]),  # perfSONAR twampd's greeting
        (0x82, ["authenticated"]),
        (0x10 | 0x20, []),
        (0, []),
        (4 | 1, ["open", "encrypted"]),
    ],
)
def test_mode_names(modes, names):
    assert mode_names(modes) == names


def test_accept_values():
    # RFC 4656 §3.3 and RFC 7717 §5.2.
    assert [int(a) for a in Accept] == [0, 1, 2, 3, 4, 5, 6]
    assert Accept.OK == 0
    assert Accept.NOT_SUPPORTED == 3
    assert Accept.TEMPORARY_RESOURCE_LIMITATION == 5
    assert Accept.NO_IKEV2_SA == 6


@pytest.mark.parametrize(("value", "accept"), [(0, 0), (3, 3), (6, 6), (7, 1), (255, 1)])
def test_accept_interpret_unknown_means_failure(value, accept):
    # RFC 4656 §3.3: an unrecognized Accept value is interpreted as 1 (Failure).
    assert Accept.interpret(value) is Accept(accept)


def test_accept_meanings():
    assert Accept.OK.meaning == "OK"
    assert Accept.NOT_SUPPORTED.meaning == "some aspect of the request is not supported"
    assert all(accept.meaning for accept in Accept)


def test_twamp_command_numbers():
    # RFC 5357 §8.3 (1 Forbidden, 0 and 4 Reserved) and RFC 5938 §4.
    assert {c.name: int(c) for c in TwampCommand} == {
        "START_SESSIONS": 2,
        "STOP_SESSIONS": 3,
        "REQUEST_TW_SESSION": 5,
        "EXPERIMENTATION": 6,
        "START_N_SESSION": 7,
        "START_N_ACK": 8,
        "STOP_N_SESSION": 9,
        "STOP_N_ACK": 10,
    }
    for unassigned in (0, 1, 4):
        with pytest.raises(ValueError):
            TwampCommand(unassigned)


def test_owamp_command_numbers():
    # RFC 4656 §3.4.
    assert [int(c) for c in OwampCommand] == [1, 2, 3, 4]
    assert OwampCommand.FETCH_SESSION == 4
