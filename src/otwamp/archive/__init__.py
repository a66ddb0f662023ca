"""The results archive: SQLite by default, PostgreSQL for a whole mesh (docs/ARCHIVE.md)."""

DEFAULT_ARCHIVE = "/var/lib/otwamp/archive.db"  # the agent's SQLite file (its state directory)
