"""Cargo proxy and group repositories with the real cargo; the upstream is a second Wharf on loopback."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Iterator

import httpx
import pytest

from tests.conftest import unique
from tests.support.cargo_client import Cargo, create_cargo_repo, index_url, write_crate
from tests.support.cargo_crates import crate_bytes, metadata, publish_body
from tests.support.fake_upstream import Behaviour, FakeUpstream
from tests.support.server import WharfServer
from wharf.formats.cargo.parse import index_path
from wharf.formats.cargo.proxy import expand_dl


def lock_versions(project) -> dict[str, str]:
    return dict(re.findall(r'\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"',
                           (project / "Cargo.lock").read_text()))


def access(server: WharfServer, path_part: str) -> list[int]:
    """Statuses of the requests a server answered whose path contains ``path_part`` (its JSON access log)."""
    out = []
    for line in server.log_path.read_text(errors="replace").splitlines():
        if '"logger":"wharf.access"' in line:
            entry = json.loads(line)
            if path_part in entry.get("path", ""):
                out.append(entry.get("status"))
    return out


def publish_raw(server: WharfServer, repo: str, name: str, version: str) -> None:
    """Publish by hand; the .crate says where it was published (so the same version differs between servers)."""
    crate = crate_bytes(name, version, files={"ORIGIN": f"{server.url}/{repo}".encode()})
    r = httpx.put(f"{server.url}/{repo}/api/v1/crates/new", headers={"Authorization": server.token},
                  content=publish_body(metadata(name, version, description=f"{name} {version}"), crate))
    assert r.status_code == 200, r.text


@pytest.fixture
def upstream(tmp_path_factory) -> Iterator[WharfServer]:
    data = tmp_path_factory.mktemp("cargo-upstream") / "data"
    with WharfServer(data) as srv:
        yield srv


def test_proxy_builds_revalidates_and_serves_from_cache_when_upstream_is_down(sqlite_server, upstream, toolchain,
                                                                             tmp_path):
    server = sqlite_server
    up = unique("up")
    create_cargo_repo(upstream, up)
    pub = Cargo(tmp_path / "publisher", {"up": index_url(upstream.url, up)}, {"up": upstream.token})
    base = unique("pbase").replace("-", "_")
    for version in ("0.1.0", "0.2.0"):
        res = pub.publish(write_crate(tmp_path / "src", base, version, registry="up"), "up")
        assert res.ok, res
    proxy = unique("cproxy")
    # index_ttl 0: every index request is re-validated upstream (conditionally)
    create_cargo_repo(server, proxy, "proxy", upstream={"url": index_url(upstream.url, up), "index_ttl": 0})
    config = httpx.get(f"{server.url}/{proxy}/index/config.json").json()
    assert config == {"dl": f"{server.url}/{proxy}/api/v1/crates", "api": f"{server.url}/{proxy}"}
    app = write_crate(tmp_path / "src", unique("app").replace("-", "_"), "0.1.0", deps={base: ">=0.1"})
    cargo = Cargo(tmp_path / "c1", {"wharf": index_url(server.url, proxy)})
    res = cargo.build(app)
    assert res.ok, res
    assert lock_versions(app)[base] == "0.2.0"
    stats = server.api("GET", f"/api/v1/repositories/{proxy}").json()["stats"]
    assert stats["files"] == 1  # the .crate cargo downloaded is cached (and recorded with its origin)
    # a new upstream version shows up (the index file is re-validated), the unchanged one is a 304 upstream
    res = pub.publish(write_crate(tmp_path / "src", base, "0.3.0", registry="up"), "up")
    assert res.ok, res
    assert cargo.run("update", cwd=app).ok
    assert lock_versions(app)[base] == "0.3.0"
    assert cargo.build(app).ok
    httpx.get(f"{server.url}/{proxy}/index/{base[:2]}/{base[2:4]}/{base}")
    assert 304 in access(upstream, f"/{up}/index/{base[:2]}/")
    # the upstream goes away: a fresh cargo home and lockfile still build, from what the proxy cached
    upstream.stop()
    (app / "Cargo.lock").unlink()
    fresh = Cargo(tmp_path / "c2", {"wharf": index_url(server.url, proxy)})
    res = fresh.build(app)
    assert res.ok, res
    assert lock_versions(app)[base] == "0.3.0"
    # what was never fetched gives a clear 502 naming the upstream, not a hang
    r = httpx.get(f"{server.url}/{proxy}/api/v1/crates/{base}/0.1.0/download")
    assert r.status_code in (502, 504) and upstream.url in r.json()["errors"][0]["detail"]


def _fake_registry(fake: FakeUpstream, dl: str, crates: dict[str, tuple[bytes, bytes]]) -> None:
    """A sparse registry on the fake upstream: ``crates``: name -> (bytes its index line promises, bytes served at
    the dl template's URL for version 1.0.0)."""
    fake.set("/index/config.json", Behaviour(body=json.dumps({"dl": dl, "api": fake.url}).encode(),
                                             content_type="application/json"))
    for name, (promised, served) in crates.items():
        line = {"name": name, "vers": "1.0.0", "deps": [], "cksum": hashlib.sha256(promised).hexdigest(),
                "features": {}, "yanked": False, "links": None}
        fake.set(f"/index/{index_path(name)}", Behaviour(body=json.dumps(line).encode() + b"\n",
                                                         content_type="text/plain", etag='"v1"'))
        fake.set(expand_dl(dl, name, "1.0.0", line["cksum"]).removeprefix(fake.url), Behaviour(body=served))


def test_proxy_follows_dl_markers_and_refuses_bytes_that_do_not_match_the_index(sqlite_server, tmp_path):
    """The upstream's config.json dl template with every marker is followed; a .crate whose bytes differ from the
    index cksum is refused with a 502, nothing is cached, and the client never gets a complete file."""
    server = sqlite_server
    good, promised, bad = crate_bytes("Marked", "1.0.0"), crate_bytes("liar", "1.0.0"), crate_bytes("liar", "6.6.6")
    with FakeUpstream() as fake:
        dl = fake.url + "/dl/{prefix}/{lowerprefix}/{crate}/{version}/{sha256-checksum}/x.crate"
        _fake_registry(fake, dl, {"Marked": (good, good), "liar": (promised, bad)})
        proxy = unique("cproxy")
        create_cargo_repo(server, proxy, "proxy", upstream={"url": f"{fake.url}/index/"})
        r = httpx.get(f"{server.url}/{proxy}/api/v1/crates/Marked/1.0.0/download")
        assert r.status_code == 200 and r.content == good
        assert fake.count(f"/dl/Ma/rk/ma/rk/Marked/1.0.0/{hashlib.sha256(good).hexdigest()}/x.crate") == 1
        r = httpx.get(f"{server.url}/{proxy}/api/v1/crates/liar/1.0.0/download")
        assert r.status_code == 502 and "nothing was cached" in r.json()["errors"][0]["detail"], r.text
        stats = server.api("GET", f"/api/v1/repositories/{proxy}").json()["stats"]
        assert stats["files"] == 1  # Marked only
        # served from the cache from now on, even with the upstream gone
        fake.stop()
        r = httpx.get(f"{server.url}/{proxy}/api/v1/crates/Marked/1.0.0/download")
        assert r.status_code == 200 and r.content == good


def test_proxy_refuses_an_unreadable_upstream_index_file(sqlite_server):
    server = sqlite_server
    with FakeUpstream() as fake:
        _fake_registry(fake, fake.url + "/dl", {})
        fake.set("/index/ga/rb/garbage", Behaviour(body=b"{not json\n", content_type="text/plain"))
        fake.set("/index/ot/he/other", Behaviour(body=json.dumps({"name": "serde", "vers": "1.0.0",
                                                                  "cksum": "0" * 64}).encode()))
        proxy = unique("cproxy")
        create_cargo_repo(server, proxy, "proxy", upstream={"url": f"{fake.url}/index/"})
        r = httpx.get(f"{server.url}/{proxy}/index/ga/rb/garbage")
        assert r.status_code == 502 and "not JSON" in r.json()["errors"][0]["detail"]
        r = httpx.get(f"{server.url}/{proxy}/index/ot/he/other")
        assert r.status_code == 502 and "lists the crate `serde`" in r.json()["errors"][0]["detail"]
        assert httpx.get(f"{server.url}/{proxy}/index/mi/ss/missing").status_code == 404


def test_group_merges_guards_and_routes_downloads(sqlite_server, upstream, toolchain, tmp_path):
    server = sqlite_server
    up = unique("up")
    create_cargo_repo(upstream, up)
    shared, public_only, reserved = (unique(n).replace("-", "_") for n in ("shared", "pubonly", "acmeres"))
    for name, version in ((shared, "9.0.0"), (public_only, "1.0.0"), (public_only, "1.1.0"), (reserved, "1.0.0")):
        publish_raw(upstream, up, name, version)
    internal, remote, group = unique("internal"), unique("remote"), unique("group")
    create_cargo_repo(server, internal)
    # index_ttl 0: whenever the group consults the proxy, the upstream is asked
    create_cargo_repo(server, remote, "proxy", upstream={"url": index_url(upstream.url, up), "index_ttl": 0})
    create_cargo_repo(server, group, "group", members=[internal, remote], default_member=internal,
                      reserved=["acmeres*"])
    # publishing through the group lands in its default member
    cargo = Cargo(tmp_path / "c", {"wharf": index_url(server.url, group)}, {"wharf": server.token})
    res = cargo.publish(write_crate(tmp_path / "src", shared, "1.0.0"))
    assert res.ok, res
    asked = len(access(upstream, f"/{up}/index/{shared[:2]}/{shared[2:4]}/{shared}"))  # before it was internal
    assert server.api("GET", f"/api/v1/repositories/{internal}").json()["stats"]["files"] == 1
    # guard: the internal name no longer resolves from the proxy (upstream's 9.0.0 is hidden), nor is it asked for
    lines = httpx.get(f"{server.url}/{group}/index/{shared[:2]}/{shared[2:4]}/{shared}").text.splitlines()
    assert [json.loads(x)["vers"] for x in lines] == ["1.0.0"]
    assert len(access(upstream, f"/{up}/index/{shared[:2]}/{shared[2:4]}/{shared}")) == asked
    # a name only the proxy has comes from it; cargo builds against the group with both
    app = write_crate(tmp_path / "src", unique("app").replace("-", "_"), "0.1.0",
                      deps={shared: ">=1", public_only: "1"})
    res = cargo.build(app)
    assert res.ok, res
    versions = lock_versions(app)
    assert versions[shared] == "1.0.0" and versions[public_only] == "1.1.0"
    # reserved pattern: never from proxies
    r = httpx.get(f"{server.url}/{group}/index/{reserved[:2]}/{reserved[2:4]}/{reserved}")
    assert r.status_code == 404
    # explain says where each version comes from and what was hidden why
    doc = server.api("GET", f"/api/v1/repositories/{group}/explain/{shared}").json()
    by_member = {m["member"]: m for m in doc["members"]}
    assert by_member[internal]["versions_served"] == ["1.0.0"] and by_member[internal]["used"]
    assert not by_member[remote]["used"] and "guard" in by_member[remote]["reason"]
    doc = server.api("GET", f"/api/v1/repositories/{group}/explain/{public_only}").json()
    assert {m["member"]: m["versions_served"] for m in doc["members"]} == {internal: [], remote: ["1.0.0", "1.1.0"]}
    doc = server.api("GET", f"/api/v1/repositories/{group}/explain/{reserved}").json()
    assert "reserved" in {m["member"]: m for m in doc["members"]}[remote]["reason"]
    # search through the group sees the hosted crate and the proxied one cargo downloaded
    res = cargo.search(shared)
    assert res.ok and f'{shared} = "1.0.0"' in res.stdout, res
    # without the guard both members are consulted: the first member listing a version wins, and the download
    # comes from the member whose line was served
    open_group = unique("open")
    create_cargo_repo(server, open_group, "group", members=[internal, remote], guard=False)
    publish_raw(upstream, up, public_only, "2.0.0")
    publish_raw(server, internal, public_only, "2.0.0")
    lines = httpx.get(f"{server.url}/{open_group}/index/{public_only[:2]}/{public_only[2:4]}/{public_only}").text
    assert sorted(json.loads(x)["vers"] for x in lines.splitlines()) == ["1.0.0", "1.1.0", "2.0.0"]
    r = httpx.get(f"{server.url}/{open_group}/api/v1/crates/{public_only}/2.0.0/download")
    local = httpx.get(f"{server.url}/{internal}/api/v1/crates/{public_only}/2.0.0/download")
    remote_bytes = httpx.get(f"{upstream.url}/{up}/api/v1/crates/{public_only}/2.0.0/download")
    assert r.status_code == 200 and r.content == local.content != remote_bytes.content
    r = httpx.get(f"{server.url}/{open_group}/api/v1/crates/{public_only}/1.1.0/download")
    assert r.content == httpx.get(f"{upstream.url}/{up}/api/v1/crates/{public_only}/1.1.0/download").content
    # the guarded group now hides the proxy's versions of that name
    lines = httpx.get(f"{server.url}/{group}/index/{public_only[:2]}/{public_only[2:4]}/{public_only}").text
    assert [json.loads(x)["vers"] for x in lines.splitlines()] == ["2.0.0"]
