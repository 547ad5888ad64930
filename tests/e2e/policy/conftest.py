"""One server per database backend for the whole policy package (the tests use unique names), instead of one per
module: starting servers is most of these tests' time."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.support.server import WharfServer, backend_server


@pytest.fixture(scope="package", params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfServer]:
    with backend_server(request, tmp_path_factory, "wharf-policy") as srv:
        yield srv
