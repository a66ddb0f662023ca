"""A real ``otwamp server`` against a client written from RFC 4656: Stop-Sessions and Fetch.

Each test pins a defect real clients hit: the server's Stop-Sessions sent
while the client's packets were still in flight (§3.8), Fetch-Session on a
new control connection as powstream does it (§3.8-3.9), the complete fetch
of a session that ended abnormally (§3.9).
"""

import os
import socket
import time

import pytest

from tests.e2e.conftest import OwampServer
from tests.e2e.rfc_client import EXPONENTIAL, OwampClient, ntp, sender_packet

PACKETS = 5
TIMEOUT = 1.0  # the sessions' Timeout, seconds
LEAD = 0.5  # from the requests to the sessions' Start Time
SLOTS = [(EXPONENTIAL, 0.001)]
FAILURE = 1  # Accept: failure, reason unspecified (RFC 4656 §3.3)

pytestmark = pytest.mark.timeout(60)


def run_to_session(
    client: OwampClient, server: OwampServer, udp: socket.socket, sent: int
) -> tuple[bytes, float]:
    """Request and start a "to" session, send ``sent`` of its packets; its SID and start."""
    start = time.time() + LEAD
    accepted = client.request_session(udp.getsockname()[1], PACKETS, SLOTS, ntp(start), TIMEOUT)
    assert accepted.accept == 0, server.log()
    assert client.start_sessions() == 0
    time.sleep(max(0.0, start - time.time()))
    for seq in range(sent):
        udp.sendto(sender_packet(seq), (server.host, accepted.port))
    return accepted.sid, start


def test_fetch_session_on_a_new_connection(owamp_server: OwampServer, udp: socket.socket) -> None:
    """powstream stops on one control connection and fetches on another (RFC 4656 §3.8)."""
    with OwampClient(owamp_server.host, owamp_server.port) as first:
        assert first.set_up() == 0
        sid, start = run_to_session(first, owamp_server, udp, PACKETS)
        time.sleep(max(0.0, start + TIMEOUT + 0.3 - time.time()))
        assert first.stop_sessions(sid, PACKETS) == 0
    with OwampClient(owamp_server.host, owamp_server.port) as second:
        assert second.set_up() == 0
        fetched = second.fetch_session(sid)
    assert fetched.accept == 0, owamp_server.log()
    assert fetched.next_seqno == PACKETS
    assert sorted(r.seq for r in fetched.records) == list(range(PACKETS))
    assert all(r.receive_time for r in fetched.records)


def test_an_abnormally_ended_session_is_fetched_in_part_but_not_complete(
    owamp_server: OwampServer, udp: socket.socket
) -> None:
    """RFC 4656 §3.9: a complete session that ended abnormally MUST be denied."""
    with OwampClient(owamp_server.host, owamp_server.port) as first:
        assert first.set_up() == 0
        sid, _ = run_to_session(first, owamp_server, udp, 3)
        time.sleep(0.2)  # the packets arrive; then the connection breaks without Stop-Sessions
    time.sleep(0.2)
    with OwampClient(owamp_server.host, owamp_server.port) as second:
        assert second.set_up() == 0
        assert second.fetch_session(sid).accept == FAILURE, owamp_server.log()
        part = second.fetch_session(sid, begin=0, end=1)
    assert part.accept == 0
    assert sorted(r.seq for r in part.records) == [0, 1]
    assert "ended abnormally" in owamp_server.log()


def test_a_stop_with_a_non_zero_accept_leaves_no_complete_session(
    owamp_server: OwampServer, udp: socket.socket
) -> None:
    """RFC 4656 §3.8: results of a Stop-Sessions with Accept != 0 are not to be trusted."""
    with OwampClient(owamp_server.host, owamp_server.port) as client:
        assert client.set_up() == 0
        sid, start = run_to_session(client, owamp_server, udp, PACKETS)
        time.sleep(max(0.0, start + TIMEOUT + 0.3 - time.time()))
        assert client.stop_sessions(sid, PACKETS, accept=FAILURE) == 0
        assert client.fetch_session(sid).accept == FAILURE


def test_the_servers_stop_waits_for_the_clients_packets_in_flight(
    owamp_server: OwampServer, udp: socket.socket
) -> None:
    """RFC 4656 §3.8: Stop-Sessions only once every session, sent or received, is complete.

    The server's own "from" session ends 2 s before the client's "to"
    session; its Stop-Sessions must still wait for the "to" session's end.
    """
    with OwampClient(owamp_server.host, owamp_server.port) as client:
        assert client.set_up() == 0
        start = time.time() + LEAD
        to_packets, interval = 25, 0.1  # the client sends for 2.5 s
        fixed = [(1, interval)]  # Slot Type 1: fixed intervals (RFC 4656 §3.5)
        to = client.request_session(udp.getsockname()[1], to_packets, fixed, ntp(start), TIMEOUT)
        assert to.accept == 0, owamp_server.log()
        with socket.socket(udp.family, socket.SOCK_DGRAM) as receiving:
            receiving.bind((owamp_server.host, 0))
            from_ = client.request_from(
                receiving.getsockname()[1], 5, fixed, ntp(start), TIMEOUT, os.urandom(16)
            )
            assert from_.accept == 0, owamp_server.log()
            assert client.start_sessions() == 0
            client.sock.settimeout(15)
            assert client.server_stop() == 1  # the server describes its one send session
            stopped = time.time()
        to_complete = start + to_packets * interval + TIMEOUT
        assert stopped >= to_complete - 0.05, f"{to_complete - stopped:.2f} s early"
        assert client.stop_sessions(to.sid, 0, answered=True) == 0
