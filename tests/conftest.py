"""Shared fixtures: a real PostgreSQL, real Wharf server processes on SQLite and PostgreSQL, artifact factories."""

from __future__ import annotations

import itertools
import os
from typing import Iterator

import pytest

from tests.support.postgres import PostgresServer, find_pg_bin
from tests.support.server import WharfServer, backend_server

# fixtures every test folder may use: isolated npm users and package folders (npm, snapshots, promotion tests)
pytest_plugins = ["tests.support.npm_fixtures"]

_counter = itertools.count()


def unique(prefix: str = "r") -> str:
    return f"{prefix}{next(_counter)}-{os.getpid()}"


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    if find_pg_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (make test installs it: scripts/ensure-postgres.sh)")
        pytest.skip("PostgreSQL not installed")
    with PostgresServer() as pg:
        yield pg


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfServer]:
    """A running server per test module and database backend (tests use unique repository names)."""
    with backend_server(request, tmp_path_factory, "wharf") as srv:
        yield srv


@pytest.fixture(scope="module")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfServer]:
    """A running server on the embedded defaults only (for tests whose subject is not the database)."""
    data = tmp_path_factory.mktemp("wharf-sqlite") / "data"
    with WharfServer(data) as srv:
        yield srv


@pytest.fixture
def repo_name() -> str:
    return unique("repo")
