"""A hosted npm repository driven by the real npm 11 (and pnpm for one cross-client check).

The publish -> install -> `npm ci` flow runs on SQLite and PostgreSQL (the ``server`` fixture); the rest on SQLite.
Each npm user has its own cache, so an install really downloads from the server (npm publish leaves the tarball in
the publisher's cache)."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest

from tests.e2e.npm.conftest import new_repo, packument, repo_stats, tarball_gets
from tests.support.npm_clients import make_project, pnpm_path


def _installed(app, name: str) -> str:
    return json.loads((app / "node_modules" / name / "package.json").read_text())["version"]


def test_publish_install_and_ci(server, npm, project, tmp_path):
    """Publish an unscoped and a scoped package (one depending on the other), install them into a project with a
    second user, then `npm ci` from the lockfile with a third; tarball URLs point at the host the client used."""
    repo = new_repo(server)
    reg = f"{server.url}/{repo}/"
    dev = npm(reg, server.token)
    assert dev.run("publish", cwd=project("@acme/lib", "1.0.0")).ok
    r = dev.run("publish", cwd=project("greeter", "2.1.0", dependencies={"@acme/lib": "^1.0.0"}))
    assert r.ok, r
    assert "+ greeter@2.1.0" in r.output

    app = project("app", "0.0.1", dependencies={"greeter": "^2.0.0"}, extra={"private": True})
    user = npm(reg)  # anonymous reads of a public repository
    r = user.run("install", cwd=app)
    assert r.ok, r
    assert _installed(app, "greeter") == "2.1.0" and _installed(app, "@acme/lib") == "1.0.0"
    lock = json.loads((app / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@acme/lib"]["resolved"] == f"{reg}@acme/lib/-/lib-1.0.0.tgz"
    assert lock["packages"]["node_modules/greeter"]["integrity"].startswith("sha512-")

    shutil.rmtree(app / "node_modules")
    before = len(tarball_gets(server, repo))
    r = npm(reg, name="ci-user").run("ci", cwd=app)
    assert r.ok, r
    assert _installed(app, "greeter") == "2.1.0"
    assert len(tarball_gets(server, repo)) == before + 2  # both tarballs came from the server again

    # the packument in both shapes, under both URL forms of a scoped name, with ETag/304
    full = packument(reg, "@acme/lib").json()
    assert full["versions"]["1.0.0"]["dist"]["tarball"] == f"{reg}@acme/lib/-/lib-1.0.0.tgz"
    assert full["dist-tags"] == {"latest": "1.0.0"} and full["time"]["1.0.0"]
    r = httpx.get(f"{reg}@acme/lib", headers={"Accept": "application/vnd.npm.install-v1+json"})
    assert r.headers["content-type"] == "application/vnd.npm.install-v1+json"
    assert set(r.json()) == {"name", "modified", "dist-tags", "versions"}
    assert httpx.get(f"{reg}@acme/lib", headers={"If-None-Match": r.headers["etag"],
                                                 "Accept": "application/vnd.npm.install-v1+json"}).status_code == 304
    stats = repo_stats(server, repo)["stats"]
    assert stats["files"] == 2
    # the management API takes scoped names (with their "/") in its package routes
    api = server.api("GET", f"/api/v1/repositories/{repo}/packages/@acme/lib")
    assert api.status_code == 200 and [f["version"] for f in api.json()["files"]] == ["1.0.0"], api.text
    gone = server.api("DELETE", f"/api/v1/repositories/{repo}/packages/@acme/lib/versions/1.0.0")
    assert gone.status_code == 200 and gone.json()["removed"], gone.text
    assert server.api("GET", f"/api/v1/repositories/{repo}/packages/@acme/lib").status_code == 404


def test_tarball_urls_follow_the_host_the_client_used(sqlite_server):
    srv = sqlite_server
    repo = new_repo(srv)
    tgz_doc = _publish_by_hand(srv, repo, "hostcheck", "1.0.0")
    assert tgz_doc.status_code == 201, tgz_doc.text
    url = f"{srv.url}/{repo}/hostcheck"
    a = httpx.get(url).json()["versions"]["1.0.0"]["dist"]["tarball"]
    b = httpx.get(url, headers={"Host": "npm.example.test:8443"}).json()["versions"]["1.0.0"]["dist"]["tarball"]
    assert a == f"{srv.url}/{repo}/hostcheck/-/hostcheck-1.0.0.tgz"
    assert b == f"http://npm.example.test:8443/{repo}/hostcheck/-/hostcheck-1.0.0.tgz"
    tgz = httpx.get(a)
    assert tgz.status_code == 200 and tgz.headers["content-length"] == str(len(tgz.content))
    assert httpx.get(a, headers={"Range": "bytes=0-9"}).status_code == 206
    assert httpx.get(f"{srv.url}/{repo}/hostcheck/1.0.0").json()["dist"]["tarball"] == a
    assert httpx.get(f"{srv.url}/{repo}/hostcheck/latest").json()["version"] == "1.0.0"


def _publish_by_hand(srv, repo, name, version, token=None):
    from tests.support.npm_clients import pack_tarball, publish_document

    tgz = pack_tarball({"name": name, "version": version})
    doc = publish_document(name, version, tgz)
    return httpx.put(f"{srv.url}/{repo}/{name.replace('/', '%2f')}", json=doc,
                     headers={"Authorization": f"Bearer {token or srv.token}"}, timeout=30)


def test_republishing_a_version_is_forbidden(sqlite_server, npm, project):
    srv = sqlite_server
    repo = new_repo(srv)
    reg = f"{srv.url}/{repo}/"
    dev = npm(reg, srv.token)
    assert dev.run("publish", cwd=project("immutable", "1.0.0")).ok
    before = packument(reg, "immutable").json()["versions"]["1.0.0"]["dist"]["integrity"]
    # --force skips npm's own check, so the server has to refuse (other bytes, same version)
    r = dev.run("publish", "--force", cwd=project("immutable", "1.0.0", files={"extra.js": "1"}))
    assert not r.ok and "403" in r.output and "previously published version" in r.output, r
    assert packument(reg, "immutable").json()["versions"]["1.0.0"]["dist"]["integrity"] == before
    # the identical tarball again is refused too, as on npm's own registry
    r = _publish_by_hand(srv, repo, "immutable", "1.0.0")
    assert r.status_code == 403


def test_dist_tags(sqlite_server, npm, project):
    srv = sqlite_server
    repo = new_repo(srv)
    reg = f"{srv.url}/{repo}/"
    dev = npm(reg, srv.token)
    assert dev.run("publish", cwd=project("tagged", "1.0.0")).ok
    r = dev.run("publish", "--tag", "beta", cwd=project("tagged", "2.0.0-beta.1"))
    assert r.ok, r
    r = dev.run("dist-tag", "ls", "tagged")
    assert r.ok and "beta: 2.0.0-beta.1" in r.output and "latest: 1.0.0" in r.output, r
    assert dev.run("dist-tag", "add", "tagged@1.0.0", "stable").ok
    assert packument(reg, "tagged").json()["dist-tags"] == {"latest": "1.0.0", "beta": "2.0.0-beta.1",
                                                           "stable": "1.0.0"}
    app = make_project(dev.base, "tag-app", extra={"private": True})
    r = npm(reg).run("install", "tagged@beta", cwd=app)
    assert r.ok, r
    assert _installed(app, "tagged") == "2.0.0-beta.1"
    assert dev.run("dist-tag", "rm", "tagged", "stable").ok
    assert "stable" not in packument(reg, "tagged").json()["dist-tags"]
    r = dev.run("dist-tag", "add", "tagged@9.9.9", "nope")
    assert not r.ok and "not in repository" in r.output, r
    # a read-only token cannot move tags
    reader = srv.create_token("reader-" + repo, {repo: "read"})
    r = npm(reg, reader).run("dist-tag", "add", "tagged@2.0.0-beta.1", "latest")
    assert not r.ok and "403" in r.output
    assert packument(reg, "tagged").json()["dist-tags"]["latest"] == "1.0.0"


def test_deprecate_and_undeprecate(sqlite_server, npm, project):
    srv = sqlite_server
    repo = new_repo(srv)
    reg = f"{srv.url}/{repo}/"
    dev = npm(reg, srv.token)
    assert dev.run("publish", cwd=project("oldie", "1.0.0")).ok
    assert dev.run("publish", cwd=project("oldie", "1.1.0")).ok
    r = dev.run("deprecate", "oldie@1.0.0", "use 1.1 instead")
    assert r.ok, r
    doc = packument(reg, "oldie").json()
    assert doc["versions"]["1.0.0"]["deprecated"] == "use 1.1 instead"
    assert "deprecated" not in doc["versions"]["1.1.0"]
    assert packument(reg, "oldie", abbreviated=True).json()["versions"]["1.0.0"]["deprecated"] == "use 1.1 instead"
    app = make_project(dev.base, "dep-app", extra={"private": True})
    r = npm(reg).run("install", "oldie@1.0.0", cwd=app)
    assert r.ok and "deprecated" in r.output and "use 1.1 instead" in r.output, r
    assert dev.run("deprecate", "oldie@1.0.0", "").ok
    assert "deprecated" not in packument(reg, "oldie").json()["versions"]["1.0.0"]


def test_unpublish_rules(sqlite_server, npm, project):
    """Default rule: unpublish needs admin on the repository; an unpublished version cannot come back."""
    srv = sqlite_server
    repo = new_repo(srv)
    reg = f"{srv.url}/{repo}/"
    writer = srv.create_token("writer-" + repo, {repo: "write"})
    dev = npm(reg, writer)
    for v in ("1.0.0", "1.0.1", "1.0.2"):
        assert dev.run("publish", cwd=project("gone", v)).ok
    r = dev.run("unpublish", "gone@1.0.1")
    assert not r.ok and "403" in r.output, r
    assert "1.0.1" in packument(reg, "gone").json()["versions"]

    admin = npm(reg, srv.token)
    r = admin.run("unpublish", "gone@1.0.2")
    assert r.ok, r
    doc = packument(reg, "gone").json()
    assert sorted(doc["versions"]) == ["1.0.0", "1.0.1"] and doc["dist-tags"]["latest"] == "1.0.1"
    assert httpx.get(f"{reg}gone/-/gone-1.0.2.tgz").status_code == 404
    r = dev.run("publish", cwd=project("gone", "1.0.2"))
    assert not r.ok and "403" in r.output, r

    r = admin.run("unpublish", "gone", "--force")
    assert r.ok, r
    assert packument(reg, "gone").status_code == 404
    assert httpx.get(f"{reg}gone/-/gone-1.0.0.tgz").status_code == 404

    # a repository may let writers unpublish, or nobody
    open_repo = new_repo(srv, unpublish="write")
    w2 = npm(f"{srv.url}/{open_repo}/", srv.create_token("w2-" + open_repo, {open_repo: "write"}))
    assert w2.run("publish", cwd=project("mine", "1.0.0")).ok
    assert w2.run("unpublish", "mine", "--force").ok
    closed = new_repo(srv, unpublish="never")
    a2 = npm(f"{srv.url}/{closed}/", srv.token)
    assert a2.run("publish", cwd=project("kept", "1.0.0")).ok
    r = a2.run("unpublish", "kept", "--force")
    assert not r.ok and "403" in r.output
    assert packument(f"{srv.url}/{closed}/", "kept").status_code == 200


def test_whoami_login_and_logout(sqlite_server, npm, project):
    srv = sqlite_server
    repo = new_repo(srv, private=True)
    reg = f"{srv.url}/{repo}/"
    token = srv.create_token("alice", {repo: "write"})
    assert npm(reg, token).run("whoami").stdout.strip() == "alice"
    r = npm(reg).run("whoami")
    assert not r.ok and "ENEEDAUTH" in r.output  # npm knows without asking; the server says 401 too:
    assert httpx.get(f"{reg}-/whoami").status_code == 401

    # npm login: the web flow is declined, npm falls back to user/password; the password is a Wharf token
    user = npm(reg)
    r = user.run_prompted("login", answers=[("Username:", "alice"), ("Password:", token)])
    assert r.ok, r
    assert f":_authToken={token}" in user.userconfig.read_text()
    assert user.run("whoami").stdout.strip() == "alice"
    assert user.run("publish", cwd=project("logged-in", "1.0.0")).ok
    # the private repository serves its packuments and tarballs to the logged-in user only
    app = project("private-app", "0.0.1", dependencies={"logged-in": "1.0.0"}, extra={"private": True})
    r = npm(reg, token).run("install", cwd=app)
    assert r.ok, r
    assert _installed(app, "logged-in") == "1.0.0"
    shutil.rmtree(app / "node_modules")
    r = npm(reg).run("ci", cwd=app)
    assert not r.ok and ("401" in r.output or "ENEEDAUTH" in r.output), r

    bad = npm(reg)
    r = bad.run_prompted("login", answers=[("Username:", "mallory"), ("Password:", "wharf_not_a_token")])
    assert not r.ok and "_authToken" not in bad.userconfig.read_text(), r
    other = srv.create_token("elsewhere", {"some-other-repo": "write"})
    r = npm(reg).run_prompted("login", answers=[("Username:", "bob"), ("Password:", other)])
    assert not r.ok, r


def test_audit_answers_clean(sqlite_server, npm, project):
    srv = sqlite_server
    repo = new_repo(srv)
    reg = f"{srv.url}/{repo}/"
    assert npm(reg, srv.token).run("publish", cwd=project("audited", "1.0.0")).ok
    app = project("audit-app", "0.0.1", dependencies={"audited": "1.0.0"}, extra={"private": True})
    user = npm(reg)
    assert user.run("install", cwd=app).ok
    r = user.run("audit", cwd=app, audit=True)
    assert r.ok and "found 0 vulnerabilities" in r.output, r
    r = user.run("audit", "--json", cwd=app, audit=True)
    assert r.ok and r.json()["metadata"]["vulnerabilities"]["total"] == 0, r


@pytest.mark.skipif(pnpm_path() is None, reason="pnpm is not installed (scripts/test-tools.d/npm.sh)")
def test_pnpm_installs_from_wharf(sqlite_server, npm, project):
    srv = sqlite_server
    repo = new_repo(srv)
    reg = f"{srv.url}/{repo}/"
    dev = npm(reg, srv.token)
    assert dev.run("publish", cwd=project("@acme/pn-lib", "1.2.3")).ok
    assert dev.run("publish", cwd=project("pn-top", "0.1.0", dependencies={"@acme/pn-lib": "^1.0.0"})).ok
    app = project("pn-app", "0.0.1", dependencies={"pn-top": "0.1.0"}, extra={"private": True})
    r = npm(reg, name="pnpm-user").pnpm("install", cwd=app)
    assert r.ok, r
    assert json.loads((app / "node_modules" / "pn-top" / "package.json").read_text())["version"] == "0.1.0"
    lock = (app / "pnpm-lock.yaml").read_text()
    assert "'@acme/pn-lib@1.2.3'" in lock and "integrity: sha512-" in lock
    assert any(p.endswith("/pn-lib-1.2.3.tgz") for p in tarball_gets(srv, repo))
