"""Every malformed npm publish is refused with a clear 4xx, stores nothing, and the server keeps serving.

The documents are written by hand (npm itself refuses to send most of them), on SQLite and PostgreSQL; one
oversized publish goes through the real npm."""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import http.client
import json
import os
import subprocess
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.npm.conftest import new_repo, packument, repo_stats
from tests.support.blobs import blob_files, temp_files
from tests.support.npm_clients import make_project, pack_tarball, publish_document
from tests.support.server import WHARF_BIN


class Guard:
    """Snapshot the blob store; ``check()``: nothing stored, no temp file left, the repository still empty."""

    def __init__(self, server: Any, repo: str):
        self.server, self.repo = server, repo
        self.before = blob_files(server.data)

    def check(self, *names: str) -> None:
        assert blob_files(self.server.data) == self.before, "a refused publish left a blob behind"
        assert temp_files(self.server.data) == [], "a refused publish left a temp file behind"
        stats = repo_stats(self.server, self.repo)
        assert stats["stats"]["files"] == 0 and stats["version"] == 0, stats
        for name in names:
            assert packument(f"{self.server.url}/{self.repo}/", name).status_code == 404


@pytest.fixture
def guarded(server) -> Iterator[tuple[str, Guard]]:
    repo = new_repo(server)
    guard = Guard(server, repo)
    yield repo, guard
    guard.check()


def assert_refused(resp: Any, status: int | tuple[int, ...], *mentions: str) -> str:
    code = resp.status_code if hasattr(resp, "status_code") else resp.status
    body = resp.text if hasattr(resp, "text") else resp.read().decode()
    assert code in ((status,) if isinstance(status, int) else status), (code, body[:500])
    error = json.loads(body)["error"]
    assert isinstance(error, str) and len(error.split()) >= 3, error  # a sentence, not a code
    for word in mentions:
        assert word.lower() in error.lower(), (word, error)
    return error


def put(server: Any, repo: str, name: str, doc: Any, *, raw: bytes | None = None, headers: dict[str, str] | None = None):
    body = raw if raw is not None else json.dumps(doc).encode()
    return httpx.put(f"{server.url}/{repo}/{name.replace('/', '%2f')}", content=body, timeout=60,
                     headers={"Authorization": f"Bearer {server.token}", "Content-Type": "application/json",
                              **(headers or {})})


def _tgz(name: str = "demo", version: str = "1.0.0", **extra: Any) -> bytes:
    return pack_tarball({"name": name, "version": version, **extra}, members=[("package/index.js", b"1;\n")])


def _doc(tgz: bytes | None = None, name: str = "demo", version: str = "1.0.0") -> dict[str, Any]:
    return publish_document(name, version, tgz if tgz is not None else _tgz(name, version))


def _with_attachment(doc: dict[str, Any], data: bytes, *, fix_digests: bool = True) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    (key, att), = doc["_attachments"].items()
    att["data"] = base64.b64encode(data).decode()
    att["length"] = len(data)
    if fix_digests:
        dist = next(iter(doc["versions"].values()))["dist"]
        dist["integrity"] = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
        dist["shasum"] = hashlib.sha1(data).hexdigest()
    return doc


