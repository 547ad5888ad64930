"""Quarantine end to end: pip and npm are refused a quarantined version (hidden from the index, 403 with the reason
on download, also through a group), admins still see it, release brings it back; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
from typer.testing import CliRunner
import pytest

from tests.conftest import unique
from tests.support import artifacts
from tests.support.clients import pip_install, twine_upload


def _wheel(d: Path, name: str, version: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return artifacts.make_wheel(d, name, version)


def _simple(server, repo: str, name: str) -> dict:
    r = httpx.get(f"{server.url}/{repo}/simple/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert r.status_code == 200, r.text
    return r.json()


def test_pip_quarantine_version_and_project(server, repo_name, tmp_path):
    server.create_repo(repo_name)
    files = [_wheel(tmp_path / "dist", "qpkg", "1.0"), _wheel(tmp_path / "dist", "qpkg", "1.1")]
    assert twine_upload(tmp_path, f"{server.url}/{repo_name}/legacy/", files, token=server.token).ok
    index = f"{server.url}/{repo_name}/simple/"
    bad = _simple(server, repo_name, "qpkg")["files"][1]
    assert bad["filename"].startswith("qpkg-1.1")

    r = server.api("POST", "/api/v1/quarantine", json={"repository": repo_name, "package": "qpkg", "version": "1.1",
                                                       "reason": "malware found in 1.1"})
    assert r.status_code == 201, r.text
    assert [f["version"] for f in r.json()["files"]] == ["1.1"]

    # hidden from the index: pip picks 1.0, and cannot have 1.1
    page = _simple(server, repo_name, "qpkg")
    assert page["versions"] == ["1.0"] and [f["filename"] for f in page["files"]] == [files[0].name]
    res = pip_install(tmp_path, index, "qpkg", target=tmp_path / "t1")
    assert res.ok, res
    assert (tmp_path / "t1" / "qpkg-1.0.dist-info").is_dir()
    # the file itself: 403 with the reason, not a 404
    r = httpx.get(f"{server.url}/{repo_name}/files/{bad['hashes']['sha256']}/{bad['filename']}")
    assert r.status_code == 403 and "malware found in 1.1" in r.text
    # the JSON API does not show it either; admins see the file with its reason
    assert "1.1" not in httpx.get(f"{server.url}/{repo_name}/pypi/qpkg/json").json()["releases"]
    anon = httpx.get(f"{server.url}/api/v1/repositories/{repo_name}/packages/qpkg").json()
    assert anon["versions"] == ["1.0"]
    admin = server.api("GET", f"/api/v1/repositories/{repo_name}/packages/qpkg").json()
    assert admin["versions"] == ["1.0", "1.1"]
    assert [f["quarantined"] for f in admin["files"]] == [None, "malware found in 1.1"]
    listed = server.api("GET", "/api/v1/quarantine", params={"repository": repo_name}).json()
    assert [(q["package"], q["version"], q["reason"]) for q in listed] == [("qpkg", "1.1", "malware found in 1.1")]
    assert listed[0]["files"][0]["sha256"] == bad["hashes"]["sha256"]
    # anonymous and read-only callers may not quarantine or list
    assert httpx.post(f"{server.url}/api/v1/quarantine", json={"repository": repo_name, "package": "qpkg",
                                                               "reason": "x"}).status_code == 401
    assert httpx.get(f"{server.url}/api/v1/quarantine", params={"repository": repo_name}).status_code == 401

    # the whole project: PEP 792 status "quarantined", no files offered
    r = server.api("POST", "/api/v1/quarantine", json={"repository": repo_name, "package": "QPkg", "reason": "takeover"})
    assert r.status_code == 201, r.text
    page = _simple(server, repo_name, "qpkg")
    assert page["project-status"] == {"status": "quarantined", "reason": "takeover"}
    assert page["meta"]["api-version"] == "1.4" and page["files"] == []
    html = httpx.get(index + "qpkg/").text
    assert '<meta name="pypi:project-status" content="quarantined">' in html
    assert server.api("POST", "/api/v1/quarantine", json={"repository": repo_name, "package": "qpkg",
                                                          "reason": "again"}).status_code == 409

    # release both: everything is back
    for body in ({"package": "qpkg"}, {"package": "qpkg", "version": "1.1"}):
        r = server.api("POST", "/api/v1/quarantine/release", json={"repository": repo_name, "reason": "cleared", **body})
        assert r.status_code == 200, r.text
    assert "project-status" not in _simple(server, repo_name, "qpkg")
    res = pip_install(tmp_path, index, "qpkg==1.1", target=tmp_path / "t4")
    assert res.ok, res
    assert server.api("GET", "/api/v1/quarantine", params={"repository": repo_name}).json() == []
    history = server.api("GET", "/api/v1/quarantine", params={"repository": repo_name, "all": True}).json()
    assert len(history) == 2 and all(q["released_at"] and q["released_by"] for q in history)
    actions = [e["action"] for e in server.api("GET", "/api/v1/audit", params={"repository": repo_name}).json()]
    assert actions.count("repository:package:quarantine") == 2 and actions.count("repository:package:release") == 2


def test_group_does_not_serve_quarantined_bytes_from_another_member(server, tmp_path):
    if server.backend == "postgres":
        pytest.skip("the database is not this test's subject (runs on SQLite)")
    a, b, grp = unique("qa"), unique("qb"), unique("qg")
    server.create_repo(a)
    server.create_repo(b)
    wheel = _wheel(tmp_path / "dist", "shared", "2.0")
    for repo in (a, b):
        assert twine_upload(tmp_path, f"{server.url}/{repo}/legacy/", [wheel], token=server.token).ok
    r = server.api("POST", "/api/v1/repositories", json={"name": grp, "format": "python", "kind": "group",
                                                          "config": {"members": [a, b]}})
    assert r.status_code == 201, r.text
    f = _simple(server, grp, "shared")["files"][0]
    url = f"/files/{f['hashes']['sha256']}/{f['filename']}"
    assert httpx.get(f"{server.url}/{grp}{url}").status_code == 200

    r = server.api("POST", "/api/v1/quarantine", json={"repository": a, "package": "shared", "version": "2.0",
                                                       "reason": "bad build"})
    assert r.status_code == 201, r.text
    assert httpx.get(f"{server.url}/{a}{url}").status_code == 403
    # b still has (and serves) its own copy, but not through a group that contains a
    assert httpx.get(f"{server.url}/{b}{url}").status_code == 200
    r = httpx.get(f"{server.url}/{grp}{url}")
    assert r.status_code == 403 and "bad build" in r.text
    # a group is not a quarantine target
    r = server.api("POST", "/api/v1/quarantine", json={"repository": grp, "package": "shared", "reason": "x"})
    assert r.status_code == 400


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_npm_quarantined_version_is_refused(server, tmp_path):
    if server.backend == "postgres":
        pytest.skip("the main flow runs on PostgreSQL with pip; npm on SQLite")
    from tests.e2e.npm.conftest import new_repo
    from tests.support.npm_clients import NpmClient, make_project

    repo = new_repo(server)
    reg = f"{server.url}/{repo}/"
    dev = NpmClient(tmp_path, reg, server.token, name="dev")
    for v in ("1.0.0", "1.1.0"):
        r = dev.run("publish", cwd=make_project(tmp_path / "src" / v, "qnpm", v))
        assert r.ok, r
    r = server.api("POST", "/api/v1/quarantine", json={"repository": repo, "package": "qnpm", "version": "1.1.0",
                                                       "reason": "credential stealer"})
    assert r.status_code == 201, r.text
    doc = httpx.get(f"{reg}qnpm").json()
    assert list(doc["versions"]) == ["1.0.0"] and doc["dist-tags"].get("latest") != "1.1.0"
    r = httpx.get(f"{reg}qnpm/-/qnpm-1.1.0.tgz")
    assert r.status_code == 403 and "credential stealer" in r.text

    app = make_project(tmp_path / "app", "app", "0.0.1", dependencies={"qnpm": "1.1.0"}, extra={"private": True})
    user = NpmClient(tmp_path, reg, name="user")
    r = user.run("install", cwd=app)
    assert not r.ok
    app2 = make_project(tmp_path / "app2", "app2", "0.0.1", dependencies={"qnpm": "^1.0.0"}, extra={"private": True})
    r = user.run("install", cwd=app2)
    assert r.ok, r
    assert json.loads((app2 / "node_modules" / "qnpm" / "package.json").read_text())["version"] == "1.0.0"

    # CLI: release, then 1.1.0 installs
    from typer.testing import CliRunner

    from wharf.cli import app as cli

    out = CliRunner().invoke(cli, ["quarantine", "list", repo, "--json", "--url", server.url, "--token", server.token])
    assert out.exit_code == 0 and json.loads(out.stdout)[0]["reason"] == "credential stealer"
    out = CliRunner().invoke(cli, ["quarantine", "remove", f"{repo}/qnpm@1.1.0", "--reason", "false positive",
                                   "--url", server.url, "--token", server.token])
    assert out.exit_code == 0, out.output
    assert "1.1.0" in httpx.get(f"{reg}qnpm").json()["versions"]
    r = user.run("install", "--prefer-online", cwd=app)  # npm keeps the packument it read a moment ago otherwise
    assert r.ok, r


def test_proxy_never_refetches_and_hides_quarantined_versions(server, tmp_path):
    """A Python proxy: a quarantined version is refused (403) without asking the upstream again, cached or not,
    and is left out of the mirrored page, also through a group."""
    if server.backend == "postgres":
        pytest.skip("the database is not this test's subject (runs on SQLite)")
    from tests.support.fake_upstream import FakeUpstream

    with FakeUpstream() as up:
        files = {f"mirrored-{v}-py3-none-any.whl": artifacts.wheel_bytes("mirrored", v) for v in ("1.0", "2.0", "3.0")}
        up.project("mirrored", files)
        proxy, grp = unique("qpx"), unique("qpg")
        r = server.api("POST", "/api/v1/repositories", json={"name": proxy, "format": "python", "kind": "proxy",
                                                              "config": {"upstream": {"url": up.index_url}}})
        assert r.status_code == 201, r.text
        r = server.api("POST", "/api/v1/repositories", json={"name": grp, "format": "python", "kind": "group",
                                                              "config": {"members": [proxy]}})
        assert r.status_code == 201, r.text
        page = _simple(server, proxy, "mirrored")
        assert page["versions"] == ["1.0", "2.0", "3.0"]
        assert _simple(server, grp, "mirrored")["versions"] == ["1.0", "2.0", "3.0"]
        urls = {f["filename"]: f"/files/{f['hashes']['sha256']}/{f['filename']}" for f in page["files"]}
        one, two = "mirrored-1.0-py3-none-any.whl", "mirrored-2.0-py3-none-any.whl"
        assert httpx.get(f"{server.url}/{proxy}{urls[one]}").status_code == 200  # cached now
        fetched = up.count(f"/files/{one}")

        for version in ("1.0", "2.0"):  # 1.0 is cached, 2.0 was never fetched
            r = server.api("POST", "/api/v1/quarantine", json={"repository": proxy, "package": "mirrored",
                                                               "version": version, "reason": f"bad {version}"})
            assert r.status_code == 201, r.text
        for filename, reason in ((one, "bad 1.0"), (two, "bad 2.0")):
            for repo in (proxy, grp):
                r = httpx.get(f"{server.url}/{repo}{urls[filename]}")
                assert r.status_code == 403 and reason in r.text, (repo, filename, r.status_code)
        assert up.count(f"/files/{one}") == fetched and up.count(f"/files/{two}") == 0  # never (re-)fetched
        assert _simple(server, proxy, "mirrored")["versions"] == ["3.0"]
        assert [f["filename"] for f in _simple(server, grp, "mirrored")["files"]] == ["mirrored-3.0-py3-none-any.whl"]

        r = server.api("POST", "/api/v1/quarantine/release", json={"repository": proxy, "package": "mirrored",
                                                                   "version": "2.0"})
        assert r.status_code == 200, r.text
        assert _simple(server, grp, "mirrored")["versions"] == ["2.0", "3.0"]
        assert httpx.get(f"{server.url}/{grp}{urls[two]}").status_code == 200


def test_generic_release_directory_quarantine(server, tmp_path):
    """Generic files: a release directory is the package; its files answer 403 and leave the listing."""
    if server.backend == "postgres":
        pytest.skip("the database is not this test's subject (runs on SQLite)")
    repo = unique("qgen")
    r = server.api("POST", "/api/v1/repositories", json={"name": repo, "format": "generic"})
    assert r.status_code == 201, r.text
    for path in ("tools/app/1.4/app-1.4.tar.gz", "tools/app/1.5/app-1.5.tar.gz"):
        r = server.api("PUT", f"/{repo}/{path}", content=path.encode())
        assert r.status_code == 201, r.text
    out = CliRunner().invoke(cli_app(), ["quarantine", "add", f"{repo}/tools/app/1.4", "--reason", "signing key leaked",
                                         "--url", server.url, "--token", server.token])
    assert out.exit_code == 0, out.output
    r = httpx.get(f"{server.url}/{repo}/tools/app/1.4/app-1.4.tar.gz")
    assert r.status_code == 403 and "signing key leaked" in r.text
    assert httpx.get(f"{server.url}/{repo}/tools/app/1.5/app-1.5.tar.gz").content == b"tools/app/1.5/app-1.5.tar.gz"
    listing = httpx.get(f"{server.url}/{repo}/tools/app/", headers={"Accept": "application/json"}).text
    assert "1.5" in listing and "1.4" not in listing


def cli_app():
    from wharf.cli import app

    return app


def test_npm_proxy_hides_and_refuses_quarantined_versions(server, tmp_path):
    """An npm proxy (of a hosted repository on the same server, over loopback): a quarantined version leaves the
    mirrored packument (and a group's) and its tarball answers 403, fetched or not."""
    if server.backend == "postgres":
        pytest.skip("the database is not this test's subject (runs on SQLite)")
    from tests.support.npm_clients import pack_tarball, publish_document

    hosted, proxy, grp = unique("nph"), unique("npp"), unique("npg")
    server.create_repo(hosted, format="npm")
    for v in ("1.0.0", "1.1.0"):
        tgz = pack_tarball({"name": "mirrorpkg", "version": v})
        r = server.api("PUT", f"/{hosted}/mirrorpkg", json=publish_document("mirrorpkg", v, tgz))
        assert r.status_code in (200, 201), r.text
    for body in ({"name": proxy, "format": "npm", "kind": "proxy",
                  "config": {"upstream": {"url": f"{server.url}/{hosted}/"}}},
                 {"name": grp, "format": "npm", "kind": "group", "config": {"members": [proxy]}}):
        r = server.api("POST", "/api/v1/repositories", json=body)
        assert r.status_code == 201, r.text
    assert sorted(httpx.get(f"{server.url}/{proxy}/mirrorpkg").json()["versions"]) == ["1.0.0", "1.1.0"]
    r = server.api("POST", "/api/v1/quarantine", json={"repository": proxy, "package": "mirrorpkg",
                                                       "version": "1.1.0", "reason": "typosquat payload"})
    assert r.status_code == 201, r.text
    for repo in (proxy, grp):
        doc = httpx.get(f"{server.url}/{repo}/mirrorpkg").json()
        assert list(doc["versions"]) == ["1.0.0"] and doc["dist-tags"].get("latest") != "1.1.0", repo
    r = httpx.get(f"{server.url}/{proxy}/mirrorpkg/-/mirrorpkg-1.1.0.tgz")
    assert r.status_code == 403 and "typosquat payload" in r.text
    assert httpx.get(f"{server.url}/{proxy}/mirrorpkg/-/mirrorpkg-1.0.0.tgz").status_code == 200
    files = server.api("GET", f"/api/v1/repositories/{proxy}/packages/mirrorpkg").json()["files"]
    assert [f["version"] for f in files] == ["1.0.0"]  # 1.1.0 was never fetched


def test_snapshot_views_withhold_quarantined_files(server, tmp_path):
    """A snapshot view rendered before the quarantine stops listing and serving the file; release restores it."""
    if server.backend == "postgres":
        pytest.skip("the database is not this test's subject (runs on SQLite)")
    repo = unique("qsnap")
    server.create_repo(repo)
    files = [_wheel(tmp_path / "dist", "snappy", "1.0"), _wheel(tmp_path / "dist", "snappy", "1.1")]
    assert twine_upload(tmp_path, f"{server.url}/{repo}/legacy/", files, token=server.token).ok
    r = server.api("POST", f"/api/v1/repositories/{repo}/snapshots", json={"name": "rel"})
    assert r.status_code == 201, r.text
    view = f"{repo}/~rel"
    page = _simple(server, view, "snappy")
    assert page["versions"] == ["1.0", "1.1"]
    bad = page["files"][1]
    url = f"{server.url}/{view}/files/{bad['hashes']['sha256']}/{bad['filename']}"
    assert httpx.get(url).status_code == 200

    r = server.api("POST", "/api/v1/quarantine", json={"repository": repo, "package": "snappy", "version": "1.1",
                                                       "reason": "bad 1.1"})
    assert r.status_code == 201, r.text
    assert _simple(server, view, "snappy")["versions"] == ["1.0"]
    r = httpx.get(url)
    assert r.status_code == 403 and "bad 1.1" in r.text
    assert _simple(server, f"{repo}/~2", "snappy")["versions"] == ["1.0"]  # a view rendered after it

    r = server.api("POST", "/api/v1/quarantine/release", json={"repository": repo, "package": "snappy",
                                                               "version": "1.1"})
    assert r.status_code == 200, r.text
    assert _simple(server, view, "snappy")["versions"] == ["1.0", "1.1"]
    assert httpx.get(url).status_code == 200
