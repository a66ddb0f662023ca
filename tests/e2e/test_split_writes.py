"""A real ``otwamp server`` over real TCP frames commands however the client's writes split them.

owping and powstream write OWAMP Request-Session as two segments ~50 ms
apart: the fixed part with its HMAC, then the slots with theirs. The client
here is written from the RFCs alone (``rfc_client``), open mode, and cuts
its messages into separate writes with pauses, so each piece reaches the
server on its own.
"""

import socket
import time

import pytest

from tests.e2e.conftest import OwampServer
from tests.e2e.rfc_client import (
    EXPONENTIAL,
    OwampClient,
    TwampClient,
    Writes,
    ntp,
    reflected_seq,
    sender_packet,
)

PACKETS = 5
TIMEOUT = 1.0  # the sessions' Timeout, seconds
LEAD = 1.0  # how far ahead the Start Time is: past the slowest writes of Request and Start
# Request-Session as owping writes it: octets 0-111 (fixed part and HMAC), then the slots.
OWPING = Writes(at=(112,), pause=0.05)
OCTETS = Writes(each_octet=True, pause=0.002)
# The first slot's type, 0, is the octet a server misreading the slots takes for a command.
SLOTS = [(EXPONENTIAL, 0.001)]

pytestmark = pytest.mark.timeout(60)


def sleep_until(unix_time: float) -> None:
    """Sleep until the Unix time ``unix_time`` (at once if it has passed)."""
    time.sleep(max(0.0, unix_time - time.time()))


def owamp_round(
    server: OwampServer, udp: socket.socket, writes: Writes, request_writes: Writes
) -> None:
    """Request, start, send the packets, stop and fetch one session; all packets recorded."""
    with OwampClient(server.host, server.port, writes) as client:
        assert client.set_up() == 0
        start = time.time() + LEAD
        accepted = client.request_session(
            udp.getsockname()[1], PACKETS, SLOTS, ntp(start), TIMEOUT, request_writes
        )
        assert accepted.accept == 0, server.log()
        assert client.start_sessions() == 0
        sleep_until(start)
        for seq in range(PACKETS):
            udp.sendto(sender_packet(seq), (server.host, accepted.port))
            time.sleep(0.002)
        # RFC 4656 §3.8: stop once Timeout has passed after the last scheduled packet.
        sleep_until(start + TIMEOUT + 0.3)
        assert client.stop_sessions(accepted.sid, PACKETS) == 0  # the server sent nothing
        fetched = client.fetch_session(accepted.sid)
    assert fetched.accept == 0, server.log()
    assert fetched.next_seqno == PACKETS
    assert len(fetched.records) == PACKETS
    assert sorted(r.seq for r in fetched.records) == list(range(PACKETS))
    assert all(r.receive_time for r in fetched.records), "a packet was recorded lost"


def twamp_round(
    server: OwampServer, udp: socket.socket, writes: Writes, request_writes: Writes
) -> None:
    """Request, start, reflect one packet and stop one session; then a second is accepted."""
    with TwampClient(server.host, server.twamp_port, writes) as client:
        assert client.set_up() == 0
        request = (udp.getsockname()[1], ntp(time.time()), TIMEOUT, request_writes)
        accepted = client.request_tw_session(*request)
        assert accepted.accept == 0, server.log()
        assert client.start_sessions() == 0
        assert reflected_seq(udp, (server.host, accepted.port), 7) == 7
        client.stop_sessions(1)
        # Stop-Sessions has no answer: a next request accepted shows it was framed right.
        assert client.request_tw_session(*request).accept == 0, server.log()


def test_owamp_request_session_in_two_writes(owamp_server: OwampServer, udp: socket.socket) -> None:
    owamp_round(owamp_server, udp, Writes(), OWPING)


def test_owamp_every_message_one_octet_at_a_time(
    owamp_server: OwampServer, udp: socket.socket
) -> None:
    owamp_round(owamp_server, udp, OCTETS, OCTETS)


def test_twamp_every_message_one_octet_at_a_time(
    owamp_server: OwampServer, udp: socket.socket
) -> None:
    twamp_round(owamp_server, udp, OCTETS, OCTETS)


def test_twamp_request_in_pieces(owamp_server: OwampServer, udp: socket.socket) -> None:
    # Inside the Command Number's block, at its end, inside the addresses, before the HMAC.
    twamp_round(owamp_server, udp, Writes(), Writes(at=(1, 16, 40, 96), pause=0.05))
