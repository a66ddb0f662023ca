"""Start-N-Sessions, Start-N-Ack, Stop-N-Sessions, Stop-N-Ack against RFC 5938 §3.2-3.5."""

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from otwamp.errors import ProtocolError
from otwamp.wire.registry import TwampCommand, TwampMode
from otwamp.wire.twamp_individual import (
    StartNAck,
    StartNSessions,
    StopNAck,
    StopNSessions,
    message_size,
)

SID_A = bytes(range(16))
SID_B = bytes(range(16, 32))
COMMANDS = [StartNSessions, StopNSessions]
ACKS = [StartNAck, StopNAck]


def test_mode_bit_and_command_numbers_are_the_registered_ones():
    # RFC 5938 §3.1: Modes value 16 (bit 4); §6: Command Numbers 7-10.
    assert TwampMode.INDIVIDUAL_SESSION_CONTROL == 16
    assert (
        [StartNSessions.COMMAND, StartNAck.COMMAND, StopNSessions.COMMAND, StopNAck.COMMAND]
        == [
            TwampCommand.START_N_SESSION,
            TwampCommand.START_N_ACK,
            TwampCommand.STOP_N_SESSION,
            TwampCommand.STOP_N_ACK,
        ]
        == [7, 8, 9, 10]
    )


@pytest.mark.parametrize(("kind", "number"), [(StartNSessions, 7), (StopNSessions, 9)])
def test_commands_match_the_figures(kind, number):
    # RFC 5938 §3.2/§3.4: octet 0 the command, 1-11 MBZ, 12-15 Number of Sessions, then SIDs.
    wire = kind((SID_A, SID_B)).encode()
    assert wire == bytes([number]) + bytes(11) + (2).to_bytes(4, "big") + SID_A + SID_B
    assert kind.decode(wire) == kind((SID_A, SID_B))
    assert message_size(wire[:16]) == len(wire) == 48


@pytest.mark.parametrize(("kind", "number"), [(StartNAck, 8), (StopNAck, 10)])
def test_acks_match_the_figures(kind, number):
    # RFC 5938 §3.3/§3.5: command, Accept, MBZ 2, MBZ 8, Number of Sessions, SIDs.
    wire = kind((SID_B,), 5).encode()
    assert wire == bytes([number, 5]) + bytes(10) + (1).to_bytes(4, "big") + SID_B
    assert kind.decode(wire) == kind((SID_B,), 5)


def test_the_rfc_example_two_acks_for_one_start():
    # RFC 5938 §3.3: Accept 0 for SIDs 1, 2, 4 and Accept 5 for SID 3, in two messages.
    sids = [bytes([n]) * 16 for n in (1, 2, 3, 4)]
    ok = StartNAck((sids[0], sids[1], sids[3]), 0).encode()
    busy = StartNAck((sids[2],), 5).encode()
    assert ok[1] == 0 and int.from_bytes(ok[12:16]) == 3 and len(ok) == 16 + 48
    assert busy[1] == 5 and int.from_bytes(busy[12:16]) == 1 and busy[16:] == sids[2]


def test_mbz_octets_are_ignored():
    wire = bytearray(StartNSessions((SID_A,)).encode())
    wire[1:12] = b"\xff" * 11
    assert StartNSessions.decode(bytes(wire)) == StartNSessions((SID_A,))


@pytest.mark.parametrize("kind", COMMANDS + ACKS)
def test_zero_sessions_is_invalid(kind):
    # RFC 5938 §3.2-3.5: Number of Sessions MUST be one or greater.
    wire = bytes([kind.COMMAND]) + bytes(15)
    with pytest.raises(ProtocolError, match="one or greater"):
        kind.decode(wire)
    with pytest.raises(ValueError):
        kind(())


@pytest.mark.parametrize("kind", COMMANDS + ACKS)
def test_a_count_that_the_sids_do_not_match_is_invalid(kind):
    wire = kind((SID_A, SID_B)).encode()
    with pytest.raises(ProtocolError):
        kind.decode(wire[:-16])  # one SID short
    with pytest.raises(ProtocolError):
        kind.decode(wire + SID_A)  # one too many


def test_a_wrong_command_number_is_refused():
    with pytest.raises(ProtocolError, match="Command Number 9"):
        StartNSessions.decode(StopNSessions((SID_A,)).encode())


sids = st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=8).map(tuple)


@given(sids, st.integers(0, 255), st.sampled_from(ACKS))
def test_acks_round_trip(named, accept, kind):
    ack = kind(named, accept)
    assert kind.decode(ack.encode()) == ack


@given(sids, st.sampled_from(COMMANDS))
def test_commands_round_trip(named, kind):
    command = kind(named)
    assert kind.decode(command.encode()) == command


@given(st.binary(max_size=200), st.sampled_from(COMMANDS + ACKS))
def test_garbage_raises_only_protocol_errors(data, kind):
    with contextlib.suppress(ProtocolError):
        kind.decode(data)
