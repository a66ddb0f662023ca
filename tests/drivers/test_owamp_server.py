"""The asyncio OWAMP server over real loopback sockets, driven by our own client machine.

Requests ``otwamp owping`` would never send: each refusal gets the Accept value
of RFC 4656 §3.3 and one log line; Fetch-Session for an unknown or unfinished
session is refused; receiver state is bounded and freed when a connection
closes or idles past the control timeout; bad test packets are dropped and
counted, and the "to" session's Fetch shows them missing (RFC 4656 §3.5-3.9, §4.2).
"""

import asyncio
import ipaddress
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, NamedTuple

import pytest

from otwamp.control.events import Refused
from otwamp.control.owamp_client import OwampClientConnection
from otwamp.control.owamp_events import Fetched, SessionsStopped
from otwamp.drivers.clock import now_ntp
from otwamp.drivers.control_server import Endpoint, ServerSettings
from otwamp.drivers.owamp_server import OwampServer
from otwamp.keys.passphrase import PassphraseFile
from otwamp.keys.source import Credentials, KeySourceKind
from otwamp.session.owamp_sender import OwampSender
from otwamp.session.protection import session_protection
from otwamp.wire.owamp_control import RequestSession, Slot, SlotType
from otwamp.wire.owamp_fetch import FetchAck, FetchedSession, FetchSession
from otwamp.wire.owamp_stop import SessionDescription, StopSessions
from otwamp.wire.registry import Accept, TwampMode
from otwamp.wire.setup import encode_key_id
from otwamp.wire.timestamp import duration_to_ntp
from tests.drivers.harness import ControlClient, accepted, free_udp_port, run_scenario

LOCAL = ipaddress.ip_address("127.0.0.1")
ELSEWHERE = ipaddress.ip_address("192.0.2.1")  # TEST-NET-1: no host here owns it
TIMEOUT = 0.1  # the sessions' Timeout, seconds
INTERVAL = 0.01  # fixed slot, seconds
PADDING = 64
ALL_MODES = TwampMode(0x07)


class FetchResult(NamedTuple):
    ack: FetchAck
    data: FetchedSession | None


class Client(ControlClient):
    """An OWAMP-Control client over a real TCP connection, one step at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer, OwampClientConnection(os.urandom))

    async def closed_by_server(self, within: float = 5.0) -> bool:
        """Whether the server closes the connection within ``within`` seconds."""
        try:
            data = await asyncio.wait_for(self.reader.read(65536), within)
        except (TimeoutError, ConnectionError):
            return False
        return data == b""

    def request_session(self, **changes: Any) -> RequestSession:
        """A "to" session (the server receives) from port 9 unless ``changes`` say otherwise."""
        request = RequestSession(
            sender_address=LOCAL,
            receiver_address=LOCAL,
            sender_port=9,
            receiver_port=0,
            slots=(Slot.of_seconds(SlotType.FIXED, INTERVAL),),
            num_packets=2,
            conf_receiver=True,
            padding_length=PADDING,
            start_time=now_ntp() + duration_to_ntp(0.05),
            timeout=duration_to_ntp(TIMEOUT),
        )
        return replace(request, **changes)

    async def request(self, **changes: Any) -> tuple[int, int, bytes]:
        """Accept, Port and SID of the Accept-Session answering ``request_session(**changes)``."""
        self.writer.write(self.machine.request_session(self.request_session(**changes)))
        return await accepted(self)

    async def stop(self, *descriptions: SessionDescription) -> StopSessions:
        """Our Stop-Sessions; returns the server's (RFC 4656 §3.8)."""
        self.writer.write(self.machine.stop_sessions(StopSessions(Accept.OK, descriptions)))
        stopped = await self.event()
        assert isinstance(stopped, SessionsStopped)
        return stopped.stop

    async def fetch(self, sid: bytes) -> FetchResult:
        """The fetched session; a refusal is a Fetch-Ack without data."""
        self.writer.write(self.machine.fetch_session(FetchSession(sid)))
        fetched = await self.event()
        if isinstance(fetched, Refused):
            assert fetched.accept is not None
            return FetchResult(FetchAck(fetched.accept, False, 0, 0, 0), None)
        assert isinstance(fetched, Fetched)
        return FetchResult(fetched.ack, fetched.data)


class SpyServer(OwampServer):
    """The OWAMP server, keeping each connection's state for the test to look at."""

    def __init__(self, settings: ServerSettings) -> None:
        super().__init__(settings)
        self.connections: list[Any] = []

    def connection(
        self, peer: Endpoint, local: Endpoint, refuse: str | None, writer: asyncio.StreamWriter
    ) -> Any:
        conn = super().connection(peer, local, refuse, writer)
        self.connections.append(conn)
        return conn


