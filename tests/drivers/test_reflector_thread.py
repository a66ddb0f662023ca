"""The reflector thread over real loopback sockets (issue 15: T3 close to T2).

Session-Reflectors read and reflect in a thread of their own, outside the
asyncio loop; start, stop and close come from the loop. Closing a session
while its packets arrive, or a session whose reflecting fails, disturbs no
other session.
"""

import asyncio
import contextlib
import logging
import socket
import threading
import time

import pytest

from otwamp.drivers.clock import ClockState
from otwamp.drivers.reflector import ReflectorEndpoint
from otwamp.drivers.reflector_thread import reflector_thread
from otwamp.drivers.udp import open_test_socket
from otwamp.session.packets import SenderPackets
from otwamp.wire.timestamp import ns_to_ntp

ERROR = 1  # Error Estimate: Multiplier 1 (RFC 4656 §4.1.2: 0 is invalid)
SID = bytes(16)


def _packet(seq: int) -> bytes:
    """An unauthenticated Session-Sender packet (RFC 5357 §4.1.2), 41 octets."""
    packets = SenderPackets(bytes(27))
    return bytes(packets.stamp(packets.prepare(seq), ns_to_ntp(time.time_ns()), ERROR))


def _sender() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    return sock


class Session:
    """A started ReflectorEndpoint and the sender socket it reflects to."""

    def __init__(self) -> None:
        self.sender = _sender()
        self.closed: list[str] = []
        sock = open_test_socket("127.0.0.1", 0, socket.AF_INET)
        self.endpoint = ReflectorEndpoint(
            sock,
            self.sender.getsockname(),
            SID,
            60 * 10**9,
            lambda _endpoint, reason: self.closed.append(reason),
        )
        self.endpoint.start(ClockState(synchronized=False, error=0.001))
        self.sender.connect(("127.0.0.1", self.endpoint.port))

    def reflect(self, seq: int) -> bytes:
        """Send packet ``seq`` and wait for its reply (in a worker: the loop stays free)."""
        self.sender.send(_packet(seq))
        return self.sender.recv(2048)

    def close(self) -> None:
        self.endpoint.close()
        self.sender.close()


def test_packets_are_reflected_in_the_reflector_thread() -> None:
    async def scenario() -> None:
        session = Session()
        threads: list[str] = []
        engine = session.endpoint.engine
        reflect = engine.reflect

        def recording(*args: object, **kwargs: object) -> bytearray | None:
            threads.append(threading.current_thread().name)
            return reflect(*args, **kwargs)  # type: ignore[arg-type]

        engine.reflect = recording  # type: ignore[method-assign]
        try:
            for seq in range(3):
                reply = await asyncio.to_thread(session.reflect, seq)
                assert int.from_bytes(reply[:4]) == seq  # the reflector's own Sequence Number
        finally:
            session.close()
        assert threads == ["otwamp-reflector"] * 3
        assert session.closed == ["closed"]
        assert engine.counters.reflected == 3

    asyncio.run(scenario())


def test_closing_a_session_while_its_packets_arrive() -> None:
    """The loop closes a session mid-flood: once, cleanly; the next session reflects."""

    async def scenario() -> None:
        session = Session()
        flooding = threading.Event()
        flooding.set()

        def flood() -> None:
            packet = _packet(0)
            while flooding.is_set():
                with contextlib.suppress(OSError):  # closed: ICMP errors come back
                    session.sender.send(packet)

        flooder = threading.Thread(target=flood)
        flooder.start()
        try:
            await asyncio.sleep(0.2)
            session.endpoint.close()
            session.endpoint.close()  # a second close does nothing
        finally:
            flooding.clear()
            flooder.join()
            session.sender.close()
        assert session.closed == ["closed"]
        assert session.endpoint.sock.fileno() == -1
        assert session.endpoint.engine.counters.reflected > 0
        after = Session()
        try:
            reply = await asyncio.to_thread(after.reflect, 5)
            assert len(reply) >= 41
        finally:
            after.close()

    asyncio.run(scenario())


class _Failing:
    """A registration whose reflecting raises, with a real socket."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.lock = threading.Lock()
        self.closed = False
        self.calls = 0

    def fileno(self) -> int:
        return self.sock.fileno()

    def readable(self) -> None:
        self.calls += 1
        self.sock.recv(2048)
        raise RuntimeError("reflecting failed")


def test_a_session_whose_reflecting_fails_disturbs_no_other(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        failing = _Failing()
        thread = reflector_thread()
        thread.add(failing)
        session = Session()
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stray:
                stray.sendto(b"x", failing.sock.getsockname())
            reply = await asyncio.to_thread(session.reflect, 1)
            assert int.from_bytes(reply[:4]) == 0
            for _ in range(100):
                if failing.calls:
                    break
                await asyncio.sleep(0.01)
        finally:
            with failing.lock:
                thread.remove(failing)
                failing.sock.close()
            session.close()
        assert failing.calls == 1
        assert "reflecting on descriptor" in caplog.text

    with caplog.at_level(logging.ERROR, logger="otwamp.server"):
        asyncio.run(scenario())
