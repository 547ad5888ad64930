"""Fixtures for generic repositories: curl isolated per test, repositories, the blob store's contents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unique
from tests.support.generic_curl import Curl


@pytest.fixture
def curl(tmp_path: Path) -> Curl:
    return Curl(tmp_path)


def make_repo(server: Any, *, private: bool = False, **config: Any) -> str:
    name = unique("gen")
    server.create_repo(name, format="generic", private=private, **config)
    return name


def stats(server: Any, repo: str) -> dict[str, Any]:
    r = server.api("GET", f"/api/v1/repositories/{repo}")
    assert r.status_code == 200, r.text
    return r.json()