Scenario = Callable[[Client, SpyServer], Awaitable[None]]


def run(scenario: Scenario, **settings: Any) -> None:
    """Run ``scenario`` against a fresh OWAMP server on 127.0.0.1 with ``settings``."""

    run_scenario(
        lambda: SpyServer(ServerSettings(owamp_listen=(("127.0.0.1", 0),), **settings)),
        Client,
        scenario,
    )


async def connect(server: SpyServer) -> Client:
    """Another control connection to ``server``."""
    host, port = server._servers[0].sockets[0].getsockname()[:2]
    return Client(*await asyncio.open_connection(host, port))


def bindable(port: int) -> bool:
    """Whether nobody (the server included) holds UDP ``port`` on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def refusals(caplog: pytest.LogCaptureFixture, accept: int) -> list[str]:
    return [r.message for r in caplog.records if f"refused (Accept {accept})" in r.message]


def sessions_of(server: SpyServer) -> list[Any]:
    return [session for conn in server.connections for session in conn.machine.sessions.values()]


# --- Request-Session refusals (RFC 4656 §3.3, §3.5) ---------------------------------------

SENDER = {"conf_sender": True, "conf_receiver": False, "receiver_port": 9, "sid": os.urandom(16)}


def test_too_many_slots_get_accept_4_and_the_connection_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario(client: Client, server: SpyServer) -> None:
        assert await client.set_up() == Accept.OK
        assert (await client.request(slots=(Slot.of_seconds(SlotType.FIXED, 0.01),) * 4))[
            0
        ] == Accept.OK
        slots = (Slot.of_seconds(SlotType.FIXED, 0.01),) * 5
        assert await client.request(slots=slots) == (
            Accept.PERMANENT_RESOURCE_LIMITATION,
            0,
            bytes(16),
        )
        assert await client.closed_by_server()
        await asyncio.sleep(0.05)
        assert sessions_of(server) == []  # the accepted session went with the connection

    with caplog.at_level(logging.WARNING, logger="otwamp.server"):
        run(scenario, max_slots=4)
    lines = refusals(caplog, Accept.PERMANENT_RESOURCE_LIMITATION)
    assert len(lines) == 1 and "5 schedule slots, the limit is 4" in lines[0]


def test_a_port_outside_the_range_is_replaced_by_one_inside() -> None:
    """RFC 4656 §3.5: with Conf-Receiver the requested Port SHOULD be disregarded."""
    low = free_udp_port()

    async def scenario(client: Client, server: SpyServer) -> None:
        assert await client.set_up() == Accept.OK
        outside = low + 1 if low < 65535 else low - 1
        accept, port, _ = await client.request(receiver_port=outside)
        assert (accept, port) == (Accept.OK, low)

    run(scenario, test_ports=(low, low))


@pytest.mark.parametrize("conf", ["receiver", "sender"])
def test_no_free_test_port_is_a_temporary_limitation(
    conf: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_udp_port()
    changes = SENDER if conf == "sender" else {}

    async def scenario(client: Client, server: SpyServer) -> None:
        assert await client.set_up() == Accept.OK
        assert (await client.request(**changes))[:2] == (Accept.OK, port)
        accept, given, _ = await client.request(**changes)
        assert (accept, given) == (Accept.TEMPORARY_RESOURCE_LIMITATION, 0)

    with caplog.at_level(logging.WARNING, logger="otwamp.server"):
        run(scenario, test_ports=(port, port))
    lines = refusals(caplog, Accept.TEMPORARY_RESOURCE_LIMITATION)
    assert len(lines) == 1 and "no free port in the test port range" in lines[0]


# --- Fetch-Session (RFC 4656 §3.9) -------------------------------------------------------


def test_sessions_never_started_are_freed_with_their_connection() -> None:
    port = free_udp_port()

    async def scenario(client: Client, server: SpyServer) -> None:
        assert await client.set_up() == Accept.OK
        assert (await client.request())[:2] == (Accept.OK, port)
        assert not bindable(port)
        client.writer.close()
        await asyncio.sleep(0.2)
        assert bindable(port), "the test socket outlived its control connection"
        assert sessions_of(server) == []
        again = await connect(server)
        try:
            assert await again.set_up() == Accept.OK
            assert (await again.request())[:2] == (Accept.OK, port)  # the port was given back
        finally:
            again.writer.close()

    run(scenario, test_ports=(port, port))


@pytest.mark.parametrize("started", [False, True], ids=["never-started", "never-stopped"])
def test_idle_control_connections_are_cut_off_and_freed(
    started: bool, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_udp_port()

    async def scenario(client: Client, server: SpyServer) -> None:
        assert await client.set_up() == Accept.OK
        assert (await client.request())[:2] == (Accept.OK, port)
        if started:
            assert await client.start() == Accept.OK
        loop = asyncio.get_running_loop()
        begun = loop.time()
        assert await client.closed_by_server(within=5.0)
        assert loop.time() - begun < 2.0
        await asyncio.sleep(0.05)
        assert bindable(port)
        assert sessions_of(server) == []

    with caplog.at_level(logging.WARNING, logger="otwamp.server"):
        run(scenario, test_ports=(port, port), control_timeout=0.3)
    assert any("closed: idle for" in r.message for r in caplog.records)


def test_records_are_bounded_by_the_packet_count() -> None:
    async def scenario(client: Client, server: SpyServer) -> None:
        with _udp_socket() as sender:
            assert await client.set_up() == Accept.OK
            accept, port, sid = await client.request(
                sender_port=sender.getsockname()[1], num_packets=1
            )
            assert accept == Accept.OK
            times = await _start_and_wait(client, server)
            packet = _packet(client, sid, 0, times[0])
            for _ in range(10):
                sender.sendto(packet, ("127.0.0.1", port))
            await asyncio.sleep(0.05)
            (session,) = sessions_of(server)
            assert session.receiver.excess == 8
            await _after(times[-1] + duration_to_ntp(TIMEOUT + 0.05))
            await client.stop(SessionDescription(sid, 1, ()))
            fetched = await client.fetch(sid)
            assert fetched.ack.accept == Accept.OK and fetched.data is not None
            assert len(fetched.data.records) == 2  # twice the packet count, then no more
            assert {record.seq for record in fetched.data.records} == {0}

    run(scenario)


# --- Bad test packets (RFC 4656 §4.2) ----------------------------------------------------


def _udp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def _packet(client: Client, sid: bytes, seq: int, ntp: int) -> bytes:
    """A good OWAMP-Test packet of session ``sid`` in the client's mode, sent at ``ntp``."""
    sender = OwampSender(bytes(PADDING), session_protection(int(client.mode), sid, client.keys))
    return bytes(sender.stamp(sender.prepare(seq), ntp, 1))


