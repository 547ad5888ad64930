"""npm proxy and group repositories with the real npm; the upstream is a second Wharf on loopback (or, for faults a
real server cannot produce, a scripted one)."""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.conftest import unique
from tests.e2e.npm.conftest import new_repo, packument, repo_stats
from tests.support.fake_upstream import Behaviour, FakeUpstream
from tests.support.npm_clients import NpmClient, make_project, pack_tarball
from tests.support.server import WharfServer


def _upstream_paths(upstream: WharfServer) -> list[str]:
    """Paths the upstream was asked for by a proxy (user agent wharf/...), from its access log."""
    out = []
    for line in upstream.log_path.read_text(errors="replace").splitlines():
        if '"logger":"wharf.access"' in line:
            rec = json.loads(line)
            if rec.get("ua", "").startswith("wharf/"):
                out.append(rec["path"])
    return out


def _publish(client: NpmClient, tmp: Path, name: str, version: str, **kw) -> None:
    r = client.run("publish", cwd=make_project(tmp / "src", name, version, **kw))
    assert r.ok, r


def _installed(app: Path, name: str) -> str:
    return json.loads((app / "node_modules" / name / "package.json").read_text())["version"]


@pytest.fixture
def upstream(tmp_path) -> Iterator[WharfServer]:
    """A second Wharf (its own process and data) holding the packages the proxy mirrors."""
    with WharfServer(tmp_path / "upstream-data") as srv:
        yield srv


def _proxy(server: WharfServer, upstream: WharfServer, up_repo: str, **cfg) -> str:
    return new_repo(server, kind="proxy", upstream={"url": f"{upstream.url}/{up_repo}/", **cfg})


def test_proxy_installs_caches_and_survives_an_outage(sqlite_server, upstream, npm, tmp_path):
    up_repo = new_repo(upstream)
    up_dev = npm(f"{upstream.url}/{up_repo}/", upstream.token)
    _publish(up_dev, tmp_path, "leftpad-x", "1.0.0")
    _publish(up_dev, tmp_path, "@acme/uses-leftpad", "1.0.0", dependencies={"leftpad-x": "^1.0.0"})
    proxy = _proxy(sqlite_server, upstream, up_repo)
    reg = f"{sqlite_server.url}/{proxy}/"

    app = make_project(tmp_path / "app", "app", "0.0.1", dependencies={"@acme/uses-leftpad": "^1.0.0"},
                       extra={"private": True})
    r = npm(reg).run("install", cwd=app)
    assert r.ok, r
    assert _installed(app, "leftpad-x") == "1.0.0"
    lock = json.loads((app / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/leftpad-x"]["resolved"] == f"{reg}leftpad-x/-/leftpad-x-1.0.0.tgz"
    # the proxy serves its own tarball URLs and keeps the upstream's digests
    up_doc = packument(f"{upstream.url}/{up_repo}/", "leftpad-x").json()
    doc = packument(reg, "leftpad-x").json()
    assert doc["versions"]["1.0.0"]["dist"]["integrity"] == up_doc["versions"]["1.0.0"]["dist"]["integrity"]
    assert doc["versions"]["1.0.0"]["dist"]["tarball"].startswith(reg)
    assert repo_stats(sqlite_server, proxy)["stats"]["files"] == 2

    upstream.stop()
    # a lockfile install needs only the tarballs: cached forever
    app2 = make_project(tmp_path / "app2", "app", "0.0.1", dependencies={"@acme/uses-leftpad": "^1.0.0"},
                        extra={"private": True})
    (app2 / "package-lock.json").write_text((app / "package-lock.json").read_text())
    r = npm(reg).run("ci", cwd=app2)
    assert r.ok, r
    # without a lockfile npm reads the packuments: served stale while the upstream is down
    app3 = make_project(tmp_path / "app3", "app", "0.0.1", dependencies={"@acme/uses-leftpad": "^1.0.0"},
                        extra={"private": True})
    r = npm(reg).run("install", "--prefer-online", cwd=app3)
    assert r.ok, r
    assert _installed(app3, "@acme/uses-leftpad") == "1.0.0"
    # a package never fetched: a clear 502/504 naming the upstream, no hang
    r = httpx.get(f"{reg}never-seen", timeout=60)
    assert r.status_code in (502, 504) and upstream.url.split("//")[1] in r.json()["error"], r.text


def test_proxy_single_flight_and_revalidation(sqlite_server, upstream, npm, tmp_path):
    up_repo = new_repo(upstream)
    up_dev = npm(f"{upstream.url}/{up_repo}/", upstream.token)
    big = os.urandom(1024 * 1024).hex()  # ~2 MB of incompressible text: a download that takes a moment
    _publish(up_dev, tmp_path, "heavy", "1.0.0", files={"blob.txt": big})
    proxy = _proxy(sqlite_server, upstream, up_repo, index_ttl=1)
    reg = f"{sqlite_server.url}/{proxy}/"

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        docs = list(pool.map(lambda _i: packument(reg, "heavy"), range(8)))
    assert all(d.status_code == 200 for d in docs)
    paths = _upstream_paths(upstream)
    assert paths.count(f"/{up_repo}/heavy") == 1, paths
    url = docs[0].json()["versions"]["1.0.0"]["dist"]["tarball"]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda _i: httpx.get(url, timeout=60), range(8)))
    assert {r.status_code for r in bodies} == {200}
    want = docs[0].json()["versions"]["1.0.0"]["dist"]["integrity"]
    assert {"sha512-" + base64.b64encode(hashlib.sha512(r.content).digest()).decode() for r in bodies} == {want}
    paths = _upstream_paths(upstream)
    assert paths.count(f"/{up_repo}/heavy/-/heavy-1.0.0.tgz") == 1, paths

    # packuments are re-validated after the TTL (index_ttl=1): a new upstream version shows up
    _publish(up_dev, tmp_path, "heavy", "1.1.0")
    deadline = time.monotonic() + 30
    while "1.1.0" not in packument(reg, "heavy").json()["versions"]:
        assert time.monotonic() < deadline, "the proxy never re-validated the packument"
        time.sleep(0.3)
    app = make_project(tmp_path / "app", "app", "0.0.1", dependencies={"heavy": "^1.0.0"}, extra={"private": True})
    r = npm(reg).run("install", cwd=app)
    assert r.ok, r
    assert _installed(app, "heavy") == "1.1.0"


