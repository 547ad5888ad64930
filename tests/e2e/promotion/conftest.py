"""Helpers for the promotion tests: repositories, Python uploads over the legacy API, the wharf CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import unique
from tests.support import artifacts
from tests.support.server import WHARF_BIN


def repo(server: Any, prefix: str = "p", *, format: str = "python", kind: str = "hosted", private: bool = False,
         **config: Any) -> str:
    name = unique(prefix)
    r = server.api("POST", "/api/v1/repositories", json={"name": name, "format": format, "kind": kind,
                                                        "private": private, "config": config})
    assert r.status_code == 201, r.text
    return name


def upload_python(server: Any, repo_name: str, path: Path, name: str, version: str, token: str | None = None) -> None:
    form = artifacts.upload_form(path, path.name, name, version)
    r = httpx.post(f"{server.url}/{repo_name}/legacy/", data=form, files={"content": (path.name, path.read_bytes())},
                   auth=("__token__", token or server.token), timeout=60)
    assert r.status_code == 200, r.text


def python_package(server: Any, repo_name: str, tmp: Path, name: str, versions: tuple[str, ...] = ("1.0",), *,
                   sdist: bool = True, **kw: Any) -> list[Path]:
    """Upload a wheel (and an sdist) of each version; returns the files."""
    out = []
    for v in versions:
        d = tmp / f"dist-{name}-{v}-{unique('d')}"
        d.mkdir(parents=True)
        files = [artifacts.make_wheel(d, name, v, **kw)] + ([artifacts.make_sdist(d, name, v)] if sdist else [])
        for f in files:
            upload_python(server, repo_name, f, name, v)
        out.extend(files)
    return out


def promote(server: Any, token: str | None = "admin", **body: Any) -> httpx.Response:
    return server.api("POST", "/api/v1/promotions", token=token, json=body)


def wharf(server: Any, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
    env.update({"WHARF_URL": server.url, "WHARF_TOKEN": token or server.token, "COLUMNS": "200", "NO_COLOR": "1"})
    return subprocess.run([WHARF_BIN, *args], env=env, capture_output=True, text=True, timeout=120)


def files_of(server, repo_name: str, package: str) -> dict[str, str]:
    """filename -> sha256 of a package's live files in a repository ({} if none)."""
    r = server.api("GET", f"/api/v1/repositories/{repo_name}/packages/{package}")
    if r.status_code == 404:
        return {}
    assert r.status_code == 200, r.text
    return {f["filename"]: f["sha256"] for f in r.json()["files"]}


