"""A mesh of ``otwamp agent`` processes, each in a network namespace of its own (issue 11).

Import as ``from tests.mesh.meshrun import ...``; ``bench/mesh.py`` (``make mesh``) and
``tests/mesh/test_mesh.py`` both run it::

    msh0-PID  10.78.S.1 ─┐
    msh1-PID  10.78.S.2 ─┤  br0 in mshhub-PID ── msh-PID 10.78.S.254 (this namespace:
    ...                  ─┘                       Prometheus scrapes the agents from here)

Each agent serves TWAMP/OWAMP/IKEv2 on its namespace's default ports (862/861/500), keys
every session from IKEv2 with a certificate of one throwaway CA (no pass-phrase anywhere),
runs TWAMP authenticated every ``twamp_every`` seconds and continuous OWAMP (both directions,
authenticated) towards every other member of one shared mesh file, and writes to one
PostgreSQL database (a throwaway cluster listening on a Unix socket: the namespaces share the
file system). A real Prometheus in this namespace scrapes the N ``/metrics``. ``S`` comes from
our pid so that two runs at once do not share a subnet.
"""

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from tests.archive.postgres import Cluster, running_cluster
from tests.e2e.ike_support import Logged, free_port, otwamp_command
from tests.ike.certs import Authority
from tests.netem.namespaces import ip

METRICS_PORT = 9477
DOMAIN = "mesh.test"
QUANTILES = {"min": "0", "median": "0.5", "p95": "0.95", "p99": "0.99", "max": "1"}
START_TIMEOUT = 120.0  # seconds for N agents to start on a loaded 2-CPU machine
STOP_TIMEOUT = 60.0  # SIGTERM waits for running sessions (an OWAMP one lasts its sending time)


@dataclass(frozen=True)
class MeshOptions:
    """What each agent measures: TWAMP every ``twamp_every`` s, OWAMP back to back."""

    agents: int = 16
    twamp_every: float = 10.0
    twamp_packets: int = 10
    twamp_interval: float = 0.1
    owamp_packets: int = 60
    owamp_interval: float = 0.5
    scrape_interval: float = 5.0


@dataclass
class Node:
    name: str
    address: str
    netns: str
    config: Path
    process: Logged | None = None


@dataclass
class Mesh:
    """A running mesh: its agents, the archive's URL and Prometheus's HTTP port."""

    options: MeshOptions
    directory: Path
    nodes: list[Node]
    cluster: Cluster
    archive: str
    prometheus: int = 0
    started_ns: int = field(default_factory=time.time_ns)

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        """Rows of ``query`` on the shared archive, as tuples."""
        import psycopg

        with psycopg.connect(self.archive, autocommit=True) as connection:
            return list(connection.execute(query, args).fetchall())

    def rows(self, query: str, *args: Any) -> list[dict[str, Any]]:
        """Rows of ``query`` as dictionaries (its columns must have distinct names)."""
        import psycopg
        from psycopg.rows import dict_row

        with psycopg.connect(self.archive, autocommit=True, row_factory=dict_row) as connection:
            return list(connection.execute(query, args).fetchall())

    def promql(self, expression: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        query = urllib.parse.urlencode({"query": expression})
        url = f"http://127.0.0.1:{self.prometheus}/api/v1/query?{query}"
        with urllib.request.urlopen(url, timeout=10) as answer:
            document = json.load(answer)
        if document["status"] != "success":
            raise RuntimeError(f"Prometheus: {document}")
        result: list[dict[str, Any]] = document["data"]["result"]
        return result


def subnet(tag: int) -> str:
    return f"10.78.{20 + tag % 200}"


@contextlib.contextmanager
def network(count: int, tag: int) -> Iterator[list[tuple[str, str]]]:
    """``count`` namespaces on one bridge and a veth to this namespace; (netns, address) each.

    Everything is deleted at the end (the namespaces take their veths with them).
    """
    hub, uplink, prefix = f"mshhub-{tag}", f"msh-{tag}", subnet(tag)
    made = [hub]
    try:
        ip("netns", "add", hub)
        ip("-n", hub, "link", "add", "br0", "type", "bridge", "stp_state", "0")
        ip("-n", hub, "link", "set", "br0", "up")
        ip("link", "add", uplink, "type", "veth", "peer", "name", "up0", "netns", hub)
        ip("-n", hub, "link", "set", "up0", "master", "br0", "up")
        ip("address", "add", f"{prefix}.254/24", "dev", uplink)
        ip("link", "set", uplink, "up")
        members = []
        for index in range(count):
            netns, address = f"msh{index}-{tag}", f"{prefix}.{index + 1}"
            ip("netns", "add", netns)
            made.append(netns)
            ip("-n", netns, "link", "set", "lo", "up")
            port = f"p{index}"
            ip("-n", hub, "link", "add", port, "type", "veth", "peer", "name", "eth0")
            ip("-n", hub, "link", "set", "eth0", "netns", netns)
            ip("-n", hub, "link", "set", port, "master", "br0", "up")
            ip("-n", netns, "address", "add", f"{address}/24", "dev", "eth0")
            ip("-n", netns, "link", "set", "eth0", "up")
            members.append((netns, address))
        yield members
    finally:
        subprocess.run(["ip", "link", "del", uplink], capture_output=True, check=False)
        for netns in made:
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)


