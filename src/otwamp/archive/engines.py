"""The two archive engines behind one async interface: SQLite and PostgreSQL.

SQL is written once, with ``?`` placeholders (PostgreSQL's engine turns them
into ``%s``) and only what both engines understand: no ``%`` or ``?`` literal
ever appears in a statement, values always travel as parameters.

SQLite runs in one writer thread of its own (a ``ThreadPoolExecutor`` of one):
sqlite3 calls block, and a connection belongs to the thread that made it, so
one thread owning the one connection keeps the event loop free and serializes
writes as SQLite does anyway, with no extra dependency (aiosqlite is the same
thread with more code). PostgreSQL uses psycopg 3's native async connection.
"""

import asyncio
import sqlite3
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from otwamp.archive.schema import Dialect
from otwamp.errors import OtwampError

T = TypeVar("T")
Params = Sequence[Any]
Statement = tuple[str, Params]
Row = tuple[Any, ...]

BUSY_TIMEOUT_MS = 5000  # how long SQLite waits for another process's write lock
CONNECT_TIMEOUT = 5  # seconds, PostgreSQL
POSTGRESQL_SCHEMES = ("postgresql", "postgres")
# SQLite result codes worth retrying: BUSY, LOCKED, IOERR, FULL, CANTOPEN, PROTOCOL.
TRANSIENT_SQLITE_CODES = frozenset({5, 6, 10, 13, 14, 15})


class ArchiveError(OtwampError):
    """An archive that cannot be used as given: bad location, not an archive, wrong version."""


class ArchiveUnavailable(OtwampError):
    """The archive cannot be reached now (server down, file locked): worth retrying."""


class Engine(ABC):
    """One connection to one archive; statements run in order, one at a time."""

    dialect: Dialect
    name: str  # where the archive is, for messages (never a password)

    @abstractmethod
    async def transaction(self, statements: Sequence[Statement]) -> None:
        """Run ``statements`` in one transaction: all or nothing."""

    @abstractmethod
    async def query(self, sql: str, params: Params = ()) -> list[Row]:
        """The rows of one SELECT."""

    @abstractmethod
    async def close(self) -> None:
        """Close the connection; the engine may not be used again."""


# --- SQLite -------------------------------------------------------------------


class SqliteEngine(Engine):
    """One SQLite file in WAL mode, driven by a single thread that owns the connection."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path, *, create: bool) -> None:
        self.path, self.name, self.create = path, str(path), create
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="otwamp-archive")
        self._connection: sqlite3.Connection | None = None

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._with_connection, work)

    def _with_connection(self, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._connection is None:
                self._connection = self._connect()
            return work(self._connection)
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary result code
            kind = ArchiveUnavailable if code in TRANSIENT_SQLITE_CODES else ArchiveError
            raise kind(f"{self.name}: {exc}") from None
        except OSError as exc:  # its directory cannot be made (yet): a mount may be missing
            raise ArchiveUnavailable(f"{self.name}: {exc.strerror or exc}") from None

    def _connect(self) -> sqlite3.Connection:
        if self.create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, isolation_level=None)
            # WAL: readers never block the writer; NORMAL: a commit survives a crash of
            # the process, only the last ones may be lost with the machine's power.
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
        else:
            connection = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
            )
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        return connection

    async def transaction(self, statements: Sequence[Statement]) -> None:
        """Run ``statements`` between BEGIN IMMEDIATE and COMMIT in the writer thread."""

        def work(connection: sqlite3.Connection) -> None:
            connection.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    connection.execute(sql, params)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

        await self._run(work)

    async def query(self, sql: str, params: Params = ()) -> list[Row]:
        """The rows of one SELECT, read in the writer thread."""
        return await self._run(lambda connection: connection.execute(sql, params).fetchall())

    async def close(self) -> None:
        """Close the connection in its thread, then stop the thread."""

        def work() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        await asyncio.get_running_loop().run_in_executor(self._thread, work)
        self._thread.shutdown()


# --- PostgreSQL -------------------------------------------------------------------


def redacted(url: str) -> str:
    """A PostgreSQL URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc[-1]}"))


class PostgresEngine(Engine):
    """A PostgreSQL database through psycopg 3's async API; reconnects after a failure."""

    dialect: Dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.url, self.name = url, redacted(url)
        self._connection: Any = None  # psycopg.AsyncConnection, imported on first use

    async def _connect(self) -> Any:
        import psycopg

        if self._connection is None or self._connection.closed:
            try:
                self._connection = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
                )
            except psycopg.OperationalError as exc:
                raise ArchiveUnavailable(f"{self.name}: {_first_line(exc)}") from None
            except psycopg.ProgrammingError as exc:  # an invalid connection string
                raise ArchiveError(f"{self.name}: {_first_line(exc)}") from None
        return self._connection

    async def _run(self, work: Callable[[Any], Any]) -> Any:
        import psycopg

        connection = await self._connect()
        try:
            return await work(connection)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            await self._drop()
            raise ArchiveUnavailable(f"{self.name}: {_first_line(exc)}") from None
        except psycopg.Error as exc:  # the statement's own fault: retrying cannot help
            raise ArchiveError(f"{self.name}: {_first_line(exc)}") from None

    async def _drop(self) -> None:
        """Forget a connection that failed; the next call connects again."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    async def transaction(self, statements: Sequence[Statement]) -> None:
        """Run ``statements`` in one transaction, ``?`` placeholders as ``%s``."""

        async def work(connection: Any) -> None:
            async with connection.transaction():
                for sql, params in statements:
                    await connection.execute(_placeholders(sql), params)

        await self._run(work)

    async def query(self, sql: str, params: Params = ()) -> list[Row]:
        """The rows of one SELECT."""

        async def work(connection: Any) -> list[Row]:
            cursor = await connection.execute(_placeholders(sql), params)
            return [tuple(row) for row in await cursor.fetchall()]

        result: list[Row] = await self._run(work)
        return result

    async def close(self) -> None:
        """Close the connection."""
        await self._drop()


def _placeholders(sql: str) -> str:
    return sql.replace("?", "%s")


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# --- locations ----------------------------------------------------------------


def open_engine(location: str, *, create: bool) -> Engine:
    """The engine of an archive location: a ``postgresql://`` URL or a SQLite file path.

    ``create`` lets SQLite make the file and its directory (writers); readers
    get a read-only connection and a one-line error for a missing file.
    """
    scheme = urlsplit(location).scheme if "://" in location else ""
    if scheme in POSTGRESQL_SCHEMES:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ArchiveError(
                "a PostgreSQL archive needs psycopg: pip install 'otwamp[agent]'"
            ) from None
        return PostgresEngine(location)
    if scheme == "sqlite":
        location = location[len("sqlite://") :]
    elif scheme:
        raise ArchiveError(
            f"{location}: unknown archive scheme {scheme!r} (postgresql:// or a path)"
        )
    if not location:
        raise ArchiveError("empty archive path")
    path = Path(location)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if not create:
            raise ArchiveError(f"{path}: no such archive") from None
    except OSError as exc:
        raise ArchiveError(f"{path}: {exc.strerror}") from None
    else:
        if not stat.S_ISREG(mode):
            raise ArchiveError(f"{path}: not a file")
    return SqliteEngine(path, create=create)
