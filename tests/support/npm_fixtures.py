"""pytest fixtures for tests that run the real npm: isolated npm users and package folders under the test's
tmp dir (a plugin of tests/conftest.py: every test may ask for ``npm`` and ``project``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import unique

from .npm_clients import NpmClient, make_project

__all__ = ["npm", "project"]


@pytest.fixture
def npm(tmp_path: Path) -> Callable[..., NpmClient]:
    """npm(f"{server.url}/repo/", token, name="alice") -> an isolated npm user with its own cache."""
    def make(registry: str, token: str | None = None, *, name: str | None = None, **kw: Any) -> NpmClient:
        return NpmClient(tmp_path, registry, token, name=name or unique("npmc"), **kw)
    return make


@pytest.fixture
def project(tmp_path: Path) -> Callable[..., Path]:
    """project("@acme/lib", "1.0.0", dependencies=..., files=..., extra=...) -> a package folder to publish."""
    def make(name: str, version: str = "1.0.0", **kw: Any) -> Path:
        return make_project(tmp_path / "src", name, version, **kw)
    return make
