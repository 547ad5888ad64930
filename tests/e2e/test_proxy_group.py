"""Proxy and group repositories with the real clients; the upstream is a second Wharf on loopback."""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.conftest import unique
from tests.support import artifacts
from tests.support.clients import pip_install, twine_upload, uv_pip_install
from tests.support.server import WharfServer


def _wheel(d: Path, name: str, version: str, **kw) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return artifacts.make_wheel(d, name, version, **kw)


def _installed(target: Path, dist: str, version: str) -> bool:
    return (target / f"{dist}-{version}.dist-info").is_dir()


def _create(srv: WharfServer, name: str, kind: str, **config) -> dict:
    r = srv.api("POST", "/api/v1/repositories", json={"name": name, "format": "python", "kind": kind, "config": config})
    assert r.status_code == 201, r.text
    return r.json()


def _upstream_requests(upstream: WharfServer, path_part: str) -> int:
    """Requests the upstream served whose path contains ``path_part`` (from its JSON access log)."""
    n = 0
    for line in upstream.log_path.read_text(errors="replace").splitlines():
        if '"logger":"wharf.access"' not in line:
            continue
        if path_part in json.loads(line).get("path", ""):
            n += 1
    return n


@pytest.fixture(scope="module")
def upstream(tmp_path_factory) -> Iterator[WharfServer]:
    data = tmp_path_factory.mktemp("upstream") / "data"
    with WharfServer(data) as srv:
        srv.create_repo("up")
        yield srv


@pytest.fixture
def up_repo(upstream, tmp_path) -> str:
    """A fresh hosted repository on the upstream; returns its simple URL."""
    name = unique("up")
    upstream.create_repo(name)
    return name


def _publish(upstream: WharfServer, repo: str, files: list[Path], tmp: Path) -> None:
    res = twine_upload(tmp, f"{upstream.url}/{repo}/legacy/", files, token=upstream.token)
    assert res.ok, res


def test_install_through_proxy_then_from_cache_when_upstream_is_down(server, tmp_path, tmp_path_factory):
    # an upstream of our own, so it can be stopped
    with WharfServer(tmp_path_factory.mktemp("up-stoppable") / "data") as up:
        up.create_repo("up")
        dist = tmp_path / "dist"
        files = [_wheel(dist, "cached-dep", "1.0"), _wheel(dist, "cached-app", "2.0", requires_dist=["cached-dep>=1"])]
        _publish(up, "up", files, tmp_path)
        proxy = unique("remote")
        _create(server, proxy, "proxy", upstream={"url": f"{up.url}/up/simple/", "index_ttl": 0})
        index = f"{server.url}/{proxy}/simple/"
        res = pip_install(tmp_path, index, "cached-app", target=tmp_path / "pip1")
        assert res.ok, res
        assert _installed(tmp_path / "pip1", "cached_app", "2.0") and _installed(tmp_path / "pip1", "cached_dep", "1.0")
        page = httpx.get(f"{index}cached-app/").text
        assert str(up.port) not in page and "../../files/" in page  # links point at Wharf, never the upstream
        # fetched files are recorded like uploads, with their origin
        pkg = server.api("GET", f"/api/v1/repositories/{proxy}/packages/cached-app").json()
        assert [f["filename"] for f in pkg["files"]] == [files[1].name]
        assert pkg["files"][0]["uploaded_by"].startswith("proxy:")
    # upstream stopped: index TTL is 0, so every page request tries the upstream and falls back to the cache
    res = pip_install(tmp_path, index, "cached-app", target=tmp_path / "pip2")
    assert res.ok, res
    assert _installed(tmp_path / "pip2", "cached_app", "2.0")
    res = uv_pip_install(tmp_path, index, "cached-app", target=tmp_path / "uv")
    assert res.ok, res
    # a project never fetched gives a clear error naming the upstream, not a hang
    r = httpx.get(f"{index}never-seen/", timeout=30)
    assert r.status_code in (502, 504) and "upstream" in r.json()["error"]


