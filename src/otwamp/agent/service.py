"""The agent process: the server side, the sessions, the archive and /metrics in one event loop.

SIGHUP reloads the configuration: tests, targets, the mesh (and so the IKE
peers), the cap and the retention apply to new sessions at once, running
sessions go on; what only a restart can change (addresses served, server
keys, archive, metrics address) is kept, with a warning. SIGTERM or SIGINT
stops: no new session, running ones end (within their sending time and
Timeout, sooner if their server stops) and are archived, the servers stop as
``otwamp server`` does (R14), the archive is flushed (5 s at most). A second
signal exits at once.
"""

import asyncio
import contextlib
import logging
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from otwamp.agent.config import AgentConfig, TestSpec, load_agent_config
from otwamp.agent.metrics import AgentMetrics, serve_metrics
from otwamp.agent.plan import make_plan, with_mesh_peers
from otwamp.agent.runner import Keys, Runner
from otwamp.agent.scheduler import Scheduler
from otwamp.archive.engines import ArchiveError, ArchiveUnavailable
from otwamp.archive.store import Archive
from otwamp.cli.listen import usable_listeners
from otwamp.cli.serving import exit_now, serving
from otwamp.control.server_policy import fmt
from otwamp.drivers.ike_lookup import BrokerLookup, EmbeddedLookup
from otwamp.errors import ConfigError
from otwamp.ike.config import DaemonConfig
from otwamp.ike.config import load as load_ike_config
from otwamp.ike.service import IkeService
from otwamp.keys.ikev2 import IkeClientKeys, IkeServerKeys, SaLookup
from otwamp.keys.source import ClientKeySource
from otwamp.web.app import serving as web_serving

log = logging.getLogger("otwamp.agent")
PURGE_EVERY = 3600.0  # seconds between two retention purges
SPARE_THREADS = 4  # for the rest of asyncio.to_thread's users
RESTART_ONLY = ("server", "stamp", "archive", "keep_records", "metrics", "web")


def client_keys(config: AgentConfig, service: IkeService | None) -> Keys:
    """Each test's key source: its pass-phrase, or the IKE daemon the server side uses too."""
    lookup: SaLookup | None = None if service is None else EmbeddedLookup(service)
    for source in config.server.key_sources:
        if isinstance(source, IkeServerKeys) and isinstance(source.lookup, BrokerLookup):
            lookup = source.lookup

    def keys(test: TestSpec) -> ClientKeySource | None:
        if test.key_source == "ike" and lookup is not None:
            return IkeClientKeys(lookup, test.ike_policy, test.passphrase)
        return test.passphrase if test.key_source == "passphrase" else None

    return keys


def ike_config_file(config: AgentConfig) -> DaemonConfig | None:
    """The IKE daemon's configuration file that [agent.server] ike_config names, if any."""
    path = config.server.ike_config
    return None if path is None else load_ike_config(path)


class Agent:
    """A running agent: its configuration, and what SIGHUP and SIGTERM do to it."""

    def __init__(
        self,
        config: AgentConfig,
        runner: Runner,
        ike: IkeService | None,
        ike_file: DaemonConfig | None,
    ) -> None:
        self.config, self.runner, self.ike, self.ike_file = config, runner, ike, ike_file
        self.stopping = asyncio.Event()

    def start(self) -> None:
        """Apply the plan and install the signal handlers."""
        plan = make_plan(self.config)
        self.runner.apply(plan)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        me = f" ({plan.me.name})" if plan.me else ""
        log.info("agent%s running %d jobs of %d tests", me, len(plan.jobs), len(self.config.tests))

    def reload(self) -> None:
        """SIGHUP: read the configuration again; keep the running one if it is bad."""
        try:
            config = load_agent_config(self.config.path)
            plan = make_plan(config)
        except ConfigError as exc:
            log.error("reload failed, the configuration in use is kept: %s", exc)
            return
        for key in RESTART_ONLY:
            if getattr(config, key) != getattr(self.config, key):
                log.warning("reload: [agent] %s changed: restart the agent to apply it", key)
        if self.ike is not None and self.ike_file is not None:  # new mesh members, new peers
            self.ike.config = with_mesh_peers(self.ike_file, config)
        self.config = replace(
            self.config,
            tests=config.tests,
            mesh=config.mesh,
            me=config.me,
            max_sessions=config.max_sessions,
            retention=config.retention,
        )
        self.runner.scheduler.max_sessions = config.max_sessions
        self.runner.apply(plan)
        log.info("reloaded %s: %d jobs of %d tests", config.path, len(plan.jobs), len(config.tests))

    async def purge(self, archive: Archive) -> None:
        """Apply the retention every PURGE_EVERY seconds."""
        while True:
            retention = self.config.retention
            if retention.sessions_days is not None or retention.records_days is not None:
                try:
                    await archive.purge(retention, time.time_ns())
                except (ArchiveUnavailable, ArchiveError) as exc:
                    log.warning("archive purge failed, trying again later: %s", exc)
            await asyncio.sleep(PURGE_EVERY)


def session_threads(max_sessions: int) -> None:
    """A thread for every session that may run at once, and some to spare.

    Each session's pacer is a blocking loop on a thread (``asyncio.to_thread``);
    asyncio's default pool has CPUs + 4 threads, so with continuous OWAMP
    sessions holding them a TWAMP session queued for ~30 s (16-agent mesh).
    Twice the cap at start-up, so that a reload raising it still finds threads.
    """
    workers = 2 * max_sessions + SPARE_THREADS
    pool = ThreadPoolExecutor(workers, thread_name_prefix="otwamp-session")
    asyncio.get_running_loop().set_default_executor(pool)


async def run_agent(config: AgentConfig) -> None:
    """Run until SIGTERM or SIGINT."""
    session_threads(config.max_sessions)
    archive = Archive.at(config.archive, keep_records=config.keep_records)
    metrics = AgentMetrics()
    try:
        async with contextlib.AsyncExitStack() as stack:
            settings = usable_listeners(config.server)
            ike_file = ike_config_file(config)
            daemon = None if ike_file is None else with_mesh_peers(ike_file, config)
            ike = await stack.enter_async_context(serving(settings, config.stamp, daemon))
            if ike is not None:
                metrics.count_ike_sas(lambda: len(ike.daemon.database.all()))
            if config.metrics is not None:
                http = await serve_metrics(metrics, *config.metrics)
                stack.push_async_callback(http.cleanup)
            if config.web is not None:
                pages = await stack.enter_async_context(web_serving(config.archive, config.web))
                log.info("dashboard on %s", ", ".join(f"http://{fmt(*at)}/" for at in pages))
            runner = Runner(
                Scheduler(config.max_sessions), archive, metrics, client_keys(config, ike)
            )
            agent = Agent(config, runner, ike, ike_file)
            agent.start()
            tasks = [asyncio.create_task(runner.run()), asyncio.create_task(agent.purge(archive))]
            await agent.stopping.wait()
            log.info("stopping (a second SIGINT or SIGTERM exits at once)")
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, exit_now, sig)
            await runner.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await archive.close()
