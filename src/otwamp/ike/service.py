"""``otwamp ike --config FILE``: the daemon, its key broker, and initiate-on-start peers."""

import asyncio
import logging
import time

from otwamp.control.server_policy import fmt
from otwamp.ike.broker import KeyBroker, serve
from otwamp.ike.config import DaemonConfig, PeerConfig
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
            limits=config.half_open,
            lifetimes=config.lifetimes,
        )
        self.broker = KeyBroker(
            self.daemon.database,
            time.time,
            self.initiate,
            lambda: self.daemon.endpoint.half_open,
            self.daemon,
        )
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Bind the IKE socket and the broker socket, then initiate to the listed peers."""
        try:
            host, port = await self.daemon.start()
        except OSError as error:
            where = f"UDP {fmt(*self.config.local)}"
            raise OSError(error.errno, f"{where}: {error.strerror or error}") from None
        if self.config.broker is not None:
            try:
                self._server = await serve(self.broker, self.config.broker)
            except OSError as error:
                self.daemon.close()
                raise OSError(error.errno, f"{self.config.broker}: {error.strerror}") from None
        LOG.info(
            "IKE daemon %s listening on %s, key broker on %s",
            self.config.policy.local_id,
            fmt(host, port),
            self.config.broker,
        )
        await asyncio.gather(*(self._initiate_on_start(p) for p in self.config.peers if p.initiate))

    async def _initiate_on_start(self, peer: PeerConfig) -> None:
        if peer.address is None:
            return
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
            if self.config.broker is not None:
                self.config.broker.unlink(missing_ok=True)
        self.daemon.close()

    async def stop(self, timeout: float = 1.0) -> None:
        """Delete every SA (waiting at most ``timeout`` for the peers), then close."""
        try:
            await self.daemon.delete_all(timeout)
        finally:
            self.close()


async def run(config: DaemonConfig, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set (or cancelled); then delete the SAs and close."""
    service = IkeService(config)
    await service.start()
    try:
        await (stop or asyncio.Event()).wait()
        LOG.info("shutting down")
        await service.stop()
    finally:
        service.close()
