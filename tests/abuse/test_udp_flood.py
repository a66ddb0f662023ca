"""S6: a UDP flood at a running session's test ports costs the session nothing.

A real ``otwamp server`` and a real ``otwamp ping`` (then ``owping``) run on
loopback while a flooder thread sends TWAMP-shaped and random datagrams to the
session's test ports from other source ports of 127.0.0.1. The test sockets
are connected to their peer, so the kernel drops the strangers before they
cost user-space time: the session loses (almost) nothing. Stray packets do not
keep a reflector alive past REFWAIT either. Traffic goes only to 127.0.0.0/8,
and each flood is bounded in time and datagrams.
"""

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.abuse.attackers import RoundTrips, connected
from tests.e2e.conftest import OwampServer, running_server
from tests.e2e.processes import otwamp_command
from tests.e2e.rfc_client import TwampClient, ntp, reflected_seq, sender_packet

pytestmark = pytest.mark.timeout(90)

HOST = "127.0.0.1"
FLOOD_SECONDS = 2.5
FLOOD_DATAGRAMS = 500_000
FLOODERS = 4  # source sockets, so the strangers come from several ports
MAX_LOSS = 0.01
REFWAIT = 2  # seconds, through the server's configuration file
REFLECTING = re.compile(r"session [0-9a-f]{32}: reflecting for \S+:(\d+) on port (\d+)")
OWAMP_PORTS = re.compile(
    r"OWAMP session [0-9a-f]{32}: (receiving from|sending to) \S+:(\d+), \d+ packets, port (\d+)"
)


def payloads() -> list[bytes]:
    """TWAMP-Test sender packets (RFC 5357 §4.1.2) and random datagrams of random sizes."""
    shaped = [sender_packet(seq) + bytes(27) for seq in range(64)]
    noise = [os.urandom(size) for size in (1, 14, 41, 64, 112, 200, 512, 1400)]
    return shaped + noise


class Flooder:
    """Sends stray datagrams to the targets from other ports until stopped or bounded."""

    def __init__(self, seconds: float = FLOOD_SECONDS) -> None:
        self.seconds = seconds
        self.targets: list[tuple[str, int]] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, targets: list[tuple[str, int]]) -> None:
        """Flood ``targets`` (loopback only) in a thread."""
        assert all(host.startswith("127.") for host, _ in targets), targets
        self.targets = targets
        self._thread.start()

    def stop(self) -> int:
        """Stop and return how many datagrams were sent."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join()
        return self.sent

    @property
    def running(self) -> bool:
        """Whether the flood is still going."""
        return self._thread.is_alive()

    def _run(self) -> None:
        sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(FLOODERS)]
        data = payloads()
        deadline = time.monotonic() + self.seconds
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                for i in range(256):
                    sock = sockets[i % FLOODERS]
                    for target in self.targets:
                        # ECONNREFUSED: the ICMP error of an earlier datagram; ENOBUFS
                        with contextlib.suppress(OSError):
                            sock.sendto(data[i % len(data)], target)
                        self.sent += 1
                if self.sent >= FLOOD_DATAGRAMS:
                    return
        finally:
            for sock in sockets:
                sock.close()


@contextlib.contextmanager
def flooding(seconds: float = FLOOD_SECONDS) -> Iterator[Flooder]:
    """A flooder, stopped when the block ends."""
    flooder = Flooder(seconds)
    try:
        yield flooder
    finally:
        flooder.stop()


def wait_for_match(
    server: OwampServer, pattern: re.Pattern[str], count: int, timeout: float = 15.0
) -> list[re.Match[str]]:
    """The first ``count`` matches of ``pattern`` in the server's log, waiting for them."""
    deadline = time.monotonic() + timeout
    while True:
        found = list(pattern.finditer(server.log()))
        if len(found) >= count:
            return found[:count]
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.01)