def test_proxy_refuses_a_tarball_whose_digest_lies(sqlite_server, npm, tmp_path):
    good = pack_tarball({"name": "liar", "version": "1.0.0"})
    evil = pack_tarball({"name": "liar", "version": "1.0.0", "scripts": {"postinstall": "echo pwned"}})
    with FakeUpstream() as fake:
        doc = {"name": "liar", "dist-tags": {"latest": "1.0.0"}, "versions": {"1.0.0": {
            "name": "liar", "version": "1.0.0",
            "dist": {"integrity": "sha512-" + base64.b64encode(hashlib.sha512(good).digest()).decode(),
                     "shasum": hashlib.sha1(good).hexdigest(), "tarball": f"{fake.url}/liar/-/liar-1.0.0.tgz"}}}}
        fake.set("/liar", Behaviour(body=json.dumps(doc).encode(), content_type="application/json"))
        fake.set("/liar/-/liar-1.0.0.tgz", Behaviour(body=evil))
        proxy = new_repo(sqlite_server, kind="proxy", upstream={"url": fake.url + "/", "breaker_threshold": 100})
        reg = f"{sqlite_server.url}/{proxy}/"
        r = httpx.get(f"{reg}liar/-/liar-1.0.0.tgz", timeout=30)
        assert r.status_code == 502 and "sha512" in r.json()["error"], r.text
        app = make_project(tmp_path / "app", "app", "0.0.1", dependencies={"liar": "1.0.0"}, extra={"private": True})
        r = npm(reg).run("install", cwd=app)
        assert not r.ok and not (app / "node_modules" / "liar").exists(), r
        assert repo_stats(sqlite_server, proxy)["stats"]["files"] == 0
        # once the upstream serves the right bytes, the same URL works and is cached
        fake.set("/liar/-/liar-1.0.0.tgz", Behaviour(body=good))
        r = httpx.get(f"{reg}liar/-/liar-1.0.0.tgz", timeout=30)
        assert r.content == good, r.text
        assert repo_stats(sqlite_server, proxy)["stats"]["files"] == 1