def write_files(directory: Path, members: list[tuple[str, str]], options: MeshOptions,
                archive: str) -> list[Node]:  # fmt: skip
    """One CA, a certificate per member, the mesh file and each agent's configuration."""
    authority = Authority("otwamp mesh CA")
    ca = directory / "ca.pem"
    ca.write_bytes(authority.certificate.public_bytes(Encoding.PEM))
    mesh, nodes = [], []
    for index, (netns, address) in enumerate(members):
        name = f"m{index:02d}"
        fqdn = f"{name}.{DOMAIN}"
        credentials = authority.issue(fqdn, "p256", fqdn)
        certificate, key = directory / f"{name}.pem", directory / f"{name}.key"
        certificate.write_bytes(credentials.certificate.public_bytes(Encoding.PEM))
        key.write_bytes(
            credentials.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        )
        key.chmod(0o600)
        (directory / f"{name}-ike.toml").write_text(
            f'[local]\naddress = "{address}"\nid = "fqdn:{fqdn}"\n'
            f'certificate = "{certificate.name}"\nkey = "{key.name}"\nca = ["{ca.name}"]\n'
        )
        mesh += ["[[members]]", f'name = "{name}"', f'address = "{address}"']
        mesh += [f'ike_id = "fqdn:{fqdn}"', ""]
        config = directory / f"{name}.toml"
        config.write_text(agent_config(name, address, archive, options, tests=False))
        nodes.append(Node(name, address, netns, config))
    (directory / "mesh.toml").write_text("\n".join(mesh))
    return nodes


def agent_config(name: str, address: str, archive: str, options: MeshOptions, tests: bool) -> str:
    """The agent's file: serving only, or serving and measuring (``tests``)."""
    # Every member measures the 2 (N - 1) pairs it is in at once: OWAMP sessions overlap by 1 s.
    cap = 4 * options.agents
    server = f"""\
[agent]
name = "{name}"
mesh = "mesh.toml"
archive = "{archive}"
metrics = "{address}:{METRICS_PORT}"
max_sessions = {cap}

[agent.server]
modes = "authenticated"
ike_config = "{name}-ike.toml"
"""
    if not tests:
        return server
    return f"""{server}
[[test]]
name = "rtt"
protocol = "twamp"
targets = "mesh"
key_source = "ike"
modes = "authenticated"
packets = {options.twamp_packets}
interval = {options.twamp_interval}
every = "{options.twamp_every:g}s"

[[test]]
name = "owd"
protocol = "owamp"
targets = "mesh"
key_source = "ike"
modes = "authenticated"
packets = {options.owamp_packets}
interval = {options.owamp_interval}
continuous = true
"""


def start_agents(nodes: list[Node]) -> None:
    """Start every agent at once, serving only; wait until each one listens."""
    for node in nodes:
        command = ["ip", "netns", "exec", node.netns, *otwamp_command(), "agent", "--config"]
        node.process = Logged([*command, str(node.config)], node.config.with_suffix(".log"))
    for node in nodes:
        assert node.process is not None
        node.process.wait_for(" jobs of ", timeout=START_TIMEOUT)


