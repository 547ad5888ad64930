"""Snapshots of a Python repository with the real pip, on SQLite and PostgreSQL: a named snapshot keeps serving
the old set after newer uploads, numbered versions are views too, views are read-only, diff and rollback."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support import artifacts
from tests.support.net import with_credentials
from tests.support.clients import pip_install, twine_upload


def _wheel(d: Path, name: str, version: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return artifacts.make_wheel(d, name, version)


def _installed(target: Path, dist: str, version: str) -> bool:
    return (target / f"{dist}-{version}.dist-info").is_dir()


def test_pip_installs_the_old_set_from_a_snapshot(server, repo_name, tmp_path):
    server.create_repo(repo_name)
    upload = f"{server.url}/{repo_name}/legacy/"
    assert twine_upload(tmp_path, upload, [_wheel(tmp_path / "d1", "snapapp", "1.0"),
                                           _wheel(tmp_path / "d1", "snaplib", "1.0")], token=server.token).ok
    r = server.api("POST", f"/api/v1/repositories/{repo_name}/snapshots", json={"name": "2026-11-release"})
    assert r.status_code == 201, r.text
    snap = r.json()
    assert snap["version"] == 2 and snap["url"] == f"/{repo_name}/~2026-11-release/"
    # newer uploads and a deletion after the snapshot
    assert twine_upload(tmp_path, upload, [_wheel(tmp_path / "d2", "snapapp", "2.0"),
                                           _wheel(tmp_path / "d2", "snapnew", "1.0")], token=server.token).ok
    r = server.api("DELETE", f"/api/v1/repositories/{repo_name}/packages/snaplib")
    assert r.status_code == 200, r.text

    live = f"{server.url}/{repo_name}/simple/"
    view = f"{server.url}/{repo_name}/~2026-11-release/simple/"
    res = pip_install(tmp_path, view, "snapapp", "snaplib", target=tmp_path / "old")
    assert res.ok, res
    assert _installed(tmp_path / "old", "snapapp", "1.0") and _installed(tmp_path / "old", "snaplib", "1.0")
    res = pip_install(tmp_path, live, "snapapp", target=tmp_path / "new")
    assert res.ok, res
    assert _installed(tmp_path / "new", "snapapp", "2.0")
    # the view does not know what came later; the live repository no longer has what was deleted
    assert httpx.get(view + "snapnew/", timeout=30).status_code == 404
    assert httpx.get(live + "snaplib/", timeout=30).status_code == 404

    # the view's index and links point into the view; its JSON API too
    with httpx.Client(timeout=30) as c:
        page = c.get(view + "snapapp/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
        assert [f["filename"] for f in page["files"]] == ["snapapp-1.0-py3-none-any.whl"]
        link = str(httpx.URL(view + "snapapp/").join(page["files"][0]["url"]))  # relative: resolves into the view
        assert link.startswith(f"{server.url}/{repo_name}/~2026-11-release/files/")
        assert c.get(link).status_code == 200 and c.get(link + ".metadata").status_code == 200
        root = c.get(view, headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
        assert [p["name"] for p in root["projects"]] == ["snapapp", "snaplib"]
        j = c.get(f"{server.url}/{repo_name}/~2026-11-release/pypi/snapapp/json").json()
        assert j["info"]["version"] == "1.0"

        # numbered versions are views too: version 1 had only snapapp 1.0 (first file of the first upload)
        v1 = c.get(f"{server.url}/{repo_name}/~1/simple/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        assert v1.status_code == 200 and len(v1.json()["projects"]) == 1
        assert c.get(f"{server.url}/{repo_name}/~999/simple/").status_code == 404
        missing = c.get(f"{server.url}/{repo_name}/~no-such/simple/")
        assert missing.status_code == 404 and "no snapshot named 'no-such'" in missing.json()["error"]

        # read-only: an upload to a view is refused with a clear message
        wheel = _wheel(tmp_path / "d3", "snapapp", "3.0")
        r = c.post(f"{server.url}/{repo_name}/~2026-11-release/legacy/", auth=("__token__", server.token),
                   data=artifacts.upload_form(wheel, wheel.name, "snapapp", "3.0"),
                   files={"content": (wheel.name, wheel.read_bytes())})
        assert r.status_code == 405 and "read-only view" in r.json()["error"]

    # versions list: actor and summary of each change; snapshots shown on their version
    versions = server.api("GET", f"/api/v1/repositories/{repo_name}/versions").json()
    assert [v["number"] for v in versions] == [5, 4, 3, 2, 1, 0]  # 0: the repository was created
    assert versions[3]["snapshots"] == ["2026-11-release"] and versions[0]["actor"]
    assert versions[0]["summary"].startswith("remove")

    # diff: the snapshot against the current version
    d = server.api("GET", f"/api/v1/repositories/{repo_name}/diff", params={"from": "2026-11-release", "to": "5"}).json()
    assert sorted(f["filename"] for f in d["added"]) == ["snapapp-2.0-py3-none-any.whl", "snapnew-1.0-py3-none-any.whl"]
    assert [f["filename"] for f in d["removed"]] == ["snaplib-1.0-py3-none-any.whl"]
    assert all(len(f["sha256"]) == 64 for f in d["added"] + d["removed"])

    # rollback to the snapshot: a new version (6) with exactly the old contents; pip from the live index agrees
    r = server.api("POST", f"/api/v1/repositories/{repo_name}/rollback", json={"to": "2026-11-release"})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 6 and r.json()["removed"] == 2 and r.json()["added"] == 1
    res = pip_install(tmp_path, live, "snapapp", "snaplib", target=tmp_path / "rolled")
    assert res.ok, res
    assert _installed(tmp_path / "rolled", "snapapp", "1.0") and _installed(tmp_path / "rolled", "snaplib", "1.0")
    assert httpx.get(live + "snapnew/", timeout=30).status_code == 404
    assert server.api("GET", f"/api/v1/repositories/{repo_name}/diff",
                      params={"from": "2", "to": "6"}).json()["added"] == []
    with httpx.Client(timeout=30) as c:  # the rolled-back-away file is no longer downloadable from the live tree
        files = server.api("GET", f"/api/v1/repositories/{repo_name}/diff", params={"from": "5", "to": "6"}).json()
        gone = next(f for f in files["removed"] if f["filename"].startswith("snapnew"))
        assert c.get(f"{server.url}/{repo_name}/files/{gone['sha256']}/{gone['filename']}").status_code == 404

    # audit: snapshot creation and rollback are recorded
    actions = {e["action"] for e in server.api("GET", "/api/v1/audit", params={"repository": repo_name}).json()}
    assert {"repository:snapshot:create", "repository:version:rollback"} <= actions


def test_private_views_stay_private_and_snapshot_crud(server, repo_name, tmp_path):
    server.create_repo(repo_name, private=True)
    upload = f"{server.url}/{repo_name}/legacy/"
    assert twine_upload(tmp_path, upload, [_wheel(tmp_path / "d", "secretpkg", "1.0")], token=server.token).ok
    assert server.api("POST", f"/api/v1/repositories/{repo_name}/snapshots", json={"name": "s1"}).status_code == 201
    anon = httpx.get(f"{server.url}/{repo_name}/~s1/simple/", timeout=30)
    assert anon.status_code == 401
    other = server.create_token("other-" + repo_name, {"some-other-repo": "read"})
    assert httpx.get(f"{server.url}/{repo_name}/~s1/simple/", auth=("__token__", other), timeout=30).status_code == 403
    reader = server.create_token("reader-" + repo_name, {repo_name: "read"})
    res = pip_install(tmp_path, with_credentials(f"{server.url}/{repo_name}/~s1/simple/", "__token__", reader),
                      "secretpkg", target=tmp_path / "t")
    assert res.ok, res
    # a reader may list but not create or delete snapshots
    assert server.api("GET", f"/api/v1/repositories/{repo_name}/snapshots", token=reader).json()[0]["name"] == "s1"
    assert server.api("POST", f"/api/v1/repositories/{repo_name}/snapshots", token=reader,
                      json={"name": "s2"}).status_code == 403
    assert server.api("DELETE", f"/api/v1/repositories/{repo_name}/snapshots/s1", token=reader).status_code == 403
    # names: duplicates conflict, digits-only names are version numbers, bad versions are refused
    assert server.api("POST", f"/api/v1/repositories/{repo_name}/snapshots", json={"name": "s1"}).status_code == 409
    assert server.api("POST", f"/api/v1/repositories/{repo_name}/snapshots", json={"name": "42"}).status_code == 400
    assert server.api("POST", f"/api/v1/repositories/{repo_name}/snapshots",
                      json={"name": "later", "version": 9}).status_code == 404
    r = server.api("DELETE", f"/api/v1/repositories/{repo_name}/snapshots/s1")
    assert r.status_code == 200 and r.json()["version"] == 1
    assert httpx.get(f"{server.url}/{repo_name}/~s1/simple/", auth=("__token__", reader), timeout=30).status_code == 404
    # the same name again, pinned at another version, serves that version (the old tree is not reused)
    assert twine_upload(tmp_path, upload, [_wheel(tmp_path / "d2", "secretpkg", "2.0")], token=server.token).ok
    assert server.api("POST", f"/api/v1/repositories/{repo_name}/snapshots", json={"name": "s1"}).json()["version"] == 2
    page = httpx.get(f"{server.url}/{repo_name}/~s1/simple/secretpkg/", auth=("__token__", reader), timeout=30,
                     headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert len(page["files"]) == 2


def test_group_snapshots_are_refused(sqlite_server, repo_name):
    srv = sqlite_server
    srv.create_repo(repo_name)
    group = repo_name + "-g"
    r = srv.api("POST", "/api/v1/repositories", json={"name": group, "format": "python", "kind": "group",
                                                     "config": {"members": [repo_name]}})
    assert r.status_code == 201, r.text
    r = srv.api("POST", f"/api/v1/repositories/{group}/snapshots", json={"name": "x"})
    assert r.status_code == 400 and "Snapshot each member" in r.json()["error"]
    r = httpx.get(f"{srv.url}/{group}/~1/simple/", timeout=30)
    assert r.status_code == 400 and "is a group" in r.json()["error"]


def test_proxy_snapshot_serves_what_was_cached_without_the_upstream(sqlite_server, tmp_path, tmp_path_factory):
    from tests.support.server import WharfServer

    srv = sqlite_server
    with WharfServer(tmp_path_factory.mktemp("snap-up") / "data") as up:
        up.create_repo("up")
        assert twine_upload(tmp_path, f"{up.url}/up/legacy/", [_wheel(tmp_path / "u1", "proxied", "1.0")],
                            token=up.token).ok
        proxy = "snapproxy-" + tmp_path.name[-12:].lower().replace("_", "-")
        r = srv.api("POST", "/api/v1/repositories", json={"name": proxy, "format": "python", "kind": "proxy",
                                                         "config": {"upstream": {"url": f"{up.url}/up/simple/",
                                                                                 "index_ttl": 0}}})
        assert r.status_code == 201, r.text
        page = f"{srv.url}/{proxy}/simple/proxied/"

        def fetch_newest() -> str:  # what pip does: read the project page, download the newest file (cached now)
            files = httpx.get(page, headers={"Accept": "application/vnd.pypi.simple.v1+json"}, timeout=30).json()
            newest = files["files"][-1]
            assert httpx.get(str(httpx.URL(page).join(newest["url"])), timeout=30).status_code == 200
            # the proxy records a fetched file just after the client has its bytes (off the download's path); a
            # snapshot taken now waits for that record (no waiting here)
            return str(newest["filename"])

        assert fetch_newest() == "proxied-1.0-py3-none-any.whl"
        assert srv.api("POST", f"/api/v1/repositories/{proxy}/snapshots", json={"name": "c1"}).status_code == 201
        assert twine_upload(tmp_path, f"{up.url}/up/legacy/", [_wheel(tmp_path / "u2", "proxied", "2.0")],
                            token=up.token).ok
        assert fetch_newest() == "proxied-2.0-py3-none-any.whl"
    # the upstream is gone; the snapshot serves the version cached when it was taken
    res = pip_install(tmp_path, f"{srv.url}/{proxy}/~c1/simple/", "proxied", target=tmp_path / "p3")
    assert res.ok, res
    assert _installed(tmp_path / "p3", "proxied", "1.0")


def test_quarantine_applies_to_views_and_release_restores_them(sqlite_server, repo_name, tmp_path):
    srv = sqlite_server
    srv.create_repo(repo_name)
    wheel = _wheel(tmp_path / "q", "quarpkg", "1.0")
    assert twine_upload(tmp_path, f"{srv.url}/{repo_name}/legacy/", [wheel], token=srv.token).ok
    assert srv.api("POST", f"/api/v1/repositories/{repo_name}/snapshots", json={"name": "s"}).status_code == 201
    accept = {"Accept": "application/vnd.pypi.simple.v1+json"}

    def view_files(label: str) -> list[str]:
        r = httpx.get(f"{srv.url}/{repo_name}/~{label}/simple/quarpkg/", headers=accept, timeout=30)
        return [f["filename"] for f in r.json().get("files", [])] if r.status_code == 200 else []

    sha = artifacts.digests(wheel)["sha256"]
    url = f"{srv.url}/{repo_name}/~s/files/{sha}/{wheel.name}"
    assert view_files("s") == [wheel.name] and httpx.get(url, timeout=30).status_code == 200
    r = srv.api("POST", "/api/v1/quarantine", json={"repository": repo_name, "package": "quarpkg", "version": "1.0",
                                                     "reason": "suspicious install hook"})
    assert r.status_code == 201, r.text
    r = httpx.get(url, timeout=30)
    assert r.status_code == 403 and "suspicious install hook" in r.json()["error"]
    assert view_files("s") == [] and view_files("1") == []  # views re-render without it
    r = srv.api("POST", "/api/v1/quarantine/release", json={"repository": repo_name, "package": "quarpkg",
                                                             "version": "1.0"})
    assert r.status_code == 200, r.text
    assert view_files("s") == [wheel.name] and view_files("1") == [wheel.name]
    assert httpx.get(url, timeout=30).status_code == 200
    res = pip_install(tmp_path, f"{srv.url}/{repo_name}/~1/simple/", "quarpkg", target=tmp_path / "t")
    assert res.ok, res
