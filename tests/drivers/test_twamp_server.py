"""The asyncio TWAMP server over real loopback sockets, driven by our own client machine.

Requests the server cannot honour get the Accept value RFC 4656 §3.3 calls
for; test packets that are truncated, from the wrong source or forged are
dropped and counted (RFC 5357 §4.2); no failure disturbs other sessions.
"""

import asyncio
import ipaddress
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from otwamp.control.twamp_client import TwampClientConnection
from otwamp.drivers.clock import ClockState
from otwamp.drivers.twamp_server import ServerSettings, TwampServer
from otwamp.keys.passphrase import PassphraseFile
from otwamp.keys.source import Credentials, KeySourceKind
from otwamp.results.records import TwampSessionRecord
from otwamp.session.protection import session_protection
from otwamp.session.sender import SessionSender
from otwamp.wire.registry import Accept, TwampMode
from otwamp.wire.setup import encode_key_id
from otwamp.wire.twamp_control import RequestTwSession
from tests.drivers.harness import ControlClient, accepted, free_udp_port, run_scenario

LOCAL = ipaddress.ip_address("127.0.0.1")


class Client(ControlClient):
    """A TWAMP-Control client over a real TCP connection, one step at a time."""

    read_size = 4096

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer, TwampClientConnection(os.urandom))

    async def request(self, **changes: Any) -> tuple[int, int, bytes]:
        request = RequestTwSession(LOCAL, LOCAL, changes.pop("sender_port", 9), 0)
        self.writer.write(self.machine.request_session(replace(request, **changes)))
        return await accepted(self)


Scenario = Callable[[Client, TwampServer], Awaitable[None]]


def run(scenario: Scenario, **settings: Any) -> None:
    """Run ``scenario`` against a fresh server on 127.0.0.1 with ``settings``."""

    run_scenario(
        lambda: TwampServer(ServerSettings(listen=(("127.0.0.1", 0),), **settings)),
        Client,
        scenario,
    )


def test_no_free_test_port_is_a_temporary_limitation() -> None:
    port = free_udp_port()

    async def scenario(client: Client, server: TwampServer) -> None:
        await client.set_up()
        assert (await client.request())[:2] == (Accept.OK, port)
        accept, given, _ = await client.request()
        assert (accept, given) == (Accept.TEMPORARY_RESOURCE_LIMITATION, 0)

    run(scenario, test_ports=(port, port))


def _sender_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


@pytest.mark.parametrize(
    "mode", [TwampMode.UNAUTHENTICATED, TwampMode.AUTHENTICATED, TwampMode.ENCRYPTED]
)
def test_bad_test_packets_are_dropped_and_counted(
    mode: TwampMode, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    keyfile = tmp_path / "k.pfs"
    keyfile.write_text("alice\t616263\n")
    keyfile.chmod(0o600)  # a key file as an operator keeps it
    credentials = Credentials(encode_key_id("alice"), b"abc", KeySourceKind.PASSPHRASE, "alice")

    async def scenario(client: Client, server: TwampServer) -> None:
        sender, stranger = _sender_socket(), _sender_socket()
        with sender, stranger:
            await client.set_up(
                mode, credentials if mode is not TwampMode.UNAUTHENTICATED else None
            )
            accept, port, sid = await client.request(sender_port=sender.getsockname()[1])
            assert accept == Accept.OK
            assert await client.start() == Accept.OK
            engine = SessionSender(
                TwampSessionRecord(sid, "x", "y"),
                bytes(64),
                session_protection(int(mode), sid, client.keys),
            )
            good = bytes(engine.stamp(engine.prepare(0), 1 << 32, 1))
            reflector = ("127.0.0.1", port)
            stranger.sendto(good, reflector)  # wrong source
            sender.sendto(good[:5], reflector)  # truncated
            if mode is not TwampMode.UNAUTHENTICATED:
                sender.sendto(
                    good[:-65] + bytes([good[-65] ^ 1]) + good[-64:], reflector
                )  # HMAC fails
            sender.sendto(good, reflector)
            loop = asyncio.get_running_loop()
            reply = await asyncio.wait_for(loop.sock_recv(sender, 2048), 2)
            assert len(reply) == len(good)
            writer = client.writer
            writer.write(client.machine.stop_sessions(Accept.OK, 1))
            await writer.drain()
            await asyncio.sleep(0.1)  # Timeout 0 (RFC 5357 §3.8): the session closes at once

    with caplog.at_level(logging.INFO, logger="otwamp.server"):
        run(scenario, modes=TwampMode(0x07), key_sources=(PassphraseFile.load(keyfile),))
    failed = 0 if mode is TwampMode.UNAUTHENTICATED else 1
    expected = f"reflected 1; dropped 0 wrong-source, 1 short, 0 corrupt, {failed} failed HMAC"
    assert any(expected in record.message for record in caplog.records), [
        r.message for r in caplog.records
    ]


def test_each_round_of_sessions_reads_the_clock_when_it_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The S bit follows the kernel's clock state per session, not the server's start-up."""
    states = iter([ClockState(False, 0.5), ClockState(True, 1e-5)])
    monkeypatch.setattr("otwamp.drivers.twamp_server.clock_state", lambda: next(states))

    async def reflected_error(client: Client, sender: socket.socket) -> int:
        accept, port, sid = await client.request(sender_port=sender.getsockname()[1])
        assert accept == Accept.OK
        assert await client.start() == Accept.OK
        engine = SessionSender(TwampSessionRecord(sid, "x", "y"), bytes(27), None)
        sender.sendto(bytes(engine.stamp(engine.prepare(0), 1 << 32, 1)), ("127.0.0.1", port))
        reply = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sender, 2048), 2)
        client.writer.write(client.machine.stop_sessions(Accept.OK, 1))
        error: int = struct.unpack_from("!H", reply, 12)[0]  # RFC 5357 §4.2.1
        return error

    async def scenario(client: Client, server: TwampServer) -> None:
        await client.set_up()
        with _sender_socket() as sender:
            first = await reflected_error(client, sender)
            second = await reflected_error(client, sender)
        assert not first & 0x8000  # S: unsynchronized when the first round started
        assert second & 0x8000  # synchronized by the second

    run(scenario)
