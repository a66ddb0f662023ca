"""Fixtures of the archive tests: every archive test runs on SQLite and on a real PostgreSQL.

Fixtures
--------
``postgres``
    Session scope. A throwaway PostgreSQL cluster (tests/archive/postgres.py),
    started once for the whole run and removed at the end.
``location``
    Function scope, parametrized ``sqlite`` / ``postgresql``: the location of a
    new, empty archive: a file path in ``tmp_path``, or the URL of a new
    database on the session's cluster.
"""

from collections.abc import Iterator

import pytest

from tests.archive.postgres import Cluster, running_cluster


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "archive.db")
    cluster: Cluster = request.getfixturevalue("postgres")
    return cluster.create_database()