def _mut(fn: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    doc = _doc()
    fn(doc)
    return doc


V = "1.0.0"
ATT = "demo-1.0.0.tgz"
# id -> (document, status, words the error must contain)
CORPUS: dict[str, tuple[Callable[[], Any], int, tuple[str, ...]]] = {
    "truncated-tarball": (lambda: _with_attachment(_doc(), _tgz()[:-20]), 400, ("tgz",)),
    "corrupt-tarball": (lambda: _with_attachment(_doc(), b"\x1f\x8b" + bytes(range(256)) * 4), 400, ("tgz",)),
    "not-gzip": (lambda: _with_attachment(_doc(), b"just some text, not a tarball"), 400, ("tgz",)),
    "no-package-json": (lambda: _with_attachment(_doc(), pack_tarball(None, members=[("package/a.js", b"1")])), 400,
                        ("package.json",)),
    "integrity-lies": (lambda: _with_attachment(_doc(), _tgz(description="other"), fix_digests=False), 400,
                       ("integrity", "does not match")),
    "shasum-lies": (lambda: _mut(lambda d: d["versions"][V]["dist"].update(
        shasum=hashlib.sha1(b"x").hexdigest())), 400, ("shasum", "does not match")),
    "no-digest": (lambda: _mut(lambda d: d["versions"][V].update(dist={})), 400, ("integrity",)),
    "length-lies": (lambda: _mut(lambda d: d["_attachments"][ATT].update(length=d["_attachments"][ATT]["length"] + 7)),
                    400, ("declares",)),
    "bad-base64": (lambda: _mut(lambda d: d["_attachments"][ATT].update(data="%%%not base64%%%")), 400, ("base64",)),
    "tarball-names-other-package": (lambda: _with_attachment(_doc(), _tgz(name="evil")), 400, ("package.json", "evil")),
    "tarball-other-version": (lambda: _with_attachment(_doc(), _tgz(version="6.6.6")), 400, ("version", "6.6.6")),
    "document-name-mismatch": (lambda: _mut(lambda d: d.update(name="other")), 400, ("name",)),
    "manifest-name-mismatch": (lambda: _mut(lambda d: d["versions"][V].update(name="other")), 400, ("name",)),
    "manifest-version-mismatch": (lambda: _mut(lambda d: d["versions"][V].update(version="2.0.0")), 400, ("version",)),
    "invalid-semver": (lambda: _doc(_tgz(version="1.0"), version="1.0"), 400, ("semver",)),
    "leading-zero-semver": (lambda: _doc(_tgz(version="01.0.0"), version="01.0.0"), 400, ("semver",)),
    "two-versions": (lambda: _mut(lambda d: d["versions"].update({"2.0.0": {**d["versions"][V], "version": "2.0.0"}})),
                     400, ("one version",)),
    "two-attachments": (lambda: _mut(lambda d: d["_attachments"].update({"demo-2.0.0.tgz": d["_attachments"][ATT]})),
                        400, ("exactly one",)),
    "attachment-traversal": (lambda: _mut(lambda d: d.update(_attachments={"../../../etc/x.tgz": d["_attachments"][ATT]})),
                             400, ("attachment",)),
    "member-traversal": (lambda: _with_attachment(_doc(), pack_tarball(
        {"name": "demo", "version": V}, members=[("package/../../../../tmp/evil", b"x")])), 400, ("..",)),
    "missing-attachment": (lambda: _mut(lambda d: d.update(_attachments={})), 400, ("tarball",)),
    "attachment-without-data": (lambda: _mut(lambda d: d["_attachments"][ATT].pop("data")), 400, ("data",)),
    "tag-on-other-version": (lambda: _mut(lambda d: d.update({"dist-tags": {"latest": "3.0.0"}})), 400, ("tag",)),
    "not-an-object": (lambda: [1, 2, 3], 400, ("object",)),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_malformed_publish_is_refused(server, guarded, case):
    repo, guard = guarded
    make, status, words = CORPUS[case]
    assert_refused(put(server, repo, "demo", make()), status, *words)
    guard.check("demo")


@pytest.mark.parametrize("raw, words", [(b"{not json", ("json",)), (b"", ("json",)),
                                        (gzip.compress(b"{}") + b"junk", ("json",))])
def test_body_that_is_not_json(server, guarded, raw, words):
    repo, guard = guarded
    assert_refused(put(server, repo, "demo", None, raw=raw), 400, *words)


NAMES = {
    "uppercase": ("BadName", "capital"),
    "leading-dot": (".hidden", "period"),
    "leading-underscore": ("_private", "underscore"),
    "too-long": ("a" * 215, "214"),
    "space": ("has space", "URL-friendly"),
    "scope-uppercase": ("@Acme/pkg", "capital"),
}


@pytest.mark.parametrize("case", sorted(NAMES))
def test_invalid_names(server, guarded, case):
    repo, guard = guarded
    name, word = NAMES[case]
    doc = _doc(_tgz(name=name), name=name)
    assert_refused(put(server, repo, name, doc), 400, word)


@pytest.mark.parametrize("path, name", [("..", ".."), ("%2e%2e", ".."), ("@acme%2f..", "@acme/.."),
                                        ("@acme/../demo", "@acme/../demo"), ("demo/../../x", "demo/../../x"),
                                        ("%2e%2e%2fetc", "../etc"), ("@acme%2f%2e%2e%2f%2e%2e", "@acme/../..")])
def test_path_traversal_in_the_url(server, guarded, path, name):
    """Sent byte for byte (http.client does not normalise ``..``), with a document naming the same package: a 4xx,
    never a write."""
    repo, guard = guarded
    body = json.dumps(_doc(_tgz(name=name), name=name)).encode()
    u = urlsplit(server.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("PUT", f"/{repo}/{path}", body=body, headers={"Authorization": f"Bearer {server.token}",
                                                              "Content-Type": "application/json"})
    resp = conn.getresponse()
    assert 400 <= resp.status < 500, (resp.status, resp.read()[:300])
    error = json.loads(resp.read())["error"]
    assert "invalid package name" in error or "not found" in error, error
    conn.close()


def test_oversized_publish(server, npm, tmp_path):
    """413 from the repository's max_upload_size: by Content-Length before the body, and with the real npm."""
    repo = new_repo(server, max_upload_size=20_000)
    guard = Guard(server, repo)
    big = make_project(tmp_path / "src", "bulky", "1.0.0", files={"data.bin": os.urandom(40_000).hex()})
    r = npm(f"{server.url}/{repo}/", server.token).run("publish", cwd=big)
    assert not r.ok and "413" in r.output, r
    u = urlsplit(server.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.putrequest("PUT", f"/{repo}/bulky")
    conn.putheader("Authorization", f"Bearer {server.token}")
    conn.putheader("Content-Length", str(10 * 1024 * 1024 * 1024))
    conn.endheaders()
    resp = conn.getresponse()  # answered without sending the 10 GiB
    assert resp.status == 413 and "limit" in json.loads(resp.read())["error"]
    conn.close()
    guard.check("bulky")


def test_server_still_serves_and_a_valid_publish_succeeds(server, npm, tmp_path):
    repo = new_repo(server)
    for case in ("truncated-tarball", "integrity-lies", "two-versions"):
        assert put(server, repo, "demo", CORPUS[case][0]()).status_code == 400
    r = put(server, repo, "demo", _doc())
    assert r.status_code == 201, r.text
    app = make_project(tmp_path / "app", "app", "0.0.1", dependencies={"demo": "1.0.0"}, extra={"private": True})
    r = npm(f"{server.url}/{repo}/").run("install", cwd=app)
    assert r.ok, r
    # every blob on disk belongs to a publish that succeeded somewhere in this module: none is orphaned
    args = [WHARF_BIN, "check", "--json", "--data", str(server.data)]
    if server.database_url:
        args += ["--database-url", server.database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
    report = json.loads(subprocess.run(args, capture_output=True, text=True, timeout=120, env=env).stdout)
    assert report["orphan_blobs"] == [] and report["missing_blobs"] == [] and report["temp_files"] == 0, report
