"""The key broker: IPPM keys for the O/TWAMP side over a UNIX socket (DESIGN D7, RFC 7717 §5.1).

One JSON object per line each way. Requests:
  {"op": "key", "spi_i": HEX, "spi_r": HEX}      the key of the SA a KeyID names (D4)
  {"op": "peer", "host": IP, "initiate": BOOL}   the newest SA with a peer (optionally set up;
                                                 "initiated" in the answer says it was)
  {"op": "status"}                               every SA, without keys, and the number of
                                                 half-open SAs ("half_open", RFC 7296 §2.6)
                                                 when the broker is given it
Answers carry "ok"; errors say why in "error". Only "key" and "peer" answers hold a key.
"""

import asyncio
import errno
import json
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from otwamp.errors import OtwampError
from otwamp.ike.database import SaDatabase
from otwamp.ike.sa import IkeSa

SOCKET_MODE = 0o600  # DESIGN D7
Initiate = Callable[[str], Awaitable[IkeSa]]


def describe(sa: IkeSa, now: float) -> dict[str, Any]:
    """An SA for ``status``: SPIs, peer, IDs, algorithms, age; never the key."""
    return {
        "spi_i": sa.spi_i.hex(),
        "spi_r": sa.spi_r.hex(),
        "peer": f"{sa.peer[0]}:{sa.peer[1]}",
        "local_id": str(sa.local_id),
        "remote_id": str(sa.remote_id),
        "suite": str(sa.suite),
        "role": "initiator" if sa.initiator else "responder",
        "age": round(now - sa.established_at, 1),
    }


class KeyBroker:
    """Answers broker requests from the SA database; ``initiate`` sets up SAs on demand."""

    def __init__(
        self,
        database: SaDatabase,
        clock: Callable[[], float],
        initiate: Initiate | None = None,
        half_open: Callable[[], int] | None = None,
    ) -> None:
        self._database = database
        self._clock = clock
        self._initiate = initiate
        self._half_open = half_open

    async def answer(self, line: bytes) -> dict[str, Any]:
        """The answer to one request line."""
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("a request is a JSON object")
            return await self._dispatch(request)
        except (ValueError, KeyError, TypeError) as error:
            return {"ok": False, "error": f"bad request: {error}"}
        except OtwampError as error:
            return {"ok": False, "error": str(error)}

    async def _dispatch(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request["op"]
        if op == "status":
            now = self._clock()
            sas = [describe(sa, now) for sa in self._database.all()]
            answer: dict[str, Any] = {"ok": True, "sas": sas}
            if self._half_open is not None:
                answer["half_open"] = self._half_open()
            return answer
        if op == "key":
            sa = self._database.by_spis(
                bytes.fromhex(request["spi_i"]), bytes.fromhex(request["spi_r"])
            )
            return self._key_answer(sa)
        if op == "peer":
            return await self._for_peer(str(request["host"]), bool(request.get("initiate", False)))
        raise ValueError(f"unknown op {op!r}")

    def _key_answer(self, sa: IkeSa | None, **extra: bool) -> dict[str, Any]:
        if sa is None:
            return {"ok": False, "error": "no such IKE SA"}
        return {"ok": True, **describe(sa, self._clock()), **extra, "key": sa.ippm_key.hex()}

    async def _for_peer(self, host: str, initiate: bool) -> dict[str, Any]:
        sa = self._database.by_peer(host)
        if sa is None and initiate and self._initiate is not None:
            return self._key_answer(await self._initiate(host), initiated=True)
        return self._key_answer(sa, initiated=False)


async def serve(broker: KeyBroker, path: Path) -> asyncio.Server:
    """Listen on the UNIX socket ``path``, readable by its owner only (DESIGN D7)."""

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(json.dumps(await broker.answer(line)).encode() + b"\n")
                await writer.drain()
        finally:
            writer.close()

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if _answers(path):
        raise OSError(errno.EADDRINUSE, "another daemon answers there")
    path.unlink(missing_ok=True)
    previous = os.umask(0o177)  # the socket is created 0600, with no window for others
    try:
        server = await asyncio.start_unix_server(session, path)
    finally:
        os.umask(previous)
    os.chmod(path, SOCKET_MODE)
    return server


def _answers(path: Path) -> bool:
    """True when something listens on the UNIX socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


async def query(path: Path, request: dict[str, Any]) -> dict[str, Any]:
    """Send one request to the broker at ``path`` and return its answer."""
    reader, writer = await asyncio.open_unix_connection(path)
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        answer: dict[str, Any] = json.loads(await reader.readline())
        return answer
    finally:
        writer.close()
        await writer.wait_closed()
