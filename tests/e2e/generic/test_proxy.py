"""Generic proxy repositories: the upstream is a second Wharf (its hosted generic repository) or a scripted fake
for faults. First GET fetches and streams while storing; later GETs are local; 404s are remembered; an upstream
outage keeps cached files served and answers 502 for the rest; concurrent misses make one upstream request; an
upstream's X-Checksum-Sha256 is verified; writes are refused."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import unique
from tests.support.fake_upstream import Behaviour, Fault, FakeUpstream
from tests.support.generic_curl import Curl
from tests.support.server import WharfServer

DATA = os.urandom(200_000)


def _upstream_gets(upstream: WharfServer, path: str) -> int:
    """GET requests for ``path`` in the upstream Wharf's access log."""
    n = 0
    for line in upstream.log_path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("logger") == "wharf.access" and rec.get("method") == "GET" and rec.get("path") == path:
            n += 1
    return n


@pytest.fixture
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfServer]:
    data = tmp_path_factory.mktemp("generic-upstream") / "data"
    srv = WharfServer(data, token="wharf_generic_upstream_token").start()
    try:
        srv.create_repo("up", format="generic")
        with srv.client() as c:
            for path, body in (("dist/app/1.0/app.tar.gz", DATA), ("dist/app/1.0/notes.txt", b"notes\n")):
                r = c.put(f"/up/{path}", content=body)
                assert r.status_code == 201, r.text
        yield srv
    finally:
        srv.stop()


def _proxy(server: Any, url: str, **upstream: Any) -> str:
    name = unique("gproxy")
    r = server.api("POST", "/api/v1/repositories", json={"name": name, "format": "generic", "kind": "proxy",
                                                         "config": {"upstream": {"url": url, **upstream}}})
    assert r.status_code == 201, r.text
    return name


def test_proxy_caches_and_survives_an_outage(server: Any, upstream: WharfServer, curl: Curl, tmp_path: Path) -> None:
    name = _proxy(server, f"{upstream.url}/up/", negative_ttl=600)
    base = f"{server.url}/{name}"
    before = _upstream_gets(upstream, "/up/dist/app/1.0/app.tar.gz")

    out = tmp_path / "app.tar.gz"
    r = curl(f"{base}/dist/app/1.0/app.tar.gz", output=out)
    assert r.status == 200 and out.read_bytes() == DATA
    for _ in range(3):  # served locally afterwards, with the local file's headers
        r = curl(f"{base}/dist/app/1.0/app.tar.gz")
        assert r.status == 200 and r.body == DATA
        assert r.headers["x-checksum-sha256"] == hashlib.sha256(DATA).hexdigest()
        assert r.headers["content-length"] == str(len(DATA))
    assert curl("-r", "10-19", f"{base}/dist/app/1.0/app.tar.gz").body == DATA[10:20]
    assert _upstream_gets(upstream, "/up/dist/app/1.0/app.tar.gz") == before + 1

    # the listing shows what is cached here (recorded right after the first client got the bytes)
    files = curl(f"{base}/dist/app/1.0/").json()["files"]
    assert [(f["name"], f["sha256"]) for f in files] == [("app.tar.gz", hashlib.sha256(DATA).hexdigest())]

    # a 404 upstream is remembered: the second miss does not ask again
    assert curl(f"{base}/dist/app/1.0/missing.bin").status == 404
    r = curl(f"{base}/dist/app/1.0/missing.bin")
    assert r.status == 404 and "upstream" in r.error
    assert _upstream_gets(upstream, "/up/dist/app/1.0/missing.bin") == 1

    # writes are refused on a proxy
    auth = ["-H", f"Authorization: Bearer {server.token}"]
    src = tmp_path / "x"
    src.write_bytes(b"x")
    r = curl(*auth, "-T", src, f"{base}/dist/app/1.0/new.bin")
    assert r.status == 405 and "read-only proxy" in r.error
    assert curl(*auth, "-X", "DELETE", f"{base}/dist/app/1.0/app.tar.gz").status == 405

    # the upstream goes away: the cached file is still served, a file never fetched gets a clear 502
    url = upstream.url
    upstream.stop()
    r = curl(f"{base}/dist/app/1.0/app.tar.gz")
    assert r.status == 200 and r.body == DATA
    r = curl(f"{base}/dist/app/1.0/notes.txt")
    assert r.status in (502, 504) and url in r.error, r
    assert curl(f"{base}/dist/app/1.0/app.tar.gz").body == DATA


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    up = FakeUpstream().start()
    yield up
    up.stop()


def test_concurrent_misses_make_one_upstream_request(sqlite_server: Any, fake: FakeUpstream, curl: Curl,
                                                     tmp_path: Path) -> None:
    body = os.urandom(64 * 40)
    fake.set("/files/slow.bin", Fault.slow(body, delay=0.03, chunk=64))
    name = _proxy(sqlite_server, f"{fake.url}/files/")
    url = f"{sqlite_server.url}/{name}/slow.bin"
    outs = [tmp_path / f"out-{i}" for i in range(8)]
    procs = [subprocess.Popen([curl.bin, "-q", "-sS", "--noproxy", "*", "-f", "-o", str(o), url], env=curl.env())
             for o in outs]
    assert [p.wait(timeout=120) for p in procs] == [0] * 8
    assert all(o.read_bytes() == body for o in outs)
    assert fake.count("/files/slow.bin") == 1


def test_upstream_checksum_header_is_verified(sqlite_server: Any, fake: FakeUpstream, curl: Curl) -> None:
    good, bad = b"good bytes", b"tampered bytes"
    name = _proxy(sqlite_server, f"{fake.url}/files/")
    base = f"{sqlite_server.url}/{name}"
    fake.set("/files/a.bin", Behaviour(body=bad, headers={"X-Checksum-Sha256": hashlib.sha256(good).hexdigest()}))
    r = curl(f"{base}/a.bin")
    assert r.status == 502 and "nothing was cached" in r.error, r
    assert curl(f"{base}/").json()["files"] == []
    fake.set("/files/a.bin", Behaviour(body=good, headers={"X-Checksum-Sha256": hashlib.sha256(good).hexdigest()}))
    r = curl(f"{base}/a.bin")
    assert r.status == 200 and r.body == good
    # the client gets the verified bytes first, then they are recorded: the listing follows a moment later
    deadline = time.monotonic() + 10
    while not curl(f"{base}/").json()["files"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [f["name"] for f in curl(f"{base}/").json()["files"]] == ["a.bin"]


def test_upstream_errors_are_502(sqlite_server: Any, fake: FakeUpstream, curl: Curl) -> None:
    name = _proxy(sqlite_server, f"{fake.url}/files/")
    fake.set("/files/err.bin", Fault.status(500))
    r = curl(f"{sqlite_server.url}/{name}/err.bin")
    assert r.status == 502 and fake.url in r.error
    fake.set("/files/reset.bin", Fault.reset())
    r = curl(f"{sqlite_server.url}/{name}/reset.bin")
    assert r.status == 502
    assert curl(f"{sqlite_server.url}/{name}/").json()["files"] == []
