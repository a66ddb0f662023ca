"""The strongSwan HA key source's I/O: a UDP listener for charon's ``ha`` plugin.

charon (``charon.plugins.ha.local`` = A) sends from A:4510 to ``remote`` = B:4510. We bind
B:4510 and take datagrams from A:4510 only. They carry IKE SA secrets in clear text (g^ir,
the old SK_d), so both addresses must be loopback unless the operator forces otherwise.
The SA table and everything it decides is ``otwamp.keys.strongswan_ha`` (sans-I/O).
"""

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from otwamp.errors import ConfigError, KeySourceError, ProtocolError
from otwamp.keys.ikev2 import PeerSa, SaKey, same_host
from otwamp.keys.strongswan_ha import HA_PORT, RESYNC_ALL, Change, HaMessage, HaSaTable

log = logging.getLogger("otwamp.strongswan")

DEFAULT_CHARON = "127.0.0.1"  # charon's ha.local in docs/STRONGSWAN.md and deploy/strongswan/
CLIENT_WAIT = 3.0  # seconds a client waits for an SA with its server to be reported


@dataclass(frozen=True, slots=True)
class HaEndpoints:
    """Where we listen (charon's ``ha.remote``) and whom we hear (charon's ``ha.local``)."""

    listen: str
    charon: str = DEFAULT_CHARON
    resync: bool = False  # ask charon to replay its SAs at start (it rekeys their CHILD_SAs)

    @classmethod
    def checked(
        cls, listen: str, charon: str | None = None, force: bool = False, resync: bool = False
    ) -> "HaEndpoints":
        """Endpoints from the operator's words; non-loopback addresses only when ``force``."""
        addresses = []
        for what, text in (("listen", listen), ("charon", charon or DEFAULT_CHARON)):
            try:
                addresses.append(ipaddress.ip_address(text.strip("[]")))
            except ValueError:
                raise ConfigError(
                    f"strongSwan HA {what} address must be an IP address, got {text!r}"
                ) from None
        ours, theirs = addresses
        if ours.version != theirs.version:
            raise ConfigError(f"strongSwan HA addresses {ours} and {theirs} differ in family")
        if not force and not (ours.is_loopback and theirs.is_loopback):
            raise ConfigError(
                f"strongSwan HA messages carry IKE secrets in clear text: {ours} and {theirs} "
                "must be loopback addresses (force it with --strongswan-ha-force)"
            )
        return cls(str(ours), str(theirs), resync)


class _HaProtocol(asyncio.DatagramProtocol):
    """Datagrams in, table changes out; a bad datagram is logged (rate-limited) and dropped."""

    def __init__(self, lookup: "HaLookup") -> None:
        self.lookup = lookup
        self.charon = ipaddress.ip_address(lookup.endpoints.charon)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        source = f"{addr[0]}:{addr[1]}"
        if ipaddress.ip_address(addr[0].split("%")[0]) != self.charon or addr[1] != HA_PORT:
            log.warning("HA datagram from %s dropped: only charon's %s:%d is heard", source,
                        self.charon, HA_PORT)  # fmt: skip
            return
        try:
            change = self.lookup.table.receive(HaMessage.decode(data))
        except ProtocolError as exc:  # never carries key material (errors.py)
            log.warning("bad HA datagram from %s dropped: %s", source, exc)
            return
        if change is not None:
            what, label = change
            level = logging.WARNING if what is Change.MISSED else logging.INFO
            log.log(level, "strongSwan IKE SA %s %s", label, what.value)
            self.lookup.changed()

    def error_received(self, exc: Exception) -> None:
        log.warning("strongSwan HA socket: %s", exc)


@dataclass(slots=True)
class HaLookup:
    """IKE SAs reported by charon's HA plugin, for the RFC 7717 key source (``SaLookup``)."""

    endpoints: HaEndpoints
    wait: float = CLIENT_WAIT  # for_peer: how long to wait for an SA with the server
    table: HaSaTable = field(default_factory=HaSaTable)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """Bind ``listen``:4510 for the block's duration, asking for a replay if configured."""
        loop = asyncio.get_running_loop()
        where = f"{self.endpoints.listen}:{HA_PORT}"
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _HaProtocol(self), local_addr=(self.endpoints.listen, HA_PORT)
            )
        except OSError as exc:
            raise KeySourceError(
                f"cannot listen for strongSwan HA messages on {where}: {exc.strerror or exc}"
            ) from None
        log.info("listening for strongSwan HA messages on %s from %s:%d", where,
                 self.endpoints.charon, HA_PORT)  # fmt: skip
        try:
            if self.endpoints.resync:
                transport.sendto(RESYNC_ALL.encode(), (self.endpoints.charon, HA_PORT))
            yield
        finally:
            transport.close()

    def changed(self) -> None:
        """Wake whoever waits for an SA."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def by_spis(self, spi_i: bytes, spi_r: bytes) -> SaKey | None:
        """The established SA a KeyID names, or None (then Accept 6, D3)."""
        sa = self.table.established(spi_i, spi_r)
        return None if sa is None else sa.sa_key()

    async def for_peer(self, host: str, initiate: bool) -> PeerSa | None:
        """The newest established SA with ``host``, waiting ``wait`` s for one to be reported.

        charon alone sets SAs up, so ``initiate`` changes nothing.
        """
        deadline = time.monotonic() + self.wait
        while (sa := self.table.newest_with(lambda peer: same_host(peer, host))) is None:
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), deadline - time.monotonic())
            if time.monotonic() >= deadline:
                return None
        return PeerSa(sa.sa_key())
