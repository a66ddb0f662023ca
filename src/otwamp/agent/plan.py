"""The plan: which sessions this agent runs, to which addresses, how keyed; and its IKE peers.

A configuration and a mesh resolve into jobs, one per test and target. A
test's ``targets`` are "mesh" (every other member), "group:NAME" (the other
members of a group), member names, or addresses (``ADDR[:PORT]``); a test
with ``sources`` runs only on those members. The agent itself is never a
target, so one configuration can be deployed on every host.
"""

from dataclasses import dataclass, replace

from otwamp.agent.config import PROTOCOLS, AgentConfig, TestSpec
from otwamp.agent.mesh import Member, Mesh
from otwamp.cli.addresses import format_endpoint, parse_endpoint
from otwamp.drivers.control_client import PingSettings
from otwamp.ike.config import DaemonConfig, PeerConfig, parse_identity
from otwamp.keys.source import ClientKeySource
from otwamp.wire.registry import MODE_NAMES


@dataclass(frozen=True)
class Job:
    """One test to one target: what the scheduler starts again and again."""

    test: TestSpec
    target: str  # as the operator named it: a member's name or ADDR[:PORT]
    host: str
    port: int

    @property
    def key(self) -> tuple[str, str]:
        """What identifies the job across reloads."""
        return self.test.name, self.target

    def settings(self, keys: ClientKeySource | None, source: str | None) -> PingSettings:
        """The measurement's settings, as ``otwamp ping``/``owping`` would make them."""
        test = self.test
        return PingSettings(
            host=self.host,
            port=self.port,
            count=test.packets,
            interval=test.interval,
            schedule=test.schedule,
            padding=test.padding,
            dscp=test.dscp,
            wait=test.wait,
            modes=test.modes,
            keys=keys,
            directions=test.directions,
            source=source,
        )


@dataclass(frozen=True)
class Plan:
    """This agent's jobs and the source address of its sessions."""

    me: Member | None
    source: str | None
    jobs: tuple[Job, ...]
    idle: tuple[str, ...] = ()  # tests whose sources do not include this agent


def make_plan(config: AgentConfig) -> Plan:
    """Resolve every test's targets for this agent."""
    jobs: list[Job] = []
    idle: list[str] = []
    for test in config.tests:
        if test.sources is not None and not _runs_here(test.sources, config.mesh, config.me):
            idle.append(test.name)
            continue
        seen: set[str] = set()
        for target, host, port in _targets(test, config.mesh, config.me):
            if target not in seen:
                seen.add(target)
                jobs.append(Job(test, target, host, port))
    return Plan(config.me, config.address, tuple(jobs), tuple(idle))


def _runs_here(sources: tuple[str, ...], mesh: Mesh | None, me: Member | None) -> bool:
    if mesh is None or me is None:
        return False
    return any(me in _members(entry, mesh) for entry in sources)


def _members(entry: str, mesh: Mesh) -> tuple[Member, ...]:
    """The members a "mesh", "group:NAME" or member name entry names."""
    if entry == "mesh":
        return mesh.members
    if entry.startswith("group:"):
        return mesh.group(entry.removeprefix("group:"))
    member = mesh.member(entry)
    return () if member is None else (member,)


def _targets(test: TestSpec, mesh: Mesh | None, me: Member | None) -> list[tuple[str, str, int]]:
    """(target, host, port) of each of the test's targets but this agent."""
    found: list[tuple[str, str, int]] = []
    for entry in test.targets:
        members = _members(entry, mesh) if mesh is not None else ()
        if members or entry == "mesh" or entry.startswith("group:"):
            found += [(m.name, m.address, m.port(test.protocol)) for m in members if m != me]
        else:
            host, port = parse_endpoint(entry, PROTOCOLS[test.protocol].port)
            found.append((entry, host, port))
    return found


def with_mesh_peers(daemon: DaemonConfig, config: AgentConfig) -> DaemonConfig:
    """The IKE daemon's configuration with every other mesh member as a peer (identity,
    address, port), so that adding a host to the mesh file is all it takes; a peer the IKE
    file lists itself keeps the file's settings."""
    return replace(daemon, peers=(*daemon.peers, *mesh_peers(config, daemon)))


def mesh_peers(config: AgentConfig, daemon: DaemonConfig) -> tuple[PeerConfig, ...]:
    """The mesh members (but this agent) the IKE file does not list, as IKE peers."""
    if config.mesh is None:
        return ()
    listed = {peer.identity for peer in daemon.peers}
    peers = []
    for member in config.mesh.members:
        identity = parse_identity(member.identity)
        if member != config.me and identity not in listed:
            peers.append(PeerConfig(identity, (member.address, member.ike_port), initiate=False))
    return tuple(peers)


def describe(config: AgentConfig, plan: Plan) -> str:
    """The plan in words, for ``otwamp agent --check``."""
    lines = [f"configuration {config.path}: OK"]
    if config.mesh is not None and plan.me is not None:
        lines.append(
            f"mesh {config.mesh.path}: {len(config.mesh.members)} members; "
            f"this agent is {plan.me.name!r} ({plan.me.address})"
        )
    server = config.server
    listen = [format_endpoint(*ep) for ep in server.listen] or ["off"]
    owamp = [format_endpoint(*ep) for ep in server.owamp_listen] or ["off"]
    lines.append(f"serves TWAMP on {', '.join(listen)}; OWAMP on {', '.join(owamp)}")
    if server.ike_config is not None:
        lines.append(f"embedded IKEv2 daemon: {server.ike_config}")
    lines.append(f"archive: {config.archive}")
    where = config.metrics
    lines.append(
        f"metrics: {'off' if where is None else f'http://{format_endpoint(*where)}/metrics'}"
    )
    lines.append(f"at most {config.max_sessions} sessions at once")
    for test in config.tests:
        jobs = [job for job in plan.jobs if job.test is test]
        if test.name in plan.idle:
            lines.append(f"test {test.name!r}: not run by this agent (sources)")
            continue
        when = "continuous" if test.every is None else f"every {test.every:g} s"
        modes = ",".join(MODE_NAMES[mode] for mode in test.modes)
        lines.append(
            f"test {test.name!r}: {test.protocol} {when}, {test.packets} packets "
            f"every {test.interval:g} s ({test.schedule.value}), modes {modes}, "
            f"key source {test.key_source}, {len(jobs)} targets"
        )
        lines += [f"  -> {job.target} ({format_endpoint(job.host, job.port)})" for job in jobs]
    return "\n".join(lines)