def start_tests(mesh: "Mesh") -> None:
    """Give every agent its tests by SIGHUP (docs/AGENT.md), now that all of them serve.

    Agents started one by one would measure members not started yet and archive refusals;
    a reload is also how an operator adds tests to a running mesh.
    """
    for node in mesh.nodes:
        assert node.process is not None
        config = agent_config(node.name, node.address, mesh.archive, mesh.options, tests=True)
        node.config.write_text(config)
        node.process.process.send_signal(signal.SIGHUP)
    for node in mesh.nodes:
        assert node.process is not None
        node.process.wait_for("reloaded", timeout=START_TIMEOUT)


def stop_agents(nodes: list[Node]) -> dict[str, int | None]:
    """SIGTERM to all at once, then wait for each (SIGKILL after ``STOP_TIMEOUT``)."""
    for node in nodes:
        if node.process is not None and node.process.process.poll() is None:
            node.process.process.send_signal(signal.SIGTERM)
    statuses: dict[str, int | None] = {}
    deadline = time.monotonic() + STOP_TIMEOUT
    for node in nodes:
        if node.process is None:
            continue
        process = node.process.process
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        statuses[node.name] = process.returncode
    return statuses


@contextlib.contextmanager
def prometheus(directory: Path, nodes: list[Node], interval: float) -> Iterator[int]:
    """A real Prometheus scraping every agent's /metrics; its HTTP port."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise RuntimeError("needs prometheus (scripts/install-debian-deps.sh installs it)")
    web = free_port("127.0.0.1")
    targets = ", ".join(f"'{node.address}:{METRICS_PORT}'" for node in nodes)
    config = directory / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {interval:g}s\n  evaluation_interval: {interval:g}s\n"
        f"scrape_configs:\n  - job_name: otwamp\n    static_configs:\n"
        f"      - targets: [{targets}]\n"
    )
    with (directory / "prometheus.log").open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{web}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        yield web
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_mesh(directory: Path, options: MeshOptions) -> Iterator[Mesh]:
    """The whole mesh for the block: network, archive, agents, Prometheus; all gone after."""
    tag = os.getpid()
    with contextlib.ExitStack() as stack:
        members = stack.enter_context(network(options.agents, tag))
        cluster = stack.enter_context(running_cluster())
        archive = cluster.create_database()
        nodes = write_files(directory, members, options, archive)
        mesh = Mesh(options, directory, nodes, cluster, archive)
        stack.callback(stop_agents, nodes)
        start_agents(nodes)
        mesh.started_ns = time.time_ns()
        start_tests(mesh)
        mesh.prometheus = stack.enter_context(prometheus(directory, nodes, options.scrape_interval))
        yield mesh


# --- figures ---------------------------------------------------------------------------------


def usage(nodes: list[Node]) -> dict[str, dict[str, float]]:
    """CPU seconds (user + system) and RSS (now and peak, MiB) of each running agent."""
    ticks = os.sysconf("SC_CLK_TCK")
    figures = {}
    for node in nodes:
        assert node.process is not None
        pid = node.process.process.pid
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
        figures[node.name] = {
            "cpu_s": round((int(stat[11]) + int(stat[12])) / ticks, 2),
            "rss_mib": round(int(status["VmRSS"].split()[0]) / 1024, 1),
            "peak_rss_mib": round(int(status["VmHWM"].split()[0]) / 1024, 1),
        }
    return figures


def prometheus_check(mesh: Mesh) -> dict[str, Any]:
    """Each (agent, test, target) series against the archive row of the session it shows.

    One instant query gives, per series, the end of the last session that measured something
    (``otwamp_last_session_end_timestamp_seconds``) and that session's quantiles, all from the
    same scrape; the archive row with that end and the same source, destination and test must
    hold exactly those values.
    """
    addresses = {f"{node.address}:{METRICS_PORT}": node.address for node in mesh.nodes}
    by_name = {node.name: node.address for node in mesh.nodes}
    names = "otwamp_last_session_end_timestamp_seconds|otwamp_rtt_seconds|otwamp_delay_seconds"
    samples: dict[tuple[str, str, str], dict[tuple[str, ...], float]] = {}
    for series in mesh.promql(f'{{__name__=~"{names}",job="otwamp"}}'):
        labels = series["metric"]
        key = (addresses[labels["instance"]], labels["test"], by_name[labels["target"]])
        detail = (labels["__name__"], labels.get("direction", ""), labels.get("quantile", ""))
        samples.setdefault(key, {})[detail] = float(series["value"][1])
    time.sleep(3)  # the archive's writer is asynchronous: let it catch up with the metrics
    sessions: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in mesh.rows("SELECT * FROM sessions WHERE sid IS NOT NULL"):
        sessions.setdefault((row["source"], row["test"], row["destination"]), []).append(row)
    compared = equal = unmatched = 0
    mismatches: list[str] = []
    for key, values in sorted(samples.items()):
        end = values.get(("otwamp_last_session_end_timestamp_seconds", "", ""))
        if end is None:  # nothing measured yet
            continue
        rows = [r for r in sessions.get(key, []) if abs(r["end_ns"] - end * 1e9) < 2000]
        if not rows:
            unmatched += 1
            continue
        for expected, actual in expectations(rows, values):
            compared += 1
            if same(actual, expected):
                equal += 1
            elif len(mismatches) < 5:
                mismatches.append(f"{key}: Prometheus {actual}, archive {expected}")
    return {
        "series_groups": len(samples),
        "sessions_unmatched": unmatched,
        "values_compared": compared,
        "values_equal": equal,
        "equal": compared > 0 and compared == equal and unmatched == 0,
        "mismatches": mismatches,
    }


def expectations(
    rows: list[dict[str, Any]], values: dict[tuple[str, ...], float]
) -> Iterator[tuple[float | None, float]]:
    """(archive value, Prometheus value) for each quantile the rows of one session hold."""
    for row in rows:
        if row["protocol"] == "twamp":
            paths = {"fwd": "forward", "bwd": "backward"}
            for stat, quantile in QUANTILES.items():
                sample = values.get(("otwamp_rtt_seconds", "", quantile))
                if sample is not None:
                    yield row[f"rtt_{stat}"], sample
        else:
            paths = {"fwd": row["direction"]}
        for prefix, direction in paths.items():
            for stat, quantile in QUANTILES.items():
                sample = values.get(("otwamp_delay_seconds", direction, quantile))
                if sample is not None:
                    yield row[f"{prefix}_delay_{stat}"], sample


def same(sample: float, stored: float | None) -> bool:
    """Exactly equal; NaN in Prometheus stands for no value in the archive."""
    return math.isnan(sample) if stored is None else sample == stored


def archive_figures(mesh: Mesh, stopped_ns: int) -> dict[str, Any]:
    """Pairs with results, failures by cause, sessions and the archive's size, from PostgreSQL.

    An OWAMP session is one row per direction; sessions count control sessions. Failures of
    sessions still running when the agents were told to stop are counted apart.
    """
    count = len(mesh.nodes)
    pairs: dict[str, int] = {}
    for protocol in ("twamp", "owamp"):
        [(number,)] = mesh.sql(
            "SELECT count(*) FROM (SELECT DISTINCT source, destination FROM sessions"
            " WHERE protocol = %s AND failure IS NULL AND sid IS NOT NULL) AS p",
            protocol,
        )
        pairs[protocol] = number
    [(both,)] = mesh.sql(
        "SELECT count(*) FROM (SELECT source, destination FROM sessions"
        " WHERE failure IS NULL AND sid IS NOT NULL GROUP BY source, destination"
        " HAVING count(DISTINCT protocol) = 2) AS p"
    )
    failures: Counter[str] = Counter()
    at_stop: Counter[str] = Counter()
    for failure, late, number in mesh.sql(
        "SELECT failure, late, count(*) FROM (SELECT failure, end_ns > %s AS late"
        " FROM sessions WHERE failure IS NOT NULL) AS f GROUP BY failure, late",
        stopped_ns,
    ):
        (at_stop if late else failures)[failure] += number
    [(rows, twamp, owamp)] = mesh.sql(
        "SELECT count(*), count(*) FILTER (WHERE protocol = 'twamp'),"
        " count(DISTINCT (source, destination, start_ns)) FILTER (WHERE protocol = 'owamp')"
        " FROM sessions"
    )
    durations = {
        protocol: {"mean": round(mean, 2), "median": round(median, 2), "max": round(most, 2)}
        for protocol, mean, median, most in mesh.sql(
            "SELECT protocol, avg(s), percentile_cont(0.5) WITHIN GROUP (ORDER BY s), max(s)"
            " FROM (SELECT protocol, (end_ns - start_ns)::float8 / 1e9 AS s FROM sessions"
            " WHERE failure IS NULL) AS d GROUP BY protocol"
        )
    }
    [(first, last)] = mesh.sql(
        "SELECT (min(start_ns) - %s)::float8 / 1e9, (max(start_ns) - %s)::float8 / 1e9"
        " FROM sessions"
        " WHERE failure IS NOT NULL AND end_ns <= %s",
        mesh.started_ns,
        mesh.started_ns,
        stopped_ns,
    )
    [(table_bytes, records_bytes, database_bytes)] = mesh.sql(
        "SELECT pg_total_relation_size('sessions'), pg_total_relation_size('records'),"
        " pg_database_size(current_database())"
    )
    minutes = (stopped_ns - mesh.started_ns) / 60e9
    sessions = twamp + owamp
    return {
        "pairs_expected": count * (count - 1),
        "pairs_with_results": both,
        "pairs_by_protocol": pairs,
        "failed_sessions_by_cause": dict(failures),
        "failed_at_stop_by_cause": dict(at_stop),  # cut short by the final SIGTERM (R14)
        "failures_started_s_after_start": None if first is None else [first, last],
        "session_seconds": durations,  # from the start of the control connection to its end
        "sessions": {"twamp": twamp, "owamp": owamp, "rows": rows},
        "sessions_per_minute": round(sessions / minutes, 1),
        "archive": {
            "sessions_table_bytes": table_bytes,
            "records_table_bytes": records_bytes,
            "database_bytes": database_bytes,
            "bytes_per_row": round(table_bytes / rows, 1) if rows else None,
            "bytes_per_session": round(table_bytes / sessions, 1) if sessions else None,
        },
    }


def prometheus_figures(mesh: Mesh) -> dict[str, Any]:
    """Series Prometheus holds for the agents, and how many of the N targets are up."""
    [series] = mesh.promql('count({job="otwamp"})')
    up = mesh.promql('sum(up{job="otwamp"})')
    url = f"http://127.0.0.1:{mesh.prometheus}/api/v1/status/tsdb"
    with urllib.request.urlopen(url, timeout=10) as answer:
        head = json.load(answer)["data"]["headStats"]
    return {
        "series": int(float(series["value"][1])),
        "head_series": head["numSeries"],
        "targets_up": int(float(up[0]["value"][1])) if up else 0,
    }


def measure(mesh: Mesh, duration: float) -> dict[str, Any]:
    """Run for ``duration`` seconds after start-up, then every figure of issue 11's mesh.

    ``cpu_s`` includes the start-up (imports, certificates: ~1-2 s); ``steady_core_share`` is
    the CPU time after it over the wall time, per agent.
    """
    began, before = time.monotonic(), usage(mesh.nodes)
    time.sleep(max(0.0, duration - (time.time_ns() - mesh.started_ns) / 1e9))
    agents = usage(mesh.nodes)
    steady = [
        (agents[name]["cpu_s"] - before[name]["cpu_s"]) / (time.monotonic() - began)
        for name in agents
    ]
    series = prometheus_figures(mesh)
    check = prometheus_check(mesh)
    stopped_ns = time.time_ns()
    statuses = stop_agents(mesh.nodes)
    figures = archive_figures(mesh, stopped_ns)
    cpu = [a["cpu_s"] for a in agents.values()]
    rss = [a["rss_mib"] for a in agents.values()]
    return {
        "agents": len(mesh.nodes),
        "duration_s": round((stopped_ns - mesh.started_ns) / 1e9, 1),
        "options": {
            key: getattr(mesh.options, key)
            for key in mesh.options.__dataclass_fields__
            if key != "agents"
        },
        **figures,
        "per_agent": {
            "cpu_s_mean": round(sum(cpu) / len(cpu), 2),
            "cpu_s_max": max(cpu),
            "steady_core_share_mean": round(sum(steady) / len(steady), 4),
            "steady_core_share_max": round(max(steady), 4),
            "rss_mib_mean": round(sum(rss) / len(rss), 1),
            "rss_mib_max": max(rss),
            "each": agents,
        },
        "prometheus": {**series, "check": check},
        "exit_statuses": sorted(set(statuses.values()), key=str),
    }
