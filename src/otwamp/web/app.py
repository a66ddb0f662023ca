"""The dashboard's HTTP side: read-only JSON and CSV over the archive, and the static pages.

Every route is GET (HEAD too); anything else gets 405 from the router, so
nothing here can write. Bad parameters get 400 with a one-line message, an
archive that cannot be read 503. The archive is opened on first use, so the
agent can serve the pages before its first session is written.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiohttp import web

from otwamp.archive.engines import ArchiveError, ArchiveUnavailable
from otwamp.archive.query import Pair, Reader, buckets, delay_histogram, latest, pair_sessions
from otwamp.archive.rows import dotted_pairs, iso_time, session_document
from otwamp.archive.timespec import parse_time
from otwamp.errors import ConfigError
from otwamp.results import owamp, report
from otwamp.results.records import OwampSessionRecord
from otwamp.results.stats import NS_PER_S
from otwamp.web import series
from otwamp.web.grid import HALVES, cells
from otwamp.web.settings import WebSettings

STATIC = Path(__file__).with_name("static")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_POINTS = 5_000
DEFAULT_POINTS = 1_000
MAX_BINS = 200
MAX_LIMIT = 1_000
PROTOCOLS = ("twamp", "owamp")
SECURITY_HEADERS = {
    # Scripts and styles come from the package itself; data is put in with textContent.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class BadParameter(Exception):
    """A query parameter the API cannot use: 400 with this message."""


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """400 for bad parameters, 503 for an unreadable archive, security headers on all."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # 404, 405 from the router
        exc.headers.update(SECURITY_HEADERS)
        raise
    except (BadParameter, ConfigError) as exc:
        response = web.json_response({"error": str(exc)}, status=400)
    except (ArchiveError, ArchiveUnavailable) as exc:
        response = web.json_response({"error": f"archive: {exc}"}, status=503)
    response.headers.update(SECURITY_HEADERS)
    return response


# --- parameters -------------------------------------------------------------------


def _check_names(query: Mapping[str, str], allowed: set[str]) -> None:
    unknown = sorted(set(query) - allowed)
    if unknown:
        names = ", ".join(sorted(allowed)) or "none"
        raise BadParameter(f"unknown parameter {unknown[0]!r} (allowed: {names})")


def _pair(query: Mapping[str, str]) -> Pair:
    missing = [key for key in ("source", "destination") if not query.get(key)]
    if missing:
        raise BadParameter(f"missing parameter {missing[0]!r}")
    protocol = query.get("protocol", "twamp")
    if protocol not in PROTOCOLS:
        raise BadParameter(f"protocol must be twamp or owamp, not {protocol!r}")
    return Pair(query["source"], query["destination"], protocol)


def _moment(text: str, now_ns: int) -> int:
    """Seconds since the epoch (as the charts send them), a duration ago, or ISO 8601."""
    try:
        return round(float(text) * NS_PER_S)
    except ValueError:
        return parse_time(text, now_ns)


def _range(query: Mapping[str, str], now_ns: int) -> tuple[int, int]:
    since = _moment(query.get("since", "24h"), now_ns)
    until = _moment(query["until"], now_ns) if "until" in query else now_ns
    if since >= until:
        raise BadParameter("since must be before until")
    return since, until