def test_single_flight_one_upstream_request_per_miss(server, upstream, up_repo, tmp_path):
    big = _wheel(tmp_path / "d", "flighty", "1.0", extra_files={"flighty/blob.bin": b"x" * (2 * 1024 * 1024)})
    _publish(upstream, up_repo, [big], tmp_path)
    proxy = unique("remote")
    _create(server, proxy, "proxy", upstream={"url": f"{upstream.url}/{up_repo}/simple/"})
    page_url = f"{server.url}/{proxy}/simple/flighty/"
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        pages = list(pool.map(lambda _: httpx.get(page_url, timeout=60), range(16)))
    assert all(p.status_code == 200 for p in pages)
    assert _upstream_requests(upstream, f"/{up_repo}/simple/flighty/") == 1
    file_url = httpx.URL(page_url).join(pages[0].text.split('href="')[1].split("#")[0])
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        bodies = list(pool.map(lambda _: httpx.get(file_url, timeout=60), range(16)))
    assert all(b.status_code == 200 and b.content == big.read_bytes() for b in bodies)
    assert _upstream_requests(upstream, f"/{up_repo}/files/") == 1


@pytest.mark.parametrize("guard", [True, False])
def test_dependency_confusion_guard(server, upstream, up_repo, tmp_path, guard):
    # the attacker publishes acme-utils 99.0 on the public upstream; the company has acme-utils 1.0 internally
    evil = _wheel(tmp_path / "evil", "acme-utils", "99.0", summary="malicious")
    _publish(upstream, up_repo, [evil], tmp_path)
    internal, proxy, group = unique("internal"), unique("remote"), unique("py")
    server.create_repo(internal)
    good = _wheel(tmp_path / "good", "acme-utils", "1.0")
    _publish(server, internal, [good], tmp_path)
    _create(server, proxy, "proxy", upstream={"url": f"{upstream.url}/{up_repo}/simple/"})
    _create(server, group, "group", members=[internal, proxy], guard=guard)
    res = pip_install(tmp_path, f"{server.url}/{group}/simple/", "acme-utils", target=tmp_path / "t")
    assert res.ok, res
    if guard:
        assert _installed(tmp_path / "t", "acme_utils", "1.0")
        # the internal name never reached the upstream
        assert _upstream_requests(upstream, f"/{up_repo}/simple/acme-utils/") == 0
        why = server.api("GET", f"/api/v1/repositories/{group}/explain/Acme_Utils").json()
        by = {m["member"]: m for m in why["members"]}
        assert by[internal]["used"] and by[internal]["versions"] == ["1.0"]
        assert not by[proxy]["used"] and "guard" in by[proxy]["reason"] and internal in by[proxy]["reason"]
    else:
        assert _installed(tmp_path / "t", "acme_utils", "99.0")  # what the guard prevents


def test_reserved_patterns_never_resolve_from_proxies(server, upstream, up_repo, tmp_path):
    _publish(upstream, up_repo, [_wheel(tmp_path / "e", "acme-secret", "5.0"), _wheel(tmp_path / "e", "requests-ok", "1.0")],
             tmp_path)
    proxy, group = unique("remote"), unique("py")
    _create(server, proxy, "proxy", upstream={"url": f"{upstream.url}/{up_repo}/simple/"})
    _create(server, group, "group", members=[proxy], reserved=["acme-*"])
    assert httpx.get(f"{server.url}/{group}/simple/acme-secret/").status_code == 404
    assert httpx.get(f"{server.url}/{group}/simple/requests-ok/").status_code == 200
    why = server.api("GET", f"/api/v1/repositories/{group}/explain/acme-secret").json()
    assert "reserved" in why["members"][0]["reason"]


