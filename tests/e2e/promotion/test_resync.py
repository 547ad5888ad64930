"""``wharf resync`` of a proxied package against a scripted upstream on 127.0.0.1: verified, retried with backoff
while the upstream fails then recovers, a changed upstream file reported (the stored one kept), a lost local blob
restored, a dead upstream given up on after the configured attempts."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import unique
from tests.support import artifacts
from tests.support.fake_upstream import Behaviour, FakeUpstream, Fault

from .conftest import repo, wharf

WHEEL = "demo_rs-1.0-py3-none-any.whl"


@pytest.fixture
def upstream():
    with FakeUpstream() as up:
        yield up


def _cached_proxy(srv, up: FakeUpstream, data: bytes) -> tuple[str, str]:
    """A proxy of the fake upstream with the wheel cached (downloaded once through it)."""
    up.project("demo-rs", {WHEEL: data})
    proxy = repo(srv, "prx", kind="proxy", upstream={"url": up.index_url})
    sha = hashlib.sha256(data).hexdigest()
    # the page first, as clients do: the file route finds the file's upstream URL in it
    assert httpx.get(f"{srv.url}/{proxy}/simple/demo-rs/").status_code == 200
    r = httpx.get(f"{srv.url}/{proxy}/files/{sha}/{WHEEL}")
    assert r.status_code == 200 and r.content == data
    deadline = time.monotonic() + 20
    while srv.api("GET", f"/api/v1/repositories/{proxy}/packages/demo-rs").status_code != 200:
        assert time.monotonic() < deadline, "the proxied file was never recorded"
        time.sleep(0.05)
    return proxy, sha


def _wait(srv, job_id: int, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = srv.api("GET", f"/api/v1/resyncs/{job_id}").json()
        if job["status"] in ("ok", "mismatch", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def _resync(srv, proxy: str, **kw) -> dict:
    r = srv.api("POST", f"/api/v1/repositories/{proxy}/resync", json={"package": "demo-rs", **kw})
    assert r.status_code == 202, r.text
    return _wait(srv, r.json()["id"])


def test_resync_retries_with_backoff_until_the_upstream_recovers(sqlite_server, upstream, tmp_path):
    srv = sqlite_server
    data = artifacts.wheel_bytes("demo-rs", "1.0")
    proxy, sha = _cached_proxy(srv, upstream, data)

    job = _resync(srv, proxy)
    assert job["status"] == "ok" and job["attempts"] == 1, job
    assert [(f["filename"], f["status"]) for f in job["report"]["files"]] == [(WHEEL, "verified")]

    # the upstream fails twice, then answers again: the job retries (0.05 s, 0.1 s) and succeeds on attempt 3
    before = upstream.count(f"/files/{WHEEL}")
    upstream.set(f"/files/{WHEEL}", [Fault.status(503), Fault.reset(), Behaviour("body", body=data)])
    job = _resync(srv, proxy, backoff=0.05, max_attempts=5)
    assert job["status"] == "ok" and job["attempts"] == 3 and job["error"] is None, job
    assert upstream.count(f"/files/{WHEEL}") == before + 3

    # the CLI follows the job and prints the result
    r = wharf(srv, "resync", f"{proxy}/demo-rs@1.0", "--backoff", "0.05")
    assert r.returncode == 0, r.stderr
    assert "ok after 1 attempt" in r.stderr and "verified" in r.stderr


def test_resync_reports_a_mismatch_keeps_the_file_and_restores_a_lost_blob(sqlite_server, upstream, tmp_path):
    srv = sqlite_server
    data = artifacts.wheel_bytes("demo-rs", "1.0")
    proxy, sha = _cached_proxy(srv, upstream, data)

    other = artifacts.wheel_bytes("demo-rs", "1.0", summary="changed upstream")
    upstream.set(f"/files/{WHEEL}", Behaviour("body", body=other))
    r = wharf(srv, "resync", f"{proxy}/demo-rs", "--json")
    assert r.returncode == 1, r.stderr
    job = json.loads(r.stdout)
    assert job["status"] == "mismatch", (job["error"], job["report"])
    f = job["report"]["files"][0]
    assert f["status"] == "mismatch" and f["sha256"] == sha and f["upstream_sha256"] == hashlib.sha256(other).hexdigest()
    got = httpx.get(f"{srv.url}/{proxy}/files/{sha}/{WHEEL}")
    assert got.status_code == 200 and got.content == data  # the stored file is kept and still served

    # the local blob is lost: resync fetches it again, verifies it and restores it
    blob = Path(srv.data) / "blobs" / sha[:2] / sha[2:4] / sha
    blob.unlink()
    upstream.set(f"/files/{WHEEL}", Behaviour("body", body=data))
    job = _resync(srv, proxy)
    assert job["status"] == "ok" and job["report"]["files"][0]["status"] == "restored", job
    assert blob.read_bytes() == data


def test_resync_gives_up_after_max_attempts_and_refuses_hosted(sqlite_server, upstream):
    srv = sqlite_server
    data = artifacts.wheel_bytes("demo-rs", "1.0")
    proxy, _sha = _cached_proxy(srv, upstream, data)
    upstream.set(f"/files/{WHEEL}", Fault.status(500))
    job = _resync(srv, proxy, backoff=0.02, max_attempts=3)
    assert job["status"] == "failed" and job["attempts"] == 3, job
    assert "500" in job["error"] and "gave up after 3 attempt(s)" in job["error"]
    audit = srv.api("GET", "/api/v1/audit", params={"repository": proxy, "action": "repository:package:resync"}).json()
    assert len(audit) == 1 and audit[0]["subject"] == "demo-rs"

    hosted = repo(srv, "hst")
    r = srv.api("POST", f"/api/v1/repositories/{hosted}/resync", json={"package": "demo-rs"})
    assert r.status_code == 400 and "proxy" in r.json()["error"]
    reader = srv.create_token(unique("rd"), {proxy: "read"})
    r = srv.api("POST", f"/api/v1/repositories/{proxy}/resync", json={"package": "demo-rs"}, token=reader)
    assert r.status_code == 403