async def _after(ntp: int) -> None:
    """Sleep until the 32.32 time ``ntp``."""
    await asyncio.sleep(max((ntp - now_ntp()) / 2**32, 0.0))


async def _start_and_wait(client: Client, server: SpyServer) -> list[int]:
    """Start the sessions and wait for the first one's Start Time; its send times."""
    assert await client.start() == Accept.OK
    (session, *_) = sessions_of(server)
    await _after(session.times[0])
    times: list[int] = session.times
    return times


@pytest.mark.parametrize(
    "mode", [TwampMode.UNAUTHENTICATED, TwampMode.AUTHENTICATED, TwampMode.ENCRYPTED]
)
def test_bad_test_packets_are_dropped_counted_and_fetched_as_lost(
    mode: TwampMode, tmp_path: Any
) -> None:
    keyfile = tmp_path / "k.pfs"
    keyfile.write_text("alice\t616263\n")
    keyfile.chmod(0o600)  # a key file as an operator keeps it
    credentials = Credentials(encode_key_id("alice"), b"abc", KeySourceKind.PASSPHRASE, "alice")
    secured = mode is not TwampMode.UNAUTHENTICATED

    async def scenario(client: Client, server: SpyServer) -> None:
        with _udp_socket() as sender, _udp_socket() as stranger:
            assert await client.set_up(mode, credentials if secured else None) == Accept.OK
            accept, port, sid = await client.request(
                sender_port=sender.getsockname()[1], num_packets=3
            )
            assert accept == Accept.OK
            times = await _start_and_wait(client, server)
            server_port = ("127.0.0.1", port)
            first = _packet(client, sid, 0, times[0])
            second = _packet(client, sid, 1, times[1])
            stranger.sendto(first, server_port)  # wrong source
            sender.sendto(second[:5], server_port)  # truncated
            if secured:
                # One bit of the packet's HMAC flipped (RFC 4656 §4.1.2, RFC 7717)
                forged = second[:-65] + bytes([second[-65] ^ 1]) + second[-64:]
                sender.sendto(forged, server_port)
            else:
                # An open packet cannot be forged detectably; it may be out of schedule.
                sender.sendto(_packet(client, sid, 7, times[1]), server_port)  # no such seq
            sender.sendto(first, server_port)  # the one good packet: seq 1 and 2 are lost
            await asyncio.sleep(0.05)
            (session,) = sessions_of(server)
            dropped = session.receiver.record.dropped
            assert dropped.wrong_source == 0  # connect()ed: the kernel turns the stranger away (S6)
            assert dropped.truncated == 1
            assert dropped.auth_failures == (1 if secured else 0)
            assert dropped.unknown_seq == (0 if secured else 1)
            await _after(times[-1] + duration_to_ntp(TIMEOUT + 0.05))
            ours = await client.stop(SessionDescription(sid, 3, ()))
            assert ours.sessions == ()  # the server sent nothing
            fetched = await client.fetch(sid)
            assert fetched.ack.accept == Accept.OK and fetched.ack.finished
            assert fetched.ack.next_seqno == 3
            data = fetched.data
            assert data is not None
            assert data.request.sid == sid and data.request.receiver_port == port
            received = [record.seq for record in data.records if not record.lost]
            lost = [record.seq for record in data.records if record.lost]
            assert received == [0]
            assert sorted(lost) == [1, 2]
            (record,) = (r for r in data.records if not r.lost)
            assert record.send_timestamp == times[0]
            assert record.send_timestamp <= record.receive_timestamp

    run(scenario, modes=ALL_MODES, key_sources=(PassphraseFile.load(keyfile),))


