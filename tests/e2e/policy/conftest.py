"""One server per database backend for the whole policy package (the tests use unique names), instead of one per
module: starting servers is most of these tests' time."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.support.server import WharfServer


@pytest.fixture(scope="package", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfServer]:
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("postgres").create_database()
    data = tmp_path_factory.mktemp(f"wharf-policy-{request.param}") / "data"
    with WharfServer(data, database_url=url) as srv:
        srv.backend = request.param  # type: ignore[attr-defined]
        yield srv
