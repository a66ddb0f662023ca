"""Two agents measuring each other on loopback (127.0.0.1, 127.0.0.2): TWAMP authenticated by a
pass-phrase every 2 s and continuous OWAMP, read back with ``otwamp results --json``; SIGHUP
reloads without cutting sessions, SIGTERM exits 0; and the same keyed by IKEv2 certificates."""

import itertools
import json
import signal
import time
from pathlib import Path

from tests.agent.agents import Agent, running, write_agent, write_mesh
from tests.e2e.ike_support import CLIENT_ID, SERVER_ID, free_port, make_pki, wait_until
from tests.e2e.processes import run_cli

SERVER = """\
modes = "open,authenticated,encrypted"
keyfile = "keys.pfs"
"""
TWAMP = """
[[test]]
name = "rtt"
protocol = "twamp"
targets = "mesh"
identity = "alice"
keyfile = "keys.pfs"
modes = "authenticated"
packets = 20
interval = 0.05
every = "2s"
"""
OWAMP = """
[[test]]
name = "owd"
protocol = "owamp"
targets = "mesh"
packets = 50
interval = 0.05
wait = 1.0
continuous = true
"""


def results(agent: Agent) -> list[dict]:
    done = run_cli("results", "list", "--json", "--archive", str(agent.archive))
    assert done.returncode == 0, done.stderr
    sessions: list[dict] = json.loads(done.stdout)
    return sessions


def stop(agent: Agent) -> str:
    assert agent.process is not None
    assert agent.process.stop(signal.SIGTERM) == 0, agent.process.log()
    log = agent.process.log()
    assert "Traceback" not in log, log
    return log


def measured_enough(me: Agent, other: Agent) -> bool:
    """``me`` archived 4 TWAMP sessions to ``other`` and 3 OWAMP runs each way, all measured."""
    ok = f"failure IS NULL AND destination = '{other.address}'"
    twamp = me.rows(f"{ok} AND protocol = 'twamp'")
    owamp = me.rows(f"{ok} AND protocol = 'owamp'")
    directions = [row["direction"] for row in owamp]
    return len(twamp) >= 4 and min(directions.count("to"), directions.count("from")) >= 3


def test_two_agents_measure_each_other(tmp_path: Path) -> None:
    ports = write_mesh(tmp_path)
    dead = free_port("127.0.0.3")  # nothing listens there: archived failures, backed off
    unreachable = TWAMP.replace('"mesh"', f'["mesh", "127.0.0.3:{dead}"]')
    a = write_agent(tmp_path, "a", SERVER, unreachable + OWAMP)
    b = write_agent(tmp_path, "b", SERVER, TWAMP + OWAMP)
    with running(b, a):
        # the first sessions of b may find a not yet listening: wait for enough measured ones
        # (25 s at most, so that a's unreachable target fails at most at 0, 5 and 15 s)
        wait_until(lambda: measured_enough(a, b) and measured_enough(b, a), "sessions", 25)
        a.config.write_text(a.config.read_text().replace(OWAMP, ""))  # OWAMP removed ...
        reloaded = time.time_ns()
        assert a.process is not None
        a.process.process.send_signal(signal.SIGHUP)  # ... while a session of it runs
        a.process.wait_for("reloaded")
        time.sleep(3)
        stopped = time.time_ns()
        log_a, log_b = stop(a), stop(b)
    assert "stopping" in log_a and "stopping" in log_b
    for me, other in ((a, b), (b, a)):
        sessions = results(me)
        twamp = [
            s for s in sessions if s["protocol"] == "twamp" and s["destination"] == other.address
        ]
        assert len(twamp) >= 4, sessions
        measured = [s for s in twamp if s["failure"] is None]
        assert len(measured) >= 4
        for session in measured:
            assert session["source"] == me.address and session["test"] == "rtt"
            assert (session["mode"], session["key_source"]) == ("authenticated", "passphrase")
            assert session["packets"]["sent"] == 20 and session["packets"]["lost"] == 0
            assert 0 < session["rtt"]["median"] < 0.01
        owamp = [s for s in sessions if s["protocol"] == "owamp" and s["failure"] is None]
        for direction in ("to", "from"):
            runs = sorted(
                (s for s in owamp if s["direction"] == direction), key=lambda s: s["start"]
            )
            assert all(s["packets"]["lost"] == 0 for s in runs)
            # those the stop of either agent cut short (R14) aside, every one sent all
            ended = {row["id"] for row in me.rows(f"end_ns < {stopped}")}
            runs = [s for s in runs if s["id"] in ended]
            assert len(runs) >= 3, sessions
            assert all(s["packets"]["sent"] == 50 for s in runs)
            # continuous: each session starts before the previous one ends
            assert all(n["start"] < p["end"] for p, n in itertools.pairwise(runs))
    # the unreachable target: failures archived with their reason, backed off (5 s, then 10 s)
    failed = [s for s in results(a) if s["destination"] == "127.0.0.3"]
    assert 1 <= len(failed) <= 3
    assert all(
        s["failure"] == f"connection to 127.0.0.3:{dead} refused (no TWAMP server listening?)"
        for s in failed
    )
    # after the reload no OWAMP session of a started; the one running then was not cut
    rows = a.rows("protocol = 'owamp'")
    assert rows and all(row["start_ns"] < reloaded + 500_000_000 for row in rows)
    assert all(row["failure"] is None for row in rows if row["end_ns"] > reloaded)
    assert ports["a"]["twamp_port"] != ports["b"]["twamp_port"]


