"""S4: idle, dripping and non-reading clients cannot hold the server's connections.

A full table of idle connections (``max_control_sessions``, 64) gives way
to a new client: the oldest connection that never started a test is dropped.
One address gets at most ``max_connections_per_source`` (16) connections;
the next sees a Server-Greeting with Modes 0 (RFC 4656 §3.1). A message, or
the Set-Up-Response after the greeting, must be complete within
``message_timeout`` (10 s) however slowly it drips, and a client that reads
none of the server's answers for ``write_timeout`` (10 s) is closed.
Traffic goes only to 127.0.0.0/8.
"""

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.abuse.attackers import (
    HOST,
    TWAMP_REQUEST,
    Legit,
    ServerFactory,
    closed_within,
    connected,
    drip,
    excerpt,
    greeting_modes,
    legit,
    sources,
)
from tests.e2e.conftest import OwampServer
from tests.e2e.rfc_client import (
    FETCH,
    HMAC,
    OPEN_MODE,
    ControlClient,
    OwampClient,
    TwampClient,
    ntp,
)

TABLE = 64  # max_control_sessions' default
PER_SOURCE = 16  # max_connections_per_source's default
MESSAGE_TIMEOUT = 10.0  # message_timeout's default, seconds
WRITE_TIMEOUT = 10.0  # write_timeout's default, seconds
SLACK = 2.5  # seconds beyond a deadline: timers, a 2-core machine under load
LEGIT_COUNT = 10


def ping(server: OwampServer) -> Legit:
    """A legitimate ``otwamp ping`` from 127.0.0.1."""
    return legit("ping", server.twamp_target, "-c", str(LEGIT_COUNT), "-i", "0.01")