def test_group_merges_members_and_serves_files_from_the_member_that_listed_them(server, upstream, up_repo, tmp_path):
    a, b, group = unique("a"), unique("b"), unique("g")
    server.create_repo(a)
    server.create_repo(b)
    _publish(server, a, [_wheel(tmp_path / "a", "merged", "1.0")], tmp_path)
    _publish(server, b, [_wheel(tmp_path / "b", "merged", "2.0"), _wheel(tmp_path / "b", "only-b", "1.0")], tmp_path)
    _create(server, group, "group", members=[a, b], default_member=a)
    doc = httpx.get(f"{server.url}/{group}/simple/merged/",
                    headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert doc["versions"] == ["1.0", "2.0"] and len(doc["files"]) == 2
    root = httpx.get(f"{server.url}/{group}/simple/").text
    assert 'href="merged/"' in root and 'href="only-b/"' in root
    res = uv_pip_install(tmp_path, f"{server.url}/{group}/simple/", "merged==2.0", "only-b", target=tmp_path / "t")
    assert res.ok, res
    # a new upload to a member shows through the group at once
    _publish(server, b, [_wheel(tmp_path / "b3", "merged", "3.0")], tmp_path)
    doc = httpx.get(f"{server.url}/{group}/simple/merged/",
                    headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    assert "3.0" in doc["versions"]
    # uploads to the group go to its default member; groups without one are read-only
    res = twine_upload(tmp_path, f"{server.url}/{group}/legacy/", [_wheel(tmp_path / "c", "via-group", "1.0")],
                       token=server.token)
    assert res.ok, res
    assert server.api("GET", f"/api/v1/repositories/{a}/packages/via-group").status_code == 200
    other = unique("g")
    _create(server, other, "group", members=[b])
    res = twine_upload(tmp_path, f"{server.url}/{other}/legacy/", [_wheel(tmp_path / "d", "nope", "1.0")],
                       token=server.token, extra_args=["--verbose"])
    assert not res.ok and "read-only" in res.output


def test_group_and_proxy_settings_are_validated(server):
    r = server.api("POST", "/api/v1/repositories", json={"name": unique("g"), "format": "python", "kind": "group",
                                                         "config": {"members": ["does-not-exist"]}})
    assert r.status_code == 400 and "does not exist" in r.json()["error"]
    r = server.api("POST", "/api/v1/repositories", json={"name": unique("p"), "format": "python", "kind": "proxy",
                                                         "config": {"upstream": {"url": "ftp://x"}}})
    assert r.status_code == 400 and "upstream" in r.json()["error"]
    member = unique("m")
    server.create_repo(member)
    g = unique("g")
    _create(server, g, "group", members=[member])
    r = server.api("DELETE", f"/api/v1/repositories/{member}")
    assert r.status_code == 409 and g in r.json()["error"]
    r = server.api("PATCH", f"/api/v1/repositories/{g}", json={"config": {"members": [member, g]}})
    assert r.status_code == 400


def test_private_members_and_upstream_changes_are_guarded(server, upstream, up_repo):
    member, group, proxy = unique("m"), unique("g"), unique("p")
    server.create_repo(member)
    _create(server, group, "group", members=[member])
    # a member of a public group cannot turn private (the group would keep serving it to anyone)
    r = server.api("PATCH", f"/api/v1/repositories/{member}", json={"private": True})
    assert r.status_code == 409 and group in r.json()["error"]
    # changing where a proxy fetches from needs server admin, not just admin of the repository
    _create(server, proxy, "proxy", upstream={"url": f"{upstream.url}/{up_repo}/simple/"})
    repo_admin = server.create_token("proxy-admin", {proxy: "admin"})
    r = server.api("PATCH", f"/api/v1/repositories/{proxy}", token=repo_admin,
                   json={"config": {"upstream": {"url": "http://127.0.0.1:9/internal/"}}})
    assert r.status_code == 403
    r = server.api("PATCH", f"/api/v1/repositories/{proxy}", token=repo_admin, json={"config": {"description": "ok"}})
    assert r.status_code == 200, r.text


def test_short_lived_token_cannot_mint_a_longer_lived_one(server):
    from datetime import datetime, timezone
    repo = unique("r")
    server.create_repo(repo)
    parent = server.create_token("parent", {repo: "admin"}, expires_in_days=1)
    r = server.api("POST", "/api/v1/tokens", token=parent,
                   json={"name": "child", "scopes": [{"repository": repo, "actions": ["read"]}]})
    assert r.status_code == 201, r.text
    child_exp = datetime.fromisoformat(r.json()["expires_at"].replace("Z", "+00:00"))
    if child_exp.tzinfo is None:
        child_exp = child_exp.replace(tzinfo=timezone.utc)
    assert (child_exp - datetime.now(timezone.utc)).total_seconds() < 86400 + 60


def test_group_redirects_to_normalized_names(server, upstream, up_repo, tmp_path):
    _publish(upstream, up_repo, [_wheel(tmp_path / "u", "Foo_Bar", "1.0")], tmp_path)
    proxy, group = unique("p"), unique("g")
    _create(server, proxy, "proxy", upstream={"url": f"{upstream.url}/{up_repo}/simple/"})
    _create(server, group, "group", members=[proxy])
    r = httpx.get(f"{server.url}/{group}/simple/Foo_Bar/")
    assert r.status_code == 301 and r.headers["location"] == f"/{group}/simple/foo-bar/"
    assert httpx.get(f"{server.url}/{group}/simple/foo-bar/").status_code == 200
    assert httpx.get(f"{server.url}/{group}/simple/../x/").status_code == 404