def test_group_guard_reserved_explain_and_publish(sqlite_server, upstream, npm, tmp_path):
    srv = sqlite_server
    up_repo = new_repo(upstream)
    up_dev = npm(f"{upstream.url}/{up_repo}/", upstream.token)
    _publish(up_dev, tmp_path / "up", "shared-name", "9.0.0")       # a public squatter on an internal name
    _publish(up_dev, tmp_path / "up", "@acme/secret", "9.0.0")      # ... and on the internal scope
    _publish(up_dev, tmp_path / "up", "public-only", "1.0.0")
    internal = new_repo(srv)
    dev = npm(f"{srv.url}/{internal}/", srv.token)
    _publish(dev, tmp_path / "in", "shared-name", "1.0.0")
    proxy = _proxy(srv, upstream, up_repo)
    group = new_repo(srv, kind="group", members=[internal, proxy], default_member=internal, reserved=["@acme/*"])
    reg = f"{srv.url}/{group}/"

    assert sorted(packument(reg, "shared-name").json()["versions"]) == ["1.0.0"]
    assert packument(reg, "@acme/secret").status_code == 404
    assert packument(f"{srv.url}/{proxy}/", "@acme/secret").status_code == 200  # the proxy alone has it
    assert sorted(packument(reg, "public-only").json()["versions"]) == ["1.0.0"]
    asked = _upstream_paths(upstream)
    assert f"/{up_repo}/public-only" in asked
    assert f"/{up_repo}/shared-name" not in asked  # the internal name never reached the upstream

    app = make_project(tmp_path / "app", "app", "0.0.1", dependencies={"shared-name": "*", "public-only": "1.0.0"},
                       extra={"private": True})
    r = npm(reg).run("install", cwd=app)
    assert r.ok, r
    assert _installed(app, "shared-name") == "1.0.0" and _installed(app, "public-only") == "1.0.0"

    r = srv.api("GET", f"/api/v1/repositories/{group}/explain/shared-name")
    assert r.status_code == 200, r.text
    by = {m["member"]: m for m in r.json()["members"]}
    assert by[internal]["used"] and by[internal]["versions_served"] == ["1.0.0"]
    assert not by[proxy]["used"] and "guard" in by[proxy]["reason"]

    # publishing to the group lands in its default member; dist-tags through the group too
    r = npm(reg, srv.token).run("publish", cwd=make_project(tmp_path / "g", "@acme/new-thing", "1.0.0"))
    assert r.ok, r
    assert packument(f"{srv.url}/{internal}/", "@acme/new-thing").status_code == 200
    assert packument(reg, "@acme/new-thing").json()["versions"]["1.0.0"]["dist"]["tarball"].startswith(reg)


def test_group_without_guard_merges_versions_and_tags(sqlite_server, upstream, npm, tmp_path):
    srv = sqlite_server
    up_repo = new_repo(upstream)
    up_dev = npm(f"{upstream.url}/{up_repo}/", upstream.token)
    _publish(up_dev, tmp_path / "up", "merged", "2.0.0", files={"from.txt": "upstream"})
    _publish(up_dev, tmp_path / "up", "merged", "3.0.0")
    hosted = new_repo(srv)
    dev = npm(f"{srv.url}/{hosted}/", srv.token)
    _publish(dev, tmp_path / "in", "merged", "1.0.0")
    _publish(dev, tmp_path / "in", "merged", "2.0.0", files={"from.txt": "hosted"})
    assert dev.run("dist-tag", "add", "merged@1.0.0", "lts").ok
    proxy = _proxy(srv, upstream, up_repo)
    group = new_repo(srv, kind="group", members=[hosted, proxy], guard=False)
    reg = f"{srv.url}/{group}/"
    doc = packument(reg, "merged").json()
    assert sorted(doc["versions"]) == ["1.0.0", "2.0.0", "3.0.0"]
    hosted_doc = packument(f"{srv.url}/{hosted}/", "merged").json()
    assert doc["versions"]["2.0.0"]["dist"]["integrity"] == hosted_doc["versions"]["2.0.0"]["dist"]["integrity"]
    assert doc["dist-tags"] == {"latest": "3.0.0", "lts": "1.0.0"}
    app = make_project(tmp_path / "app", "app", "0.0.1", dependencies={"merged": "2.0.0"}, extra={"private": True})
    r = npm(reg).run("install", cwd=app)
    assert r.ok, r
    assert (app / "node_modules" / "merged" / "from.txt").read_text() == "hosted"


def test_upstream_preset_npm(tmp_path):
    """Preset "npm": the URL npm itself uses by default; WHARF_PRESET_NPM overrides it (never a public host here)."""
    fake = f"http://127.0.0.1:9/{unique('preset')}/"
    with WharfServer(tmp_path / "data", env={"WHARF_PRESET_NPM": fake}) as srv:
        name = new_repo(srv, kind="proxy", upstream={"url": "npm"})
        assert repo_stats(srv, name)["config"]["upstream"]["url"] == fake