@pytest.mark.timeout(60)
def test_a_full_table_drops_its_oldest_idle_connection_for_a_new_client(
    abuse_server: ServerFactory,
) -> None:
    with abuse_server() as server, contextlib.ExitStack() as stack:
        idle: list[TwampClient] = []
        for source in sources(TABLE // PER_SOURCE):
            for _ in range(PER_SOURCE):
                client = stack.enter_context(
                    connected(TwampClient, HOST, server.twamp_port, source)
                )
                assert client.set_up() == 0  # set up, then idle: SERVWAIT would be 900 s
                idle.append(client)
        run = ping(server)
        oldest_dropped = closed_within(idle[0].sock, 2.0)
        others_open = not any(closed_within(c.sock, 0.0) for c in idle[1:])
        log = server.log()
    print(
        f"S4 full table: {TABLE} idle connections from {TABLE // PER_SOURCE} addresses; "
        f"ping {run.seconds:.2f} s; {log.count('dropped to make room')} dropped"
    )
    assert run.served(LEGIT_COUNT) and run.seconds < 5.0, run.output
    assert log.count("dropped to make room") == 1, excerpt(log)
    assert oldest_dropped and others_open


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", [TwampClient, OwampClient], ids=["twamp", "owamp"])
def test_the_17th_connection_from_one_address_sees_modes_0(
    abuse_server: ServerFactory, kind: type[ControlClient]
) -> None:
    attacker, other = "127.0.0.2", "127.0.0.3"
    with abuse_server() as server, contextlib.ExitStack() as stack:
        port = server.twamp_port if kind is TwampClient else server.port
        clients = [
            stack.enter_context(connected(kind, HOST, port, attacker))
            for _ in range(PER_SOURCE + 1)
        ]
        modes = [greeting_modes(c) for c in clients]
        refused_closed = closed_within(clients[-1].sock, 2.0)
        neighbour = stack.enter_context(connected(kind, HOST, port, other))
        neighbour_modes = greeting_modes(neighbour)
        log = server.log()
    print(f"S4 per source ({kind.__name__}): Modes {modes}; another address {neighbour_modes}")
    assert modes == [OPEN_MODE] * PER_SOURCE + [0]
    assert refused_closed
    assert neighbour_modes == OPEN_MODE
    assert f"{PER_SOURCE} control connections from {attacker} already" in log


def drip_set_up(server: OwampServer) -> float | None:
    """Seconds until the server ends a connection whose Set-Up-Response drips.

    The deadline runs from the greeting, sent as the connection is accepted.
    """
    with connected(TwampClient, HOST, server.twamp_port, "127.0.0.2") as client:
        greeting_modes(client)
        response = OPEN_MODE.to_bytes(4, "big") + bytes(160)  # Set-Up-Response (RFC 4656 §3.1)
        return drip(client.sock, response, 2.0, 3 * MESSAGE_TIMEOUT)


def drip_command(server: OwampServer) -> float | None:
    """Seconds until the server ends a connection whose Request-TW-Session drips."""
    with connected(TwampClient, HOST, server.twamp_port, "127.0.0.3") as client:
        assert client.set_up() == 0
        request = client.request_fixed_part(TWAMP_REQUEST, 9, 0, 0, 1.0) + HMAC
        return drip(client.sock, request, 2.0, 3 * MESSAGE_TIMEOUT)


@pytest.mark.timeout(60)
def test_a_dripping_client_is_cut_off_after_the_message_timeout(
    abuse_server: ServerFactory,
) -> None:
    with abuse_server() as server, ThreadPoolExecutor(2) as pool:
        set_up = pool.submit(drip_set_up, server)
        command = pool.submit(drip_command, server)
        time.sleep(3.0)
        during = ping(server)
        set_up_seconds, command_seconds = set_up.result(), command.result()
        log = server.log()
    print(
        f"S4 drip: Set-Up-Response cut off after {set_up_seconds} s, Request-TW-Session "
        f"after {command_seconds} s; ping meanwhile {during.seconds:.2f} s"
    )
    assert during.served(LEGIT_COUNT), during.output
    for seconds in (set_up_seconds, command_seconds):
        assert seconds is not None and MESSAGE_TIMEOUT - 1 <= seconds <= MESSAGE_TIMEOUT + SLACK
    assert log.count("ago is still incomplete") == 2, excerpt(log)


SLOTS = 1024  # the most schedule slots a Request-Session may have (R11)
FETCHES = 400  # 19 KB of Fetch-Session, 6.6 MB of answers: beyond the socket buffers (4 MB)
TINY_RCVBUF = 2048  # the kernel doubles it: a window of a few KB


@pytest.mark.timeout(60)
def test_a_client_that_never_reads_is_closed_after_the_write_deadline(
    abuse_server: ServerFactory,
) -> None:
    # A partial Fetch-Session (RFC 4656 §3.9) is answered with the Request-Session
    # reproduced, slots included: 16.5 KB for a 48-octet request with 1,024 slots.
    with abuse_server() as server:
        client = connected(OwampClient, HOST, server.port, "127.0.0.2", rcvbuf=TINY_RCVBUF)
        with client:
            assert client.set_up() == 0
            start = ntp(time.time() + 60)  # never started
            accepted = client.request_session(9, SLOTS, [(0, 0.01)] * SLOTS, start, 1.0)
            assert accepted.accept == 0
            client.sock.sendall((FETCH.pack(4, 0, 0, accepted.sid) + HMAC) * FETCHES)
            began = time.monotonic()
            during = ping(server)
            seconds = wait_for_line(server, "read none of our octets", began, 3 * WRITE_TIMEOUT)
            closed = closed_within(client.sock, 5.0)
        log = server.log()
    print(
        f"S4 write deadline: closed {seconds} s after {FETCHES} Fetch-Sessions left unread; "
        f"ping meanwhile {during.seconds:.2f} s"
    )
    assert seconds is not None and WRITE_TIMEOUT - 1 <= seconds <= WRITE_TIMEOUT + SLACK
    assert closed
    assert during.served(LEGIT_COUNT), during.output
    assert f"read none of our octets in {WRITE_TIMEOUT:g} s" in log, excerpt(log)


def wait_for_line(server: OwampServer, text: str, began: float, limit: float) -> float | None:
    """Seconds from ``began`` until the server logs ``text``, or None after ``limit`` s."""
    while time.monotonic() - began < limit:
        if text in server.log():
            return time.monotonic() - began
        time.sleep(0.02)
    return None
