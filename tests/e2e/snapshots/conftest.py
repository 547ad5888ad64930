"""Fixtures for the snapshot tests: isolated npm users and package folders (as the npm tests make them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import unique
from tests.support.npm_clients import NpmClient, make_project


@pytest.fixture
def npm(tmp_path: Path) -> Callable[..., NpmClient]:
    def make(registry: str, token: str | None = None, *, name: str | None = None, **kw: Any) -> NpmClient:
        return NpmClient(tmp_path, registry, token, name=name or unique("npmc"), **kw)
    return make


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str, version: str = "1.0.0", **kw: Any) -> Path:
        return make_project(tmp_path / "src", name, version, **kw)
    return make
