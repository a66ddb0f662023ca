"""Where the RFC 7717 key source finds IKE SAs: in process, or at the key broker (D7)."""

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otwamp.errors import KeySourceError
from otwamp.ike.broker import query
from otwamp.ike.errors import NegotiationError
from otwamp.ike.sa import IkeSa
from otwamp.ike.service import IkeService
from otwamp.keys.ikev2 import SaKey

BROKER_TIMEOUT = 2.0  # seconds for a key lookup on the broker socket


def _from_sa(sa: IkeSa) -> SaKey:
    return SaKey(sa.spi_i, sa.spi_r, sa.peer[0], sa.ippm_key)


@dataclass(slots=True)
class EmbeddedLookup:
    """SAs of an ``otwamp ike`` running in this process (D7's in-process API)."""

    service: IkeService

    def by_spis(self, spi_i: bytes, spi_r: bytes) -> SaKey | None:
        """The SA a KeyID names, or None."""
        sa = self.service.daemon.database.by_spis(spi_i, spi_r)
        return None if sa is None else _from_sa(sa)

    async def for_peer(self, host: str, initiate: bool) -> SaKey | None:
        """The newest SA with ``host``; with ``initiate``, one is set up if there is none."""
        sa = self.service.daemon.database.by_peer(host)
        if sa is None and initiate:
            try:
                sa = await self.service.initiate(host)
            except NegotiationError as exc:
                raise KeySourceError(f"could not set up an IKE SA with {host}: {exc}") from None
        return None if sa is None else _from_sa(sa)


@dataclass(slots=True)
class BrokerLookup:
    """SAs of an ``otwamp ike`` daemon, through its key broker socket (D7)."""

    path: Path

    def by_spis(self, spi_i: bytes, spi_r: bytes) -> SaKey | None:
        """The SA a KeyID names, or None (a short, blocking local query)."""
        return self._key(self._blocking({"op": "key", "spi_i": spi_i.hex(), "spi_r": spi_r.hex()}))

    async def for_peer(self, host: str, initiate: bool) -> SaKey | None:
        """The newest SA with ``host``, set up by the daemon first if ``initiate``."""
        try:
            answer = await query(self.path, {"op": "peer", "host": host, "initiate": initiate})
        except OSError as exc:
            raise KeySourceError(
                f"no IKE daemon answers on {self.path}: {exc.strerror or exc}"
            ) from None
        return self._key(answer)

    def _blocking(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(BROKER_TIMEOUT)
                sock.connect(str(self.path))
                sock.sendall(json.dumps(request).encode() + b"\n")
                answer: dict[str, Any] = json.loads(sock.makefile("rb").readline())
        except (OSError, ValueError) as exc:
            raise KeySourceError(
                f"no answer from the IKE key broker at {self.path}: {exc}"
            ) from None
        return answer

    @staticmethod
    def _key(answer: dict[str, Any]) -> SaKey | None:
        if not answer.get("ok"):
            return None
        return SaKey(
            bytes.fromhex(answer["spi_i"]),
            bytes.fromhex(answer["spi_r"]),
            str(answer["peer"]).rsplit(":", 1)[0],
            bytes.fromhex(answer["key"]),
        )
