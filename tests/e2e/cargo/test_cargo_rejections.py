"""Every malformed publish is refused with a 4xx in cargo's error shape, stores nothing, and the server keeps
serving. Bodies are sent by hand (cargo itself never sends them), on SQLite and on PostgreSQL."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import unique
from tests.support.blobs import blob_files
from tests.support.cargo_crates import crate_bytes, malformed_publishes, metadata, publish_body

CASES = malformed_publishes("victim")


def state(server, repo: str) -> tuple:
    info = server.api("GET", f"/api/v1/repositories/{repo}").json()
    return info["version"], info["stats"], blob_files(server.data)


def put(server, repo: str, body: bytes, token: str | None = None) -> httpx.Response:
    return httpx.put(f"{server.url}/{repo}/api/v1/crates/new", content=body, timeout=60,
                     headers={"Authorization": token or server.token, "Content-Type": "application/octet-stream"})


def detail(resp: httpx.Response) -> str:
    doc = resp.json()
    assert set(doc) == {"errors"} and len(doc["errors"]) == 1, doc
    return doc["errors"][0]["detail"]


@pytest.fixture(scope="module")
def target(server):
    """A repository holding one good crate, victim 0.9.0 (so 'nothing stored' is checked next to real content)."""
    repo = unique("reject")
    server.create_repo(repo, format="cargo")
    r = put(server, repo, publish_body(metadata("victim", "0.9.0"), crate_bytes("victim", "0.9.0")))
    assert r.status_code == 200, r.text
    return repo


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_malformed_publish_is_refused_and_stores_nothing(server, target, case):
    before = state(server, target)
    r = put(server, target, case.body)
    assert r.status_code == case.status, r.text
    assert case.says in detail(r)
    assert state(server, target) == before
    # still serving, and the good crate is untouched
    index = httpx.get(f"{server.url}/{target}/index/vi/ct/victim")
    assert index.status_code == 200 and [json.loads(x)["vers"] for x in index.text.splitlines()] == ["0.9.0"]


def test_republish_of_an_existing_version_is_refused(server, target):
    before = state(server, target)
    for version in ("0.9.0", "0.9.0+other-build"):
        body = publish_body(metadata("victim", version, description="changed"), crate_bytes("victim", version))
        r = put(server, target, body)
        assert r.status_code == 400 and "crate version `0.9.0` is already uploaded" in detail(r), r.text
    # the same name in another spelling is the same crate
    r = put(server, target, publish_body(metadata("Victim", "1.0.0"), crate_bytes("Victim", "1.0.0")))
    assert r.status_code == 400 and "previously named `victim`" in detail(r)
    assert state(server, target) == before


def test_oversized_crate_is_413_and_stores_nothing(server):
    repo = unique("small")
    server.create_repo(repo, format="cargo", max_upload_size=4096)
    before = state(server, repo)
    big = crate_bytes("bigone", "1.0.0", files={"data.bin": bytes(range(256)) * 400 + __import__("os").urandom(8000)})
    assert len(big) > 4096
    r = put(server, repo, publish_body(metadata("bigone", "1.0.0"), big))
    assert r.status_code == 413 and "4096" in detail(r), r.text
    assert state(server, repo) == before
    # a small crate still goes in
    assert put(server, repo, publish_body(metadata("bigone", "1.0.0"), crate_bytes("bigone", "1.0.0"))).status_code == 200


def test_errors_are_in_cargo_shape_for_other_routes(server, target):
    r = httpx.delete(f"{server.url}/{target}/api/v1/crates/victim/7.7.7/yank", headers={"Authorization": server.token})
    assert r.status_code == 404 and "7.7.7" in detail(r)
    r = httpx.get(f"{server.url}/{target}/api/v1/crates/nothere/owners")
    assert r.status_code == 404 and "nothere" in detail(r)
    r = httpx.put(f"{server.url}/{target}/api/v1/crates/victim/owners", content=b"{not json",
                  headers={"Authorization": server.token})
    assert r.status_code == 400 and "users" in detail(r)
    r = httpx.get(f"{server.url}/{target}/api/v1/crates/victim/0.0.1/download")
    assert r.status_code == 404 and detail(r)
    r = httpx.put(f"{server.url}/{target}/api/v1/crates/new", content=b"x")
    assert r.status_code == 401 and detail(r) and r.headers["www-authenticate"].startswith("Cargo")