def test_agents_keyed_by_ike_certificates(tmp_path: Path) -> None:
    ports = write_mesh(tmp_path, ike=True)
    pki = make_pki(tmp_path / "pki")
    ids = {"a": CLIENT_ID, "b": SERVER_ID}
    agents = []
    for name, host in (("a", "127.0.0.1"), ("b", "127.0.0.2")):
        # the certificate names NAME.ippm.test's stand-in; the mesh gives the peers
        (tmp_path / f"{name}-ike.toml").write_text(
            f'[local]\naddress = "{host}"\nport = {ports[name]["ike_port"]}\n'
            f'id = "fqdn:{ids[name]}"\ncertificate = "{pki.certificate(ids[name])}"\n'
            f'key = "{pki.key(ids[name])}"\nca = ["{pki.ca}"]\n'
        )
        mesh = (tmp_path / "mesh.toml").read_text()
        (tmp_path / "mesh.toml").write_text(
            mesh.replace(f"fqdn:{name}.ippm.test", f"fqdn:{ids[name]}")
        )
        server = f'modes = "authenticated,encrypted"\nike_config = "{name}-ike.toml"\n'
        tests = TWAMP.replace('identity = "alice"\nkeyfile = "keys.pfs"\n', 'key_source = "ike"\n')
        tests += OWAMP.replace(
            "continuous = true", 'every = "2s"\nkey_source = "ike"\nmodes = "encrypted"'
        )
        agents.append(write_agent(tmp_path, name, server, tests))
    a, b = agents
    with running(b, a):
        wait_until(
            lambda: len(a.rows("sid IS NOT NULL")) >= 3 and len(b.rows("sid IS NOT NULL")) >= 3,
            "sessions",
            20,
        )
        time.sleep(1)
        stopping = time.time_ns()
        stop(a), stop(b)
    for me, other in ((a, b), (b, a)):
        # b starts first, so its first attempts may find a not listening yet; a's stop may cut
        # b's sessions then running (R14); nothing else fails
        for row in me.rows("failure IS NOT NULL"):
            assert "refused" in row["failure"] or row["end_ns"] > stopping, row
        sessions = [s for s in results(me) if s["destination"] == other.address]
        sessions = [s for s in sessions if s["failure"] is None]
        assert {s["protocol"] for s in sessions} == {"twamp", "owamp"}
        for session in sessions:
            assert session["key_source"] == "ikev2"
            assert session["mode"] == (
                "authenticated" if session["protocol"] == "twamp" else "encrypted"
            )
            assert session["ike_sa"] is not None
