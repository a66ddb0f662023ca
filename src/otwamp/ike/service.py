"""``otwamp ike --config FILE``: the daemon, its key broker, and initiate-on-start peers."""

import asyncio
import logging
import time

from otwamp.ike.broker import KeyBroker, serve
from otwamp.ike.config import DaemonConfig
from otwamp.ike.daemon import IkeDaemon
from otwamp.ike.errors import NegotiationError
from otwamp.ike.sa import IkeSa

LOG = logging.getLogger("otwamp.ike")


class IkeService:
    """A running daemon with its broker: the in-process API of DESIGN D7."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self.daemon = IkeDaemon(
            config.policy,
            config.local,
            cookie_threshold=config.cookie_threshold,
            max_half_open=config.max_half_open,
        )
        self.broker = KeyBroker(self.daemon.database, time.time, self.initiate)
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind the IKE socket and the broker socket, then initiate to the listed peers."""
        await self.daemon.start()
        if self.config.broker is not None:
            self._server = await serve(self.broker, self.config.broker)
        for peer in self.config.peers:
            if peer.initiate and peer.address is not None:
                try:
                    await self.daemon.initiate(peer.identity, peer.address)
                except NegotiationError as error:
                    LOG.error("initiating to %s failed: %s", peer.identity, error)

    async def initiate(self, host: str) -> IkeSa:
        """Set up an IKE SA with the configured peer at ``host``."""
        peer = next((p for p in self.config.peers if p.address and p.address[0] == host), None)
        if peer is None or peer.address is None:
            raise NegotiationError(f"no configured peer at {host}")
        return await self.daemon.initiate(peer.identity, peer.address)

    def close(self) -> None:
        """Stop listening on both sockets."""
        if self._server is not None:
            self._server.close()
        self.daemon.close()


async def run(config: DaemonConfig) -> None:
    """Run until cancelled."""
    service = IkeService(config)
    await service.start()
    try:
        await asyncio.Event().wait()
    finally:
        service.close()
