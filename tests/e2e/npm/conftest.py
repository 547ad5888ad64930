"""Helpers for the npm tests: repositories on the running server, packuments, the access log (the npm clients and
package folders are the fixtures of tests/support/npm_fixtures.py)."""

from __future__ import annotations

import json
import re
import shutil
from typing import Any

import httpx
import pytest

from tests.conftest import unique

if shutil.which("npm") is None:  # pragma: no cover - scripts/test-tools.d/npm.sh installs it
    pytest.skip("npm is not installed (scripts/test-tools.d/npm.sh installs it)", allow_module_level=True)


def new_repo(server: Any, *, kind: str = "hosted", private: bool = False, **config: Any) -> str:
    name = unique("npm")
    r = server.api("POST", "/api/v1/repositories", json={"name": name, "format": "npm", "kind": kind,
                                                        "private": private, "config": config})
    assert r.status_code == 201, r.text
    return name


def packument(registry: str, name: str, *, abbreviated: bool = False, token: str | None = None) -> httpx.Response:
    headers = {"Accept": "application/vnd.npm.install-v1+json"} if abbreviated else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(registry.rstrip("/") + "/" + name.replace("/", "%2f"), headers=headers, timeout=30)


def tarball_gets(server: Any, repo: str) -> list[str]:
    """Paths of tarball GETs answered 200 for ``repo``, from the server's access log."""
    out = []
    for line in server.log_path.read_text(errors="replace").splitlines():
        if '"wharf.access"' not in line:
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("method") == "GET" and rec.get("status") == 200 and re.match(rf"^/{repo}/.*/-/[^/]+\.tgz$", rec.get("path", "")):
            out.append(rec["path"])
    return out


def repo_stats(server: Any, repo: str) -> dict[str, Any]:
    r = server.api("GET", f"/api/v1/repositories/{repo}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]
