"""S3: session quotas per connection and per source address, and an fd budget.

One connection asking 1,200 TWAMP sessions gets 64 (``max_sessions_per_connection``,
Accept 4 beyond, RFC 4656 §3.3); one address gets 256 across its
connections and both protocols (``max_sessions_per_source``, Accept 5
beyond); under ``ulimit -n 256`` the test sockets stay within a budget that
leaves room for control connections, so accept() never fails and a
legitimate client is served. The refusals are logged at most five a second.
Traffic goes only to 127.0.0.0/8.
"""

import contextlib
import math
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.abuse.attackers import (
    HOST,
    Legit,
    Sampler,
    ServerFactory,
    busiest_second,
    connected,
    excerpt,
    legit,
    request_receive_sessions,
    request_tw_sessions,
    sources,
)
from tests.e2e.conftest import OwampServer
from tests.e2e.rfc_client import ControlClient, OwampClient, TwampClient

PER_CONNECTION = 64  # max_sessions_per_connection's default
PER_SOURCE = 256  # max_sessions_per_source's default
BURST = 5  # log lines per cause and second (otwamp.lograte)
LEGIT_COUNT = 20
REFUSED = re.compile(r"session request from (\S+):\d+ refused \(Accept (\d)\)")


def ping(server: OwampServer) -> Legit:
    """A legitimate ``otwamp ping`` from 127.0.0.1."""
    return legit("ping", server.twamp_target, "-c", str(LEGIT_COUNT), "-i", "0.01")


def refusal_lines(log: str, source: str) -> list[str]:
    """The Accept values of the refusals logged for ``source``."""
    return [accept for peer, accept in REFUSED.findall(log) if peer == source]


@pytest.mark.timeout(60)
def test_one_connection_gets_64_sessions_and_accept_4_beyond(abuse_server: ServerFactory) -> None:
    attacker, asked = "127.0.0.2", 1200
    with abuse_server() as server:
        with ThreadPoolExecutor(1) as pool:
            legit_run = pool.submit(ping, server)
            began = time.monotonic()
            with connected(TwampClient, HOST, server.twamp_port, attacker) as client:
                assert client.set_up() == 0
                accepts = request_tw_sessions(client, asked)
                seconds = time.monotonic() - began
                during = legit_run.result()
        after = ping(server)
        log = server.log()
    logged = refusal_lines(log, attacker)
    left_out = sum(int(n) for n in re.findall(r"\((\d+) more like this left out\)", log))
    print(
        f"S3 per connection: {asked} requests in {seconds:.2f} s: "
        f"{accepts.count(0)} Accept 0, {accepts.count(4)} Accept 4; "
        f"{len(logged)} refusal lines logged, {left_out} left out, "
        f"{len(log.splitlines())} log lines in all; ping during {during.seconds:.2f} s, "
        f"after {after.seconds:.2f} s"
    )
    assert accepts == [0] * PER_CONNECTION + [4] * (asked - PER_CONNECTION)
    assert during.served(LEGIT_COUNT), during.output
    assert after.served(LEGIT_COUNT), after.output
    assert set(logged) == {"4"}
    assert len(logged) <= BURST * (math.ceil(seconds) + 1), logged