def measure_under_flood(
    server: OwampServer,
    args: list[str],
    pattern: re.Pattern[str],
    count: int,
    targets: Callable[[list[re.Match[str]]], list[tuple[str, int]]],
) -> tuple[dict[str, object], int]:
    """Run ``otwamp *args --json`` while flooding the test ports found in the log."""
    measuring = subprocess.Popen(
        [*otwamp_command(), *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with flooding() as flooder:
        try:
            flooder.start(targets(wait_for_match(server, pattern, count)))
            out, err = measuring.communicate(timeout=40)
        finally:
            if measuring.poll() is None:
                measuring.kill()
                measuring.communicate()
        sent = flooder.stop()
    assert measuring.returncode == 0, err
    return json.loads(out), sent


def assert_no_loss(packets: dict[str, int]) -> None:
    """At most MAX_LOSS of the session lost; no stranger reached the kernel's queue."""
    assert packets["sent"] == 1000, packets
    assert packets["lost"] <= MAX_LOSS * packets["sent"], packets
    # Connected, the socket queues only the peer's datagrams: a drop is a lost packet.
    assert packets["kernel_drops"] <= packets["lost"], packets


def test_a_flood_at_both_twamp_test_ports_costs_a_ping_nothing() -> None:
    def ports(found: list[re.Match[str]]) -> list[tuple[str, int]]:
        """Three quarters of the flood at the reflector's port, the rest at the client's."""
        reflector, client = (HOST, int(found[0].group(2))), (HOST, int(found[0].group(1)))
        return [reflector, reflector, reflector, client]

    with running_server() as server:
        document, flooded = measure_under_flood(
            server,
            ["ping", server.twamp_target, "-c", "1000", "-i", "0.001"],
            REFLECTING,
            1,
            ports,
        )
        log = server.log()
    assert flooded > 10_000, flooded  # the flood did run
    assert_no_loss(document["packets"])  # type: ignore[arg-type]
    assert "Traceback" not in log, log


def test_a_flood_at_both_owamp_test_ports_costs_an_owping_nothing() -> None:
    def ports(found: list[re.Match[str]]) -> list[tuple[str, int]]:
        """The receivers' ports: the server's for "to", the client's for "from"."""
        return [
            (HOST, int(match.group(3) if match.group(1) == "receiving from" else match.group(2)))
            for match in found
        ]

    with running_server() as server:
        document, flooded = measure_under_flood(
            server,
            ["owping", f"{server.host}:{server.port}", "-c", "1000", "-i", "0.001"],
            OWAMP_PORTS,
            2,
            ports,
        )
        log = server.log()
    assert flooded > 10_000, flooded
    for direction in ("to", "from"):
        assert_no_loss(document[direction]["packets"])  # type: ignore[index]
    assert "Traceback" not in log, log


def test_strays_do_not_keep_a_reflector_past_refwait(tmp_path: Path) -> None:
    config = tmp_path / "server.toml"
    config.write_text(f"[server]\nrefwait = {REFWAIT}\n")
    with running_server(extra_args=["--config", str(config)]) as server:
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with (
            sender,
            TwampClient(server.host, server.twamp_port) as client,
            flooding(REFWAIT + 2.0) as flooder,
        ):
            sender.bind((HOST, 0))
            sender.settimeout(2.0)
            assert client.set_up() == 0
            accepted = client.request_tw_session(sender.getsockname()[1], ntp(time.time()), 1.0)
            assert accepted.accept == 0
            assert client.start_sessions() == 0
            reflector = (HOST, accepted.port)
            assert [reflected_seq(sender, reflector, seq) for seq in range(3)] == [0, 1, 2]
            last_valid = time.monotonic()
            flooder.start([reflector])
            wait_for_match(server, re.compile(r"\(REFWAIT\)"), 1, timeout=REFWAIT + 3.0)
            closed_after = time.monotonic() - last_valid
            flooding_still = flooder.running
    assert closed_after < REFWAIT + 1.0, closed_after
    assert flooding_still, "the flood ended before REFWAIT did: the test proves nothing"


PEER_FLOOD_SECONDS = 3.0
PEER_FLOOD_RTT_P99 = 0.100  # a control round trip while a reflector is flooded by its own peer
# The flooder: another process, so that its sends do not take this process's GIL from the probe.
FLOOD_FROM_FD = """
import os, socket, struct, sys, time
sock = socket.socket(fileno=int(sys.argv[1]))
packets = [struct.pack("!IQH", seq, 0, 0) + bytes(27) for seq in range(256)]
end = time.monotonic() + float(sys.argv[2])
sent = 0
while time.monotonic() < end:
    for packet in packets:
        try:
            sock.send(packet)
            sent += 1
        except OSError:
            pass
print(sent)
"""


def test_a_reflector_flooded_by_its_own_peer_does_not_hold_the_server(
    abuse_server: Callable[..., contextlib.AbstractContextManager[OwampServer]],
) -> None:
    """The kernel cannot drop what the session's own peer sends: the reflector reads at most
    a batch per turn of the event loop, so every other connection is still served (S6)."""
    with abuse_server() as server, RoundTrips(server.twamp_port) as probe:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        control = connected(TwampClient, HOST, server.twamp_port, "127.0.0.2")
        with udp, control:
            udp.bind(("127.0.0.2", 0))
            control.set_up()
            accepted = control.request_tw_session(udp.getsockname()[1], ntp(time.time()), 1.0)
            assert accepted.accept == 0, accepted
            control.start_sessions()
            udp.connect((HOST, accepted.port))
            flood = subprocess.run(
                [sys.executable, "-c", FLOOD_FROM_FD, str(udp.fileno()), str(PEER_FLOOD_SECONDS)],
                pass_fds=(udp.fileno(),),
                capture_output=True,
                text=True,
                timeout=PEER_FLOOD_SECONDS + 30,
                check=True,
            )
        log = server.log()
    print(
        f"S6 peer flood: {flood.stdout.strip()} datagrams in {PEER_FLOOD_SECONDS} s; "
        f"control round trip {probe.summary()}"
    )
    assert int(flood.stdout) > 10_000  # a flood, not a trickle
    assert probe.error is None and probe.samples and set(probe.accepts) == {0}, probe.error
    assert probe.p99() < PEER_FLOOD_RTT_P99, probe.summary()
    assert "Traceback" not in log
