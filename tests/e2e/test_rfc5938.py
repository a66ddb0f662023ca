"""The TWAMP extensions end to end: RFC 5938, RFC 6038 and RFC 7750 over 127.0.0.1 and ::1.

A real ``otwamp server --twamp-extensions all``, driven by the control client
written from the RFCs (``rfc_client``, which shares no code with otwamp) and by
``otwamp ping`` as a separate process.
"""

import json
import socket
import struct
import time
from collections.abc import Callable, Iterator

import pytest

from tests.e2e.conftest import TwampServer
from tests.e2e.rfc_client import (
    START_N,
    START_N_ACK,
    STOP_N,
    STOP_N_ACK,
    TwampClient,
    Writes,
    ntp,
    reflected_seq,
    sender_packet,
)

pytestmark = pytest.mark.timeout(90)

FAMILIES = ["127.0.0.1", "::1"]
OPEN, ISC, REFLECT, SYMMETRIC, DSCP_ECN = 1, 16, 32, 64, 256  # TWAMP-Modes values
OCTETS = Writes(each_octet=True, pause=0.001)


@pytest.fixture(scope="module", params=FAMILIES)
def server(
    request: pytest.FixtureRequest, twamp_server_factory: Callable[..., object]
) -> Iterator[TwampServer]:
    """A server offering every extension, on 127.0.0.1 and then on ::1."""
    with twamp_server_factory(request.param, extra_args=["--twamp-extensions", "all"]) as running:
        yield running


@pytest.fixture
def udp(server: TwampServer) -> Iterator[socket.socket]:
    family = socket.AF_INET6 if ":" in server.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((server.host, 0))
        sock.settimeout(5.0)
        yield sock


def test_greeting_offers_every_enabled_extension(server):
    with TwampClient(server.host, server.port) as client:
        assert client.set_up() == 0
    assert client.offered == OPEN | ISC | REFLECT | SYMMETRIC | DSCP_ECN


@pytest.mark.parametrize("writes", [Writes(), OCTETS], ids=["whole", "octets"])
def test_rfc_client_starts_and_stops_sessions_one_by_one(server, udp, writes):
    """RFC 5938 §3.2-3.5 with a client written from the RFC, its commands cut anywhere."""
    with TwampClient(server.host, server.port, writes) as client:
        assert client.set_up(extensions=ISC) == 0
        first = client.request_tw_session(udp.getsockname()[1], ntp(time.time()), 1.0)
        second = client.request_tw_session(udp.getsockname()[1], ntp(time.time()), 1.0)
        assert (first.accept, second.accept) == (0, 0), server.log()
        unknown = b"\xee" * 16
        client.n_sessions(START_N, [first.sid, unknown])
        acks = {client.n_ack(START_N_ACK)[0]: None, client.n_ack(START_N_ACK)[0]: None}
        assert set(acks) == {0, 1}  # RFC 5938 §3.3: one ack per Accept value
        assert reflected_seq(udp, (server.host, first.port), 3) == 3
        # The second session was never started: its reflector does not answer.
        udp.sendto(sender_packet(4), (server.host, second.port))
        client.n_sessions(STOP_N, [first.sid])
        assert client.n_ack(STOP_N_ACK) == (0, [first.sid])
        client.n_sessions(START_N, [second.sid])
        assert client.n_ack(START_N_ACK) == (0, [second.sid])
        assert reflected_seq(udp, (server.host, second.port), 5) == 5
        client.n_sessions(STOP_N, [second.sid])
        assert client.n_ack(STOP_N_ACK) == (0, [second.sid])
    assert "Traceback" not in server.log()