@pytest.mark.timeout(60)
def test_one_address_gets_256_sessions_across_connections_and_protocols(
    abuse_server: ServerFactory,
) -> None:
    attacker, other = "127.0.0.3", "127.0.0.4"
    with abuse_server(test_ports=PER_SOURCE + 64) as server, contextlib.ExitStack() as stack:
        twamp = [
            stack.enter_context(connected(TwampClient, HOST, server.twamp_port, attacker))
            for _ in range(PER_SOURCE // PER_CONNECTION + 1)
        ]
        owamp = stack.enter_context(connected(OwampClient, HOST, server.port, attacker))
        neighbour = stack.enter_context(connected(TwampClient, HOST, server.twamp_port, other))
        for client in (*twamp, owamp, neighbour):
            assert client.set_up() == 0
        full = [request_tw_sessions(c, PER_CONNECTION) for c in twamp[:-1]]
        beyond = request_tw_sessions(twamp[-1], 1) + [
            a.accept for a in request_receive_sessions(owamp, 1, 10, 0.01)
        ]
        neighbours = request_tw_sessions(neighbour, 1)
        during = ping(server)
        log = server.log()
    print(
        f"S3 per source: {sum(a.count(0) for a in full)} sessions accepted on "
        f"{len(full)} connections, then TWAMP and OWAMP Accept {beyond}; another address "
        f"Accept {neighbours}; ping {during.seconds:.2f} s"
    )
    assert full == [[0] * PER_CONNECTION] * len(full)
    assert beyond == [5, 5]
    assert neighbours == [0]
    assert during.served(LEGIT_COUNT), during.output
    assert f"{PER_SOURCE} sessions from this address" in log


# The fd budget

NOFILE = 256
BUDGET_LINE = re.compile(r"all (\d+) test sockets of the fd budget in use")
ATTACK_SOURCES = 8
CONNECTIONS_PER_SOURCE = 8  # per protocol: within max_connections_per_source (16)
LINES_PER_SECOND = 40  # each cause at most 5 lines a second, a handful of causes
LOG_LINES = 100  # each cause at most 5 lines a second; 21 with the TWAMP table alone full


@dataclass
class Grabbed:
    """What one attacking address holds: its connections, the Accepts, connections not served."""

    clients: list[ControlClient] = field(default_factory=list)
    accepts: list[int] = field(default_factory=list)
    unserved: list[str] = field(default_factory=list)


def grab(server: OwampServer, source: str) -> Grabbed:
    """From ``source``: TWAMP connections asking as many sessions as they may, idle OWAMP ones."""
    grabbed = Grabbed()
    for _ in range(CONNECTIONS_PER_SOURCE):
        for kind, port in ((TwampClient, server.twamp_port), (OwampClient, server.port)):
            try:
                client = connected(kind, HOST, port, source)
                grabbed.clients.append(client)
                assert client.set_up() == 0
                if isinstance(client, TwampClient):
                    grabbed.accepts += request_tw_sessions(client, PER_CONNECTION)
            except OSError as exc:  # no greeting: what the test must show does not happen
                grabbed.unserved.append(f"{kind.__name__} from {source}: {exc!r}")
    return grabbed


@pytest.mark.timeout(120)
def test_under_ulimit_256_accept_never_runs_out_of_fds(abuse_server: ServerFactory) -> None:
    with abuse_server(test_ports=NOFILE, nofile=NOFILE) as server:
        pid = server.process.pid
        limits = Path(f"/proc/{pid}/limits").read_text()
        assert re.search(rf"Max open files\s+{NOFILE}\s", limits), limits
        with Sampler(pid, every=0.01) as sampler, ThreadPoolExecutor(ATTACK_SOURCES) as pool:
            began = time.monotonic()
            grabbed = list(pool.map(lambda s: grab(server, s), sources(ATTACK_SOURCES)))
            seconds = time.monotonic() - began
            full = sampler.fds[-1] if sampler.fds else 0
            during = ping(server)
            for client in (c for g in grabbed for c in g.clients):
                client.sock.close()
        log = server.log()
    accepts = [a for g in grabbed for a in g.accepts]
    unserved = [u for g in grabbed for u in g.unserved]
    print(
        f"S3 fd budget (ulimit -n {NOFILE}, budget {set(BUDGET_LINE.findall(log))} test sockets): "
        f"{len(accepts)} requests in {seconds:.2f} s on "
        f"{ATTACK_SOURCES * CONNECTIONS_PER_SOURCE} TWAMP and as many OWAMP connections: "
        f"{ {a: accepts.count(a) for a in sorted(set(accepts))} }; {len(unserved)} connections "
        f"not served; fds {full} with the tables full, peak {max(sampler.fds)}; "
        f"ping {during.seconds:.2f} s; {len(log.splitlines())} log lines, at most "
        f"{busiest_second(log)} in a second; "
        f"evictions {log.count('dropped to make room')}"
    )
    assert "Too many open files" not in log, excerpt(log)
    assert "Traceback" not in log, excerpt(log)
    assert not unserved, unserved[:5]
    budget = BUDGET_LINE.search(log)
    assert budget, excerpt(log)  # the fd budget was reached and refused with Accept 5
    assert 0 < accepts.count(0) <= int(budget.group(1))
    assert during.served(LEGIT_COUNT), during.output
    assert max(sampler.fds) < NOFILE
    assert len(log.splitlines()) < LOG_LINES, excerpt(log)
    assert busiest_second(log) <= LINES_PER_SECOND, excerpt(log)
