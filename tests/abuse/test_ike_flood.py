"""Issue 10, S5: one host floods ``otwamp ike`` with IKE_SA_INITs from many UDP source ports,
echoing every COOKIE from yet another port (RFC 7296 §2.6). A peer on another address must still
set up its IKE SA within seconds; the daemon's half-open SAs stay within the per-source limit and
its log sums the flood up in a few lines. Traffic stays on 127.0.0.0/8.
"""

import asyncio
import re
import selectors
import socket
import threading
import time
from pathlib import Path

import pytest

from otwamp.ike.admission import HalfOpenLimits
from otwamp.ike.broker import query
from otwamp.ike.framing import frame, unframe
from otwamp.ike.initiator import Initiator
from otwamp.ike.policy import Policy
from otwamp.ike.proposal import Suite
from otwamp.ike.registry import NotifyType
from otwamp.ike.sa import Address
from otwamp.ike.timers import HALF_OPEN_LIFETIME
from otwamp.ike.wire.identity import Identity
from otwamp.ike.wire.message import Message
from tests.e2e.ike_support import (
    CLIENT_ID,
    SERVER_ID,
    IkePeer,
    Logged,
    free_port,
    ike_command,
    threaded_ike,
    wait_until,
    write_ike_config,
)

pytestmark = pytest.mark.timeout(120)

FLOOD_HOST, DAEMON_HOST, PEER_HOST = "127.0.0.1", "127.0.0.2", "127.0.0.3"
PSK = "abuse-test-psk-0123456789"
LIMITS = HalfOpenLimits()  # the daemon runs with the defaults
SOURCE_PORTS = 128
ATTEMPTS = 3 * LIMITS.max_half_open  # would fill the global table without per-source limits
BURST = 32  # IKE_SA_INITs sent before reading the answers
LEGITIMATE_WITHIN = 5.0  # seconds for the peer's IKE SA during the flood
FLOOD_LINE = re.compile(r"IKE_SA_INIT dropped|evicted|COOKIEs")


class Flood:
    """IKE_SA_INITs from many ports of FLOOD_HOST, each COOKIE echoed from the next port."""

    def __init__(self, target: Address) -> None:
        self.target = target
        self.policy = Policy(
            Identity.fqdn("flood.ippm.test"),
            (Suite.parse("aes128-sha256-x25519"),),
            {Identity.fqdn(SERVER_ID): b"not the PSK"},
        )
        self.sockets = [_udp_socket(FLOOD_HOST) for _ in range(SOURCE_PORTS)]
        self.selector = selectors.DefaultSelector()
        for index, sock in enumerate(self.sockets):
            self.selector.register(sock, selectors.EVENT_READ, index)
        self.initiators: dict[bytes, Initiator] = {}
        self.sent = 0
        self.cookies_echoed = 0
        self.accepted: set[bytes] = set()  # SPIi of every IKE_SA_INIT the daemon answered
        self.duration = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        while self.sent < ATTEMPTS:
            for _ in range(BURST):
                initiator = Initiator(self.policy, Identity.fqdn(SERVER_ID), self.target)
                self.initiators[initiator.spi_i] = initiator
                self._send(initiator.start(time.time()), self.sent)
                self.sent += 1
            self._answers(0.005)
        self._answers(0.5)
        self.duration = time.monotonic() - start

    def _send(self, message: bytes, index: int) -> None:
        self.sockets[index % SOURCE_PORTS].sendto(frame(message, True), self.target)

    def _answers(self, timeout: float) -> None:
        """Read every answer that comes within ``timeout``; echo COOKIEs from the next port."""
        while ready := self.selector.select(timeout):
            for key, _ in ready:
                datagram = self.sockets[key.data].recv(65535)
                self._answer(unframe(datagram, True), key.data)

    def _answer(self, data: bytes, index: int) -> None:
        message = Message.decode(data)
        if message.notify(NotifyType.COOKIE) is None:
            if message.spi_r != bytes(8):
                self.accepted.add(message.spi_i)  # half-open in the daemon; never authenticated
            self.initiators.pop(message.spi_i, None)
            return
        [echo] = self.initiators[message.spi_i].receive(data, time.time()).datagrams
        self._send(echo, index + 1)
        self.cookies_echoed += 1

    def close(self) -> None:
        self.selector.close()
        for sock in self.sockets:
            sock.close()