def _integer(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadParameter(f"{name} must be a whole number from {low} to {high}, not {text!r}")
    return int(text)


def _session_id(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isdigit():
        raise BadParameter(f"a session id is a number, not {text!r}")
    return int(text)


PAIR_NAMES = {"source", "destination", "protocol", "since", "until"}


# --- handlers ------------------------------------------------------------------------


class Dashboard:
    """The handlers over one archive location, opened on first use."""

    def __init__(self, location: str, settings: WebSettings) -> None:
        self.location, self.settings = location, settings
        self._reader: Reader | None = None
        self._lock = asyncio.Lock()

    async def reader(self) -> Reader:
        """The archive's reader, opened now if it is not yet (ArchiveError if it cannot be)."""
        async with self._lock:
            if self._reader is None:
                self._reader = await Reader.open(self.location)
            return self._reader

    async def close(self, _app: web.Application | None = None) -> None:
        """Close the reader, if one was opened."""
        if self._reader is not None:
            await self._reader.close()
            self._reader = None

    async def page(self, request: web.Request) -> web.StreamResponse:
        """The grid (/) or a pair's page (/pair?source=&destination=&protocol=)."""
        if request.path == "/pair":
            _check_names(request.query, PAIR_NAMES)
            _pair(request.query)
            _range(request.query, time.time_ns())
            return web.FileResponse(STATIC / "pair.html")
        _check_names(request.query, set())
        return web.FileResponse(STATIC / "index.html")

    async def grid(self, request: web.Request) -> web.StreamResponse:
        """GET /api/grid: every pair measured in the window, judged (grid.py)."""
        _check_names(request.query, set())
        now = time.time_ns()
        found = await latest(await self.reader(), now - self.settings.window * NS_PER_S)
        grids = []
        for protocol in PROTOCOLS:
            mine = [cell for cell in cells(found, self.settings, now) if cell.protocol == protocol]
            if mine:
                grids.append(
                    {
                        "protocol": protocol,
                        "halves": HALVES[protocol],
                        "sources": sorted({cell.source for cell in mine}),
                        "destinations": sorted({cell.destination for cell in mine}),
                        "cells": [asdict(cell) | {"last": iso_time(cell.last_ns)} for cell in mine],
                    }
                )
        thresholds = self.settings.thresholds
        return web.json_response(
            {
                "now": iso_time(now),
                "refresh": self.settings.refresh,
                "stale_after": self.settings.stale_after,
                "thresholds": {
                    "loss_amber_pct": thresholds.loss_amber * 100,
                    "loss_red_pct": thresholds.loss_red * 100,
                    "delay_amber": thresholds.delay.amber,
                    "delay_red": thresholds.delay.red,
                },
                "grids": grids,
            },
            dumps=_dumps,
        )

    async def series(self, request: web.Request) -> web.StreamResponse:
        """GET /api/series[.csv]: a pair's downsampled time series (series.py)."""
        query = request.query
        _check_names(query, PAIR_NAMES | {"points"})
        pair = _pair(query)
        since, until = _range(query, time.time_ns())
        points = _integer(query, "points", DEFAULT_POINTS, 1, MAX_POINTS)
        width = series.bucket_width(since, until, points)
        rows = await buckets(await self.reader(), pair, since, until, width)
        columns = series.series_columns(pair.protocol, rows)
        if request.path.endswith(".csv"):
            return _csv(series.columns_csv(columns), f"{pair.source}-{pair.destination}-series")
        return web.json_response(
            asdict(pair)
            | {
                "since": since / NS_PER_S,
                "until": until / NS_PER_S,
                "bucket_s": width / NS_PER_S,
                "sessions": sum(columns["sessions"]),
                "columns": columns,
            },
            dumps=_dumps,
        )

    async def histogram(self, request: web.Request) -> web.StreamResponse:
        """GET /api/histogram: the sessions' median delays of a pair, counted in bins."""
        query = request.query
        _check_names(query, PAIR_NAMES | {"bins"})
        pair = _pair(query)
        since, until = _range(query, time.time_ns())
        bins = _integer(query, "bins", 40, 1, MAX_BINS)
        found = await delay_histogram(await self.reader(), pair, since, until, bins)
        return web.json_response(asdict(pair) | series.histogram_json(found, bins), dumps=_dumps)

    async def sessions(self, request: web.Request) -> web.StreamResponse:
        """GET /api/sessions[.csv]: a pair's sessions, newest first, as `results list` has them."""
        query = request.query
        _check_names(query, PAIR_NAMES | {"limit", "offset"})
        pair = _pair(query)
        since, until = _range(query, time.time_ns())
        limit = _integer(query, "limit", 100, 1, MAX_LIMIT)
        offset = _integer(query, "offset", 0, 0, 2**62)
        total, rows = await pair_sessions(await self.reader(), pair, since, until, limit, offset)
        documents = [
            session_document(session_id, values) | {"records": kept}
            for session_id, values, kept in rows
        ]
        if request.path.endswith(".csv"):
            flat = [dict(dotted_pairs(document)) for document in documents]
            return _csv(series.objects_csv(flat), f"{pair.source}-{pair.destination}-sessions")
        return web.json_response(
            {"total": total, "offset": offset, "limit": limit, "sessions": documents},
            dumps=_dumps,
        )

    async def session(self, request: web.Request) -> web.StreamResponse:
        """GET /api/sessions/{id}: one session as `otwamp results show ID --json` prints it."""
        _check_names(request.query, set())
        session_id = _session_id(request)
        values = await _found(await self.reader(), lambda reader: reader.session(session_id))
        return web.json_response(session_document(session_id, values), dumps=_dumps)

    async def packets(self, request: web.Request) -> web.StreamResponse:
        """GET /api/sessions/{id}/packets[.txt]: its kept per-packet records (JSON or text)."""
        _check_names(request.query, set())
        session_id = _session_id(request)
        record = await _found(await self.reader(), lambda reader: reader.records(session_id))
        module = owamp if isinstance(record, OwampSessionRecord) else report
        if request.path.endswith(".txt"):
            return web.Response(text="\n".join(module.raw_lines(record, json_lines=False)) + "\n")
        lines = module.raw_lines(record, json_lines=True)
        return web.json_response([json.loads(line) for line in lines], dumps=_dumps)


async def _found(reader: Reader, read: Callable[[Reader], Awaitable[Any]]) -> Any:
    """What ``read`` finds; 404 when the archive has no such session (or no records of it)."""
    try:
        return await read(reader)
    except ArchiveError as exc:
        raise web.HTTPNotFound(
            text=_dumps({"error": str(exc)}), content_type="application/json"
        ) from None


def _csv(text: str, name: str) -> web.Response:
    safe = "".join(c if c.isalnum() or c in ".-_" else "_" for c in name)
    return web.Response(
        text=text,
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{safe}.csv"'},
    )


def app(location: str, settings: WebSettings | None = None) -> web.Application:
    """The dashboard over the archive at ``location`` as an aiohttp Application.

    The agent mounts it in its own event loop (``web.AppRunner(app(...))``);
    ``otwamp web`` runs it by itself. The archive is opened on the first
    request and closed with the application.
    """
    dashboard = Dashboard(location, settings or WebSettings())
    application = web.Application(middlewares=[_errors])
    application.on_cleanup.append(dashboard.close)
    routes = [
        ("/", dashboard.page),
        ("/pair", dashboard.page),
        ("/api/grid", dashboard.grid),
        ("/api/series", dashboard.series),
        ("/api/series.csv", dashboard.series),
        ("/api/histogram", dashboard.histogram),
        ("/api/sessions", dashboard.sessions),
        ("/api/sessions.csv", dashboard.sessions),
        ("/api/sessions/{id}", dashboard.session),
        ("/api/sessions/{id}/packets", dashboard.packets),
        ("/api/sessions/{id}/packets.txt", dashboard.packets),
    ]
    for path, handler in routes:
        application.router.add_get(path, handler)
    application.router.add_static("/static/", STATIC, follow_symlinks=False)
    return application


@contextlib.asynccontextmanager
async def serving(location: str, settings: WebSettings) -> AsyncIterator[list[tuple[str, int]]]:
    """Serve ``app(location, settings)`` on ``settings.listen`` until the block ends.

    Yields the addresses bound (port 0 in ``listen`` picks a free one).
    """
    runner = web.AppRunner(app(location, settings), access_log=None)
    await runner.setup()
    try:
        host, port = settings.listen
        site = web.TCPSite(runner, host, port)
        await site.start()
        yield [(address[0], address[1]) for address in runner.addresses]
    finally:
        await runner.cleanup()
