"""Maven proxy (upstream = a second Wharf on loopback, then stopped) and group (guard, reserved patterns)."""

from __future__ import annotations

import hashlib
import json

import httpx

from tests.conftest import unique
from tests.support.fake_upstream import Behaviour, FakeUpstream
from tests.support.maven_client import MavenClient
from tests.support.server import WharfServer

from .conftest import app_project, create_repo, lib_project


def _gid() -> str:
    return "org.acme." + unique("g").replace("-", "")


def _upstream_hits(up: WharfServer, part: str, *, suffix: bool = False) -> int:
    """GET/HEAD requests the upstream served whose path contains (or, with ``suffix``, ends with) ``part``."""
    n = 0
    for line in up.log_path.read_text(errors="replace").splitlines():
        if '"logger":"wharf.access"' not in line:
            continue
        entry = json.loads(line)
        path = entry.get("path", "")
        if entry.get("method") in ("GET", "HEAD") and (path.endswith(part) if suffix else part in path):
            n += 1
    return n


def test_resolve_through_proxy_then_from_cache_when_upstream_is_down(sqlite_server, tmp_path, tmp_path_factory):
    server = sqlite_server
    gid, aid = _gid(), "remote-lib"
    with WharfServer(tmp_path_factory.mktemp("mvn-up") / "data") as up:
        create_repo(up, "up")
        deployer = MavenClient(tmp_path / "deployer", f"{up.url}/up/", username="ci", password=up.token)
        lib = lib_project(tmp_path / "lib", gid, aid, "1.0", f"{up.url}/up/")
        assert (res := deployer.run(lib, "deploy")).ok, res
        proxy = unique("central")
        create_repo(server, proxy, "proxy", upstream={"url": f"{up.url}/up/", "index_ttl": 0})
        client = MavenClient(tmp_path / "client", f"{server.url}/{proxy}/")
        app = app_project(tmp_path / "app", [(gid, aid, "1.0")])
        assert (res := client.run(app, "package")).ok, res
        jar = client.local_file(gid, aid, "1.0", f"{aid}-1.0.jar")
        assert jar.read_bytes() == (lib / "target" / f"{aid}-1.0.jar").read_bytes()
        path = f"{gid.replace('.', '/')}/{aid}"
        meta = httpx.get(f"{server.url}/{proxy}/{path}/maven-metadata.xml")
        assert meta.status_code == 200 and "<release>1.0</release>" in meta.text
        jar_fetches = _upstream_hits(up, f"{aid}-1.0.jar", suffix=True)
        # the proxy verified the download against the upstream's checksum file
        assert _upstream_hits(up, f"{aid}-1.0.jar.sha256", suffix=True) == 1
    # upstream stopped: a fresh local repository resolves everything from the proxy's cache
    client.fresh_local_repo()
    assert not jar.exists()
    assert (res := client.run(app, "package")).ok, res
    assert jar.read_bytes() == (lib / "target" / f"{aid}-1.0.jar").read_bytes()
    assert jar_fetches == 1
    # metadata past its TTL is served stale; the checksums served match the cached bytes
    stale = httpx.get(f"{server.url}/{proxy}/{path}/maven-metadata.xml")
    assert stale.status_code == 200 and stale.text == meta.text
    sha1 = httpx.get(f"{server.url}/{proxy}/{path}/1.0/{aid}-1.0.jar.sha1").text
    assert sha1 == hashlib.sha1(jar.read_bytes()).hexdigest()
    # never fetched and the upstream is down: a clear 502, not a hang
    r = httpx.get(f"{server.url}/{proxy}/{path}/2.0/{aid}-2.0.jar")
    assert r.status_code in (502, 504) and "upstream" in r.json()["error"]


def test_proxy_refuses_a_download_that_does_not_match_the_upstream_checksum(sqlite_server):
    server = sqlite_server
    blobs_before = sum(1 for _ in (server.data / "blobs").rglob("*") if _.is_file())
    with FakeUpstream() as fake:
        good = b"PK\x05\x06" + b"\x00" * 18  # an empty zip
        fake.set("/com/evil/lib/1.0/lib-1.0.jar", Behaviour("body", body=good + b"tampered"))
        fake.set("/com/evil/lib/1.0/lib-1.0.jar.sha256", Behaviour("body", body=hashlib.sha256(good).hexdigest().encode()))
        proxy = unique("fakeproxy")
        create_repo(server, proxy, "proxy", upstream={"url": f"{fake.url}/"})
        r = httpx.get(f"{server.url}/{proxy}/com/evil/lib/1.0/lib-1.0.jar")
        assert r.status_code == 502 and "sha256" in r.json()["error"]
        # no checksum file, but a checksum header that contradicts the bytes: refused as well
        fake.set("/com/evil/lib/2.0/lib-2.0.jar", Behaviour("body", body=good, headers={"X-Checksum-Sha1": "0" * 40}))
        r = httpx.get(f"{server.url}/{proxy}/com/evil/lib/2.0/lib-2.0.jar")
        assert r.status_code == 502 and "sha1" in r.json()["error"]
        # the honest file with its checksum is cached
        fake.set("/com/evil/lib/1.0/lib-1.0.jar", Behaviour("body", body=good))
        r = httpx.get(f"{server.url}/{proxy}/com/evil/lib/1.0/lib-1.0.jar")
        assert r.status_code == 200 and r.content == good
    assert sum(1 for _ in (server.data / "blobs").rglob("*") if _.is_file()) == blobs_before + 1