def _udp_socket(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.setblocking(False)
    return sock


def _half_open(broker: Path) -> int:
    answer = asyncio.run(query(broker, {"op": "status"}))
    count: int = answer["half_open"]
    return count


def _configs(directory: Path) -> tuple[Path, Path, int]:
    """The daemon's configuration on DAEMON_HOST and its peer's on PEER_HOST (PSK)."""
    daemon_port = free_port(DAEMON_HOST, socket.SOCK_DGRAM)
    peer_port = free_port(PEER_HOST, socket.SOCK_DGRAM)
    daemon = write_ike_config(
        directory / "daemon.toml",
        address=DAEMON_HOST,
        port=daemon_port,
        local_id=SERVER_ID,
        peers=[IkePeer(CLIENT_ID, PEER_HOST, peer_port, PSK)],
    )
    peer = write_ike_config(
        directory / "peer.toml",
        address=PEER_HOST,
        port=peer_port,
        local_id=CLIENT_ID,
        peers=[IkePeer(SERVER_ID, DAEMON_HOST, daemon_port, PSK)],
    )
    return daemon, peer, daemon_port


def _dropped(log: str) -> int:
    """How many dropped IKE_SA_INITs the daemon's log lines count in all."""
    return sum(int(n) for n in re.findall(r"IKE_SA_INIT dropped: [^:]*: (\d+) in", log))


def test_a_flood_from_many_ports_of_one_host_leaves_ike_to_others(tmp_path):
    daemon_config, peer_config, daemon_port = _configs(tmp_path)
    daemon = Logged([*ike_command(), "--config", str(daemon_config)], tmp_path / "daemon.log")
    broker = daemon_config.with_suffix(".sock")
    flood = Flood((DAEMON_HOST, daemon_port))
    try:
        daemon.wait_for("listening on")
        with threaded_ike(peer_config) as peer:
            flood.thread.start()
            wait_until(lambda: flood.sent >= ATTEMPTS // 2, "half the flood")
            most = _half_open(broker)
            start = time.monotonic()
            sa = peer.initiate(DAEMON_HOST)
            legitimate = time.monotonic() - start
            assert flood.thread.is_alive(), "the peer's IKE SA was set up during the flood"
            while flood.thread.is_alive():
                most = max(most, _half_open(broker))
                time.sleep(0.05)
            print(
                f"S5: {flood.sent} IKE_SA_INITs from {SOURCE_PORTS} ports of {FLOOD_HOST} in "
                f"{flood.duration:.1f} s, {flood.cookies_echoed} COOKIEs echoed, "
                f"{len(flood.accepted)} answered; most half-open SAs seen: {most}; "
                f"peer's IKE SA in {legitimate * 1000:.0f} ms"
            )
            assert flood.sent >= ATTEMPTS > LIMITS.max_half_open
            assert flood.duration < HALF_OPEN_LIFETIME, "none of the flood's SAs expired yet"
            assert len(flood.accepted) == LIMITS.max_half_open_per_source
            assert flood.cookies_echoed >= LIMITS.max_half_open_per_source - (
                LIMITS.cookie_threshold_per_source
            )
            assert legitimate < LEGITIMATE_WITHIN
            assert sa.remote_id == Identity.fqdn(SERVER_ID)
            assert most <= LIMITS.max_half_open_per_source + 1  # the peer's own, briefly
            assert _half_open(broker) == LIMITS.max_half_open_per_source
        # The counts of the first line's interval come in one more line, 10 s after the first.
        daemon.wait_for("IKE_SA_INIT dropped", count=2, timeout=15.0)
        log = daemon.log()
        flood_lines = [line for line in log.splitlines() if FLOOD_LINE.search(line)]
        print("S5: the daemon's lines about the flood:", *flood_lines, sep="\n  ")
        assert len(flood_lines) <= 3
        unanswered = flood.sent - len(flood.accepted)  # each COOKIE echo was answered or not
        assert 0 < _dropped(log) <= unanswered  # the kernel may have dropped some first
        assert f"with {PEER_HOST}:" in log and " established " in log
        assert daemon.stop() == 0
        assert "Traceback" not in daemon.log()
    finally:
        flood.close()
        daemon.stop()