# --- Sessions the server sends, and a second round on one connection (RFC 4656 §3.4, §3.8) -


async def _from_round(client: Client, server: SpyServer, receiver: socket.socket) -> StopSessions:
    """Request, start and run one "from" session of 2 packets to ``receiver``; the server's Stop."""
    sid = os.urandom(16)
    receiver_port = receiver.getsockname()[1]
    accept, _, _ = await client.request(**{**SENDER, "receiver_port": receiver_port, "sid": sid})
    assert accept == Accept.OK
    assert await client.start() == Accept.OK
    theirs = await client.event()  # the server stops its send session once it is done
    assert isinstance(theirs, SessionsStopped)
    ours = StopSessions(Accept.OK, ())
    client.writer.write(client.machine.stop_sessions(ours))
    await client.writer.drain()
    return theirs.stop


async def _received(sock: socket.socket) -> list[int]:
    """Sequence numbers of the open-mode test packets queued on ``sock``."""
    await asyncio.sleep(0.05)
    seqs = []
    while True:
        try:
            data = sock.recv(2048)
        except BlockingIOError:
            return seqs
        seqs.append(int.from_bytes(data[:4], "big"))


def test_the_server_sends_a_from_session_and_stops_it() -> None:
    async def scenario(client: Client, server: SpyServer) -> None:
        with _udp_socket() as receiver:
            receiver.setblocking(False)
            assert await client.set_up() == Accept.OK
            stop = await asyncio.wait_for(_from_round(client, server, receiver), 5)
            (description,) = stop.sessions
            assert (description.next_seqno, description.skip_ranges) == (2, ())
            assert await _received(receiver) == [0, 1]

    run(scenario)


async def _to_round(client: Client) -> StopSessions:
    """Request and start one "to" session, stop it with nothing sent; the server's Stop."""
    accept, _, sid = await client.request()
    assert accept == Accept.OK
    assert await client.start() == Accept.OK
    return await client.stop(SessionDescription(sid, 0, ()))


@pytest.mark.parametrize("direction", ["to", "from"])
def test_a_second_round_on_one_connection_stops_again(direction: str) -> None:
    async def scenario(client: Client, server: SpyServer) -> None:
        with _udp_socket() as receiver:
            receiver.setblocking(False)
            assert await client.set_up() == Accept.OK
            for _ in range(2):
                if direction == "to":
                    stop = await asyncio.wait_for(_to_round(client), 2)
                    assert stop.sessions == ()
                    continue
                stop = await asyncio.wait_for(_from_round(client, server, receiver), 2)
                (description,) = stop.sessions
                assert description.next_seqno == 2
                assert await _received(receiver) == [0, 1]

    run(scenario)


def test_a_session_longer_than_the_control_timeout_runs_to_its_end() -> None:
    """A quiet control connection is kept while its sessions run (RFC 5357 §3.1 SERVWAIT)."""

    async def scenario(client: Client, server: SpyServer) -> None:
        with _udp_socket() as receiver:
            receiver.setblocking(False)
            assert await client.set_up() == Accept.OK
            changes = {**SENDER, "receiver_port": receiver.getsockname()[1], "num_packets": 8}
            slots = (Slot.of_seconds(SlotType.FIXED, 0.1),)
            assert (await client.request(**changes, slots=slots))[0] == Accept.OK
            assert await client.start() == Accept.OK
            theirs = await client.event()  # after 8 x 0.1 s + Timeout, past control_timeout
            assert isinstance(theirs, SessionsStopped)
            assert theirs.stop.sessions[0].next_seqno == 8
            assert await _received(receiver) == list(range(8))

    run(scenario, control_timeout=0.3)