def test_rfc_client_gets_its_octets_reflected(server, udp):
    """RFC 6038 §4.2-4.3 and §5.2.1: the Accept-Session and each reply carry our octets."""
    length = 6
    with TwampClient(server.host, server.port) as client:
        assert client.set_up(extensions=REFLECT) == 0
        accepted = client.request_tw_session(
            udp.getsockname()[1], ntp(time.time()), 1.0, reflect=(0xBEEF, length), padding=33
        )
        assert accepted.accept == 0, server.log()
        assert client.reflected == (0xBEEF, 0)  # Reflected octets, Server octets
        # RFC 6038 §4.2: Padding Length >= 27 + Length of padding to reflect for equal sizes.
        client.start_sessions()
        ours = b"tagged"
        udp.sendto(sender_packet(9) + ours + bytes(27), (server.host, accepted.port))
        reply, _ = udp.recvfrom(2048)
        assert reply[41 : 41 + length] == ours  # after the Sender TTL (RFC 6038 §5.2.1)
        assert len(reply) == 14 + length + 27  # as long as ours (RFC 5357 §4.2.1)


@pytest.mark.parametrize("dscp", [0, 46])
def test_reflector_reports_the_ds_field_received(server, udp, dscp):
    """RFC 7750 §2.2.1: S-DSCP-ECN after the Sender TTL, here with ECT(0) set by us."""
    tos = dscp << 2 | 2
    if udp.family == socket.AF_INET6:
        udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tos)
    else:
        udp.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
    with TwampClient(server.host, server.port) as client:
        assert client.set_up(extensions=DSCP_ECN) == 0
        accepted = client.request_tw_session(udp.getsockname()[1], ntp(time.time()), 1.0)
        client.start_sessions()
        udp.sendto(sender_packet(1) + bytes(30), (server.host, accepted.port))
        reply, _ = udp.recvfrom(2048)
    assert struct.unpack_from("!BB", reply, 40)[1] == tos
    assert len(reply) == 44


def ping_json(run_ping, server, *args):
    result = run_ping([server.target, "-c", "5", "-i", "0.02", "--wait", "1", "--json", *args])
    assert result.returncode == 0, result.stderr + server.log()
    return json.loads(result.stdout)


def test_ping_uses_every_extension_offered(server, run_ping):
    out = ping_json(run_ping, server, "--start-n", "--reflect-octets", "8", "--dscp", "AF41")
    assert out["twamp_extensions"] == [
        "individual",
        "reflect-octets",
        "symmetrical-size",
        "dscp-ecn",
    ]
    assert out["reflect_octets"] == {"length": 8, "returned": 5, "wrong": 0}
    for direction in ("forward", "backward"):
        marks = out["dscp_ecn"][direction]
        assert marks["expected"] == {"dscp": 34, "ecn": 0}
        assert marks["seen"] == [{"dscp": 34, "ecn": 0, "packets": 5}]
        assert marks["changed"] == 0
    assert "Traceback" not in server.log()


def test_ping_text_report_names_the_extensions(server, run_ping):
    result = run_ping([server.target, "-c", "3", "-i", "0.02", "--wait", "1", "--start-n"])
    assert result.returncode == 0, result.stderr
    assert "TWAMP extensions: individual, symmetrical-size, dscp-ecn" in result.stdout
    assert "DSCP/ECN forward: sent DSCP 0 Not-ECT; seen DSCP 0 Not-ECT x3 (unchanged" in (
        result.stdout
    )


def test_reflect_octets_needs_a_padding_that_holds_them(server, run_ping):
    result = run_ping([server.target, "-c", "2", "--reflect-octets", "8", "--padding", "10"])
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "otwamp: the server refused Request-TW-Session: Accept 3 "
        "(some aspect of the request is not supported)"
    )


def test_a_server_without_extensions_is_measured_the_rfc_5357_way(twamp_server_factory, run_ping):
    with twamp_server_factory("127.0.0.1") as plain:
        out = ping_json(run_ping, plain, "--start-n")
        assert out["twamp_extensions"] == []
        assert "dscp_ecn" not in out
        result = run_ping([plain.target, "-c", "2", "--reflect-octets", "4"])
    assert result.returncode == 1
    assert result.stderr.strip() == "otwamp: the server does not offer Reflect Octets (RFC 6038)"
