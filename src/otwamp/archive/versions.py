"""Applying the schema's migrations, and checking the version a reader finds."""

import time

from otwamp.archive.engines import ArchiveError, Engine
from otwamp.archive.schema import LATEST, MIGRATIONS, VERSION_TABLE, Migration, pending

CURRENT_VERSION = "SELECT MAX(version) FROM schema_version"
RECORD_VERSION = "INSERT INTO schema_version (version, description, applied_ns) VALUES (?, ?, ?)"


async def applied_version(engine: Engine) -> int:
    """The highest migration applied (0: none); ArchiveError if this is no otwamp archive."""
    try:
        rows = await engine.query(CURRENT_VERSION)
    except ArchiveError:
        raise ArchiveError(f"{engine.name}: not an otwamp archive (no schema_version)") from None
    return int(rows[0][0] or 0)


def _check_not_newer(engine: Engine, version: int) -> None:
    if version > LATEST:
        raise ArchiveError(
            f"{engine.name}: archive schema version {version} is newer than this otwamp's "
            f"({LATEST}): upgrade otwamp"
        )


async def migrate(engine: Engine) -> int:
    """Bring the archive to the latest version, each migration once, in its own transaction.

    Writers that migrate at the same moment are safe: the loser's transaction
    fails and rolls back (the table exists, the version row is taken), and it
    finds the version applied when it looks again.
    """
    await engine.transaction([(VERSION_TABLE, ())])
    version = await applied_version(engine)
    _check_not_newer(engine, version)
    for migration in pending(version, MIGRATIONS):
        try:
            await engine.transaction(_statements(engine, migration))
        except ArchiveError:
            if await applied_version(engine) < migration.version:
                raise
    return LATEST


def _statements(engine: Engine, migration: Migration) -> list[tuple[str, tuple[object, ...]]]:
    ddl: list[tuple[str, tuple[object, ...]]] = [(sql, ()) for sql in migration.sql(engine.dialect)]
    record = (migration.version, migration.description, time.time_ns())
    return [*ddl, (RECORD_VERSION, record)]


async def check_readable(engine: Engine) -> None:
    """A reader's check: the archive is otwamp's and at the version this otwamp reads."""
    version = await applied_version(engine)
    _check_not_newer(engine, version)
    if version < LATEST:
        raise ArchiveError(
            f"{engine.name}: archive schema version {version}, this otwamp reads {LATEST}: "
            "let a writer (the agent) migrate it first"
        )
