"""Where the RFC 7717 key source finds IKE SAs: in process, or at the key broker (D7)."""

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otwamp.errors import KeySourceError
from otwamp.ike.broker import query
from otwamp.ike.errors import NegotiationError
from otwamp.ike.sa import IkeSa
from otwamp.ike.service import IkeService
from otwamp.keys.ikev2 import PeerSa, SaKey

BROKER_TIMEOUT = 2.0  # seconds for a key lookup on the broker socket


def _from_sa(sa: IkeSa) -> SaKey:
    return SaKey(sa.spi_i, sa.spi_r, sa.peer[0], sa.ippm_key)


@dataclass(slots=True)
class EmbeddedLookup:
    """SAs of an ``otwamp ike`` running in this process (D7's in-process API)."""

    service: IkeService

    async def by_spis(self, spi_i: bytes, spi_r: bytes) -> SaKey | None:
        """The SA a KeyID names (waiting for one we are setting up), or None."""
        sa = await self.service.daemon.established(spi_i, spi_r)
        return None if sa is None else _from_sa(sa)

    async def for_peer(self, host: str, initiate: bool) -> PeerSa | None:
        """The newest SA with ``host``; with ``initiate``, one is set up if there is none."""
        sa = self.service.daemon.database.by_peer(host)
        if sa is not None:
            return PeerSa(_from_sa(sa))
        if not initiate:
            return None
        try:
            sa = await self.service.initiate(host)
        except NegotiationError as exc:
            raise KeySourceError(f"could not set up an IKE SA with {host}: {exc}") from None
        return PeerSa(_from_sa(sa), initiated=True)


@dataclass(slots=True)
class BrokerLookup:
    """SAs of an ``otwamp ike`` daemon, through its key broker socket (D7)."""

    path: Path
    timeout: float = BROKER_TIMEOUT  # for "key"; "peer" may wait for a whole IKE set-up

    async def by_spis(self, spi_i: bytes, spi_r: bytes) -> SaKey | None:
        """The SA a KeyID names, or None; KeySourceError if the broker does not answer in time."""
        request = {"op": "key", "spi_i": spi_i.hex(), "spi_r": spi_r.hex()}
        answer = await self._ask(request, self.timeout, "no answer from the IKE key broker at")
        return None if answer is None else answer.sa

    async def for_peer(self, host: str, initiate: bool) -> PeerSa | None:
        """The newest SA with ``host``, set up by the daemon first if ``initiate``."""
        request = {"op": "peer", "host": host, "initiate": initiate}
        return await self._ask(request, None, "no IKE daemon answers on")

    async def _ask(
        self, request: dict[str, Any], timeout: float | None, unreachable: str
    ) -> PeerSa | None:
        """The broker's answer; ``unreachable`` begins the message when there is none."""
        try:
            answer = await asyncio.wait_for(query(self.path, request), timeout)
        except TimeoutError:
            raise KeySourceError(
                f"the IKE key broker at {self.path} did not answer within {timeout} s"
            ) from None
        except OSError as exc:
            raise KeySourceError(f"{unreachable} {self.path}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise KeySourceError(
                f"bad answer from the IKE key broker at {self.path}: {exc}"
            ) from None
        return _peer_sa(answer)


def _peer_sa(answer: dict[str, Any]) -> PeerSa | None:
    """The SA of a broker answer (``ike/broker.py``), or None when it has none."""
    if not answer.get("ok"):
        return None
    try:
        sa = SaKey(
            bytes.fromhex(answer["spi_i"]),
            bytes.fromhex(answer["spi_r"]),
            str(answer["host"]),
            bytes.fromhex(answer["key"]),
        )
    except (KeyError, TypeError, ValueError):
        raise KeySourceError(
            "the IKE key broker's answer lacks the SA's SPIs, host or key"
        ) from None
    return PeerSa(sa, initiated=bool(answer.get("initiated", False)))
