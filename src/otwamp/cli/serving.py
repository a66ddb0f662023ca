"""The server side that ``otwamp server`` and ``otwamp agent`` both run.

TWAMP and OWAMP control servers on their usable addresses, the STAMP
reflector, and the embedded IKEv2 daemon or the strongSwan HA listener that
keys them (RFC 7717), started together and stopped in reverse order.
"""

import asyncio
import contextlib
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import replace

from otwamp.cli.errors import CliError
from otwamp.drivers.clock import clock_state
from otwamp.drivers.control_server import ServerSettings, TestPorts, session_quota, socket_budget
from otwamp.drivers.ike_lookup import EmbeddedLookup
from otwamp.drivers.owamp_server import OwampServer
from otwamp.drivers.stamp_reflector import StampReflectorSettings, serving_stamp
from otwamp.drivers.strongswan_ha import HaLookup
from otwamp.drivers.twamp_server import TwampServer
from otwamp.errors import ConfigError
from otwamp.ike.config import DaemonConfig
from otwamp.ike.config import load as load_ike_config
from otwamp.ike.service import IkeService
from otwamp.keys.ikev2 import IkeServerKeys, SaLookup
from otwamp.stamp.ike_keys import IkeStampKeys

log = logging.getLogger("otwamp.server")


@contextlib.asynccontextmanager
async def serving(
    settings: ServerSettings, stamp: StampReflectorSettings, ike: DaemonConfig | None = None
) -> AsyncIterator[IkeService | None]:
    """Serve while in the block; yields the embedded IKE daemon, if one runs.

    ``ike`` stands for the file ``settings.ike_config`` names (the agent adds
    its mesh's members to the peers). Leaving the block stops the servers as
    on SIGTERM (R14), then the STAMP reflector and the IKE daemon.
    """
    async with contextlib.AsyncExitStack() as stack:
        if ike is None and settings.ike_config is not None:
            ike = load_ike_config(settings.ike_config)
        service = None
        if ike is not None:
            service = IkeService(ike)
            await service.start()
            stack.push_async_callback(service.stop)
            keys = IkeServerKeys(EmbeddedLookup(service), settings.ike_check_peer)
            settings = replace(settings, key_sources=(*settings.key_sources, keys))
        for source in settings.key_sources:  # charon's HA plugin (docs/STRONGSWAN.md)
            if isinstance(source, IkeServerKeys) and isinstance(source.lookup, HaLookup):
                await stack.enter_async_context(source.lookup.listening())
        if stamp.ike_keys:  # the IKE key source's SAs key STAMP too (docs/EXTENSIONS.md)
            stamp = replace(stamp, keys=IkeStampKeys(_ike_lookup(settings)))
        await stack.enter_async_context(serving_stamp(stamp))  # UDP, default off (docs/STAMP.md)
        await _start_protocols(settings, stack)
        if not clock_state().synchronized:  # read again for each session (D9)
            log.warning("the clock is not synchronized: one-way delays will be flagged unsync")
        settle_garbage_collector()
        yield service


def settle_garbage_collector() -> None:
    """Keep what start-up made (modules, classes, settings) out of every later collection.

    A full collection walks every tracked object: the 60,000 that importing
    otwamp makes took 10 to 50 ms each time, a pause of the event loop that
    landed in whichever callback happened to allocate (R13).
    """
    gc.collect()
    gc.freeze()


def _ike_lookup(settings: ServerSettings) -> SaLookup:
    """Where the server's RFC 7717 key source finds SAs; ConfigError if it has none."""
    for source in settings.key_sources:
        if isinstance(source, IkeServerKeys):
            return source.lookup
    raise ConfigError(
        "--stamp-key-source ike needs an IKEv2 key source: --ike-config, --ike-socket "
        "or --strongswan-ha"
    )


async def _start_protocols(settings: ServerSettings, stack: contextlib.AsyncExitStack) -> None:
    """Start both protocols' servers; the stack closes them together."""
    ports = TestPorts(settings.test_ports, socket_budget(settings))  # one pool, one quota (R7)
    quota = session_quota(settings)
    kinds = ((TwampServer, settings.listen), (OwampServer, settings.owamp_listen))
    servers = [kind(settings, ports, quota) for kind, listen in kinds if listen]
    started: list[TwampServer | OwampServer] = []

    async def close() -> None:
        await asyncio.gather(*(server.close() for server in started))

    stack.push_async_callback(close)
    for server in servers:
        try:
            await server.start()
        except OSError as exc:  # taken since usable_listeners looked
            reason = exc.strerror or exc
            raise CliError(f"cannot listen for {server.NAME}-Control: {reason}") from None
        started.append(server)


def exit_now(sig: signal.Signals) -> None:
    """The second SIGINT or SIGTERM: leave without a word more (sockets close with the process)."""
    os._exit(128 + sig)
