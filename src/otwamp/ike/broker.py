"""The key broker: IPPM keys for the O/TWAMP side over a UNIX socket (DESIGN D7, RFC 7717 §5.1).

One JSON object per line each way, a request at most MAX_REQUEST octets. Requests:
  {"op": "key", "spi_i": HEX, "spi_r": HEX}      the key of the SA a KeyID names (D4)
  {"op": "peer", "host": IP, "initiate": BOOL}   the newest SA with a peer (optionally set up;
                                                 "initiated" in the answer says it was)
  {"op": "status"}                               every SA, without keys, and the number of
                                                 half-open SAs ("half_open", RFC 7296 §2.6)
                                                 when the broker is given it
  {"op": "rekey", SA}                            rekey (RFC 7296 §2.18) or delete (§1.4.1) the
  {"op": "delete", SA}                           SA named by SA: "spi_i" and "spi_r" (HEX), or
                                                 "host" (IP) and optionally "port": every SA
                                                 with that peer
Answers carry "ok"; errors say why in "error". Only "key" and "peer" answers hold a key.
"""

import asyncio
import errno
import ipaddress
import json
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from otwamp.control.server_policy import fmt
from otwamp.errors import OtwampError
from otwamp.ike.database import SaDatabase
from otwamp.ike.errors import NegotiationError
from otwamp.ike.sa import IkeSa

SOCKET_MODE = 0o600  # DESIGN D7
MAX_REQUEST = 4096  # octets in a request line; a longer one ends the connection
MAX_ANSWER = 1 << 24  # octets in an answer line we read (a status of many SAs)
Initiate = Callable[[str], Awaitable[IkeSa]]
_SPI_HEX = 16  # an IKE SPI is 8 octets (RFC 7296 §3.1)


class SaControl(Protocol):
    """What ``rekey`` and ``delete`` requests ask of the daemon (``IkeDaemon``)."""

    async def rekey(self, sa: IkeSa) -> IkeSa:
        """Replace ``sa`` by a new SA; NegotiationError says why not."""
        ...

    async def remove(self, sa: IkeSa) -> bool:
        """Delete ``sa``; True if the peer answered (without an answer it is forgotten)."""
        ...


def describe(sa: IkeSa, now: float) -> dict[str, Any]:
    """An SA for ``status``: SPIs, peer, IDs, algorithms, age; never the key."""
    return {
        "spi_i": sa.spi_i.hex(),
        "spi_r": sa.spi_r.hex(),
        "peer": fmt(sa.peer[0], sa.peer[1]),
        "host": sa.peer[0],
        "port": sa.peer[1],
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
        control: SaControl | None = None,
    ) -> None:
        self._database = database
        self._clock = clock
        self._initiate = initiate
        self._half_open = half_open
        self._control = control

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
            return self._key_answer(self._database.by_spis(*_spis(request)))
        if op == "peer":
            return await self._for_peer(str(request["host"]), bool(request.get("initiate", False)))
        if op in ("rekey", "delete") and self._control is not None:
            return await self._act(op, self._control, request)
        raise ValueError(f"unknown op {op!r}")

    async def _act(self, op: str, control: SaControl, request: dict[str, Any]) -> dict[str, Any]:
        """Rekey or delete the SAs a request names; never an answer with a key."""
        sas = self._selected(request)
        now = self._clock()
        if op == "rekey":
            new = await asyncio.gather(*(control.rekey(sa) for sa in sas))
            rekeyed = [
                {"old": describe(old, now), "new": describe(sa, self._clock())}
                for old, sa in zip(sas, new, strict=True)
            ]
            return {"ok": True, "rekeyed": rekeyed}
        answered = await asyncio.gather(*(control.remove(sa) for sa in sas))
        deleted = [
            {**describe(sa, now), "answered": yes} for sa, yes in zip(sas, answered, strict=True)
        ]
        return {"ok": True, "deleted": deleted}

    def _selected(self, request: dict[str, Any]) -> list[IkeSa]:
        """The SAs named by SPIs, or every SA with a peer address (and port, if given)."""
        if "spi_i" in request:
            spi_i, spi_r = _spis(request)
            sa = self._database.by_spis(spi_i, spi_r)
            if sa is None:
                raise NegotiationError(f"no IKE SA {spi_i.hex()}/{spi_r.hex()}")
            return [sa]
        host = ipaddress.ip_address(_string(request, "host", 64))
        port = request.get("port")
        if port is not None and (type(port) is not int or not 0 < port < 65536):
            raise ValueError("port must be an integer from 1 to 65535")
        sas = [
            sa
            for sa in self._database.all()
            if ipaddress.ip_address(sa.peer[0]) == host and port in (None, sa.peer[1])
        ]
        if not sas:
            where = str(host) if port is None else fmt(str(host), port)
            raise NegotiationError(f"no IKE SA with {where}")
        return sas

    def _key_answer(self, sa: IkeSa | None, **extra: bool) -> dict[str, Any]:
        if sa is None:
            return {"ok": False, "error": "no such IKE SA"}
        return {"ok": True, **describe(sa, self._clock()), **extra, "key": sa.ippm_key.hex()}

    async def _for_peer(self, host: str, initiate: bool) -> dict[str, Any]:
        sa = self._database.by_peer(host)
        if sa is None and initiate and self._initiate is not None:
            return self._key_answer(await self._initiate(host), initiated=True)
        return self._key_answer(sa, initiated=False)


def _string(request: dict[str, Any], key: str, longest: int) -> str:
    value = request[key]
    if not isinstance(value, str) or len(value) > longest:
        raise ValueError(f"{key} must be a string of at most {longest} characters")
    return value


def _spis(request: dict[str, Any]) -> tuple[bytes, bytes]:
    """SPIi and SPIr of a request, each 16 hex digits (RFC 7296 §3.1)."""
    spis = []
    for key in ("spi_i", "spi_r"):
        text = _string(request, key, _SPI_HEX)
        if len(text) != _SPI_HEX:
            raise ValueError(f"{key} must be {_SPI_HEX} hex digits")
        spis.append(bytes.fromhex(text))
    return spis[0], spis[1]


async def serve(broker: KeyBroker, path: Path) -> asyncio.Server:
    """Listen on the UNIX socket ``path``, readable by its owner only (DESIGN D7)."""

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than MAX_REQUEST: answer once, then hang up
                    refusal = {"ok": False, "error": f"bad request: over {MAX_REQUEST} octets"}
                    writer.write(json.dumps(refusal).encode() + b"\n")
                    break
                if not line:
                    break
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
        server = await asyncio.start_unix_server(session, path, limit=MAX_REQUEST)
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
    reader, writer = await asyncio.open_unix_connection(path, limit=MAX_ANSWER)
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        answer: dict[str, Any] = json.loads(await reader.readline())
        return answer
    finally:
        writer.close()
        await writer.wait_closed()
