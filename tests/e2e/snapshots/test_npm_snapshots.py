"""npm installs from a snapshot view (`--registry .../~snap/`) the versions and dist-tags it pinned, on SQLite and
PostgreSQL; the view refuses publishing."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest

from tests.conftest import unique

if shutil.which("npm") is None:  # pragma: no cover - scripts/test-tools.d/npm.sh installs it
    pytest.skip("npm is not installed", allow_module_level=True)


def _installed(app, name: str) -> str:
    return json.loads((app / "node_modules" / name / "package.json").read_text())["version"]


def test_npm_install_from_a_snapshot(server, npm, project, tmp_path):
    repo = unique("npmsnap")
    server.create_repo(repo, format="npm")
    reg = f"{server.url}/{repo}/"
    dev = npm(reg, server.token)
    assert dev.run("publish", cwd=project("@acme/base", "1.0.0")).ok
    assert dev.run("publish", cwd=project("greeter", "1.0.0", dependencies={"@acme/base": "^1.0.0"})).ok
    r = server.api("POST", f"/api/v1/repositories/{repo}/snapshots", json={"name": "rel-1"})
    assert r.status_code == 201, r.text
    # newer versions move `latest` in the live repository
    assert dev.run("publish", cwd=project("@acme/base", "1.5.0")).ok
    assert dev.run("publish", cwd=project("greeter", "1.2.0", dependencies={"@acme/base": "^1.0.0"})).ok

    view = f"{server.url}/{repo}/~rel-1/"
    app = project("app", "0.0.1", dependencies={"greeter": "^1.0.0"}, extra={"private": True})
    r = npm(view).run("install", "--registry", view, cwd=app)
    assert r.ok, r
    assert _installed(app, "greeter") == "1.0.0" and _installed(app, "@acme/base") == "1.0.0"
    lock = json.loads((app / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/greeter"]["resolved"] == f"{view}greeter/-/greeter-1.0.0.tgz"

    live_app = project("app2", "0.0.1", dependencies={"greeter": "^1.0.0"}, extra={"private": True})
    r = npm(reg).run("install", cwd=live_app)
    assert r.ok, r
    assert _installed(live_app, "greeter") == "1.2.0" and _installed(live_app, "@acme/base") == "1.5.0"

    doc = httpx.get(f"{view}greeter", timeout=30).json()
    assert list(doc["versions"]) == ["1.0.0"] and doc["dist-tags"] == {"latest": "1.0.0"}
    # publishing to a view is refused
    r = httpx.put(f"{view}greeter", json={"name": "greeter"}, headers={"Authorization": f"Bearer {server.token}"})
    assert r.status_code == 405 and "read-only view" in r.json()["error"]