def test_group_guard_and_reserved_patterns(sqlite_server, tmp_path, tmp_path_factory):
    server = sqlite_server
    internal, reserved_gid, public_gid = _gid(), "org.reserved." + unique("r").replace("-", ""), _gid()
    with WharfServer(tmp_path_factory.mktemp("mvn-public") / "data") as up:
        create_repo(up, "public")
        publisher = MavenClient(tmp_path / "attacker", f"{up.url}/public/", username="x", password=up.token)
        # the public upstream has an "internal" name at a higher version, a reserved name, and a real public library
        for gid, aid, version in ((internal, "core", "9.9"), (reserved_gid, "tool", "1.0"), (public_gid, "util", "2.0")):
            lib = lib_project(tmp_path / f"pub-{aid}", gid, aid, version, f"{up.url}/public/", text=f"public {aid}")
            assert (res := publisher.run(lib, "deploy")).ok, res
        hosted, proxy, group = unique("internal"), unique("pubproxy"), unique("all")
        create_repo(server, hosted)
        create_repo(server, proxy, "proxy", upstream={"url": f"{up.url}/public/"})
        create_repo(server, group, "group", members=[hosted, proxy], reserved=["org.reserved.*"])
        token = server.create_token(unique("ci"), {hosted: "write"})
        ours = MavenClient(tmp_path / "ours", f"{server.url}/{hosted}/", username="ci", password=token)
        lib = lib_project(tmp_path / "core-1.0", internal, "core", "1.0", f"{server.url}/{hosted}/", text="internal")
        assert (res := ours.run(lib, "deploy")).ok, res

        g = f"{server.url}/{group}"
        before = (_upstream_hits(up, f"{internal.replace('.', '/')}/core"), _upstream_hits(up, reserved_gid.replace('.', '/')))
        meta = httpx.get(f"{g}/{internal.replace('.', '/')}/core/maven-metadata.xml").text
        assert "<version>1.0</version>" in meta and "9.9" not in meta  # guard: the upstream's versions are hidden
        assert httpx.get(f"{g}/{internal.replace('.', '/')}/core/9.9/core-9.9.jar").status_code == 404
        assert httpx.get(f"{g}/{reserved_gid.replace('.', '/')}/tool/maven-metadata.xml").status_code == 404
        assert httpx.get(f"{g}/{reserved_gid.replace('.', '/')}/tool/1.0/tool-1.0.pom").status_code == 404
        # neither the internal nor the reserved name went out to the upstream (beyond the publisher's own deploys)
        assert (_upstream_hits(up, f"{internal.replace('.', '/')}/core"),
                _upstream_hits(up, reserved_gid.replace('.', '/'))) == before

        # mvn through the group: the internal library from hosted, the public one through the proxy
        client = MavenClient(tmp_path / "client", f"{g}/")
        app = app_project(tmp_path / "app", [(internal, "core", "1.0"), (public_gid, "util", "2.0")])
        assert (res := client.run(app, "package")).ok, res
        assert client.local_file(internal, "core", "1.0", "core-1.0.jar").read_bytes() == \
            (lib / "target" / "core-1.0.jar").read_bytes()
        assert client.local_file(public_gid, "util", "2.0", "util-2.0.jar").is_file()
        # asking for the upstream's higher "internal" version fails instead of resolving the impostor
        bad = app_project(tmp_path / "bad", [(internal, "core", "9.9")])
        assert not (res := client.run(bad, "package")).ok

        # explain says where each version comes from and what was hidden, and why
        r = server.api("GET", f"/api/v1/repositories/{group}/explain/{internal}:core")
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["versions"] == [{"version": "1.0", "member": hosted}]
        hidden = next(m for m in doc["members"] if m["member"] == proxy)
        assert not hidden["consulted"] and "guard" in hidden["reason"]
        r = server.api("GET", f"/api/v1/repositories/{group}/explain/{reserved_gid}:tool").json()
        assert r["versions"] == [] and "reserved" in next(m for m in r["members"] if m["member"] == proxy)["reason"]
        r = server.api("GET", f"/api/v1/repositories/{group}/explain/{public_gid}:util").json()
        assert r["versions"] == [{"version": "2.0", "member": proxy}]
