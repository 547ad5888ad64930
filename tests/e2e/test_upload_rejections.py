"""Every bad upload is refused with a 4xx a person can read, stores nothing, and the server keeps serving.

Uploads are sent with ``requests`` (twine refuses to send malformed data), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import random
import re
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from tests.conftest import unique
from tests.support import artifacts
from tests.support.artifacts import upload_form
from tests.support.blobs import blob_files, temp_files
from tests.support.server import WHARF_BIN

# Reasons the route reports that differ from the corpus' (the route answers before the form is checked).
_ROUTE_REASON = {"form-action-submit": "gone"}


@pytest.fixture(scope="module")
def good_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return artifacts.make_wheel(tmp_path_factory.mktemp("good"), "demo", "1.0")


# -- helpers ----------------------------------------------------------------------------------------------------


def metric(server: Any, reason: str) -> float:
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    m = re.search(r'^wharf_upload_failed_total\{reason="%s"\} ([0-9.e+]+)$' % re.escape(reason), text, re.M)
    return float(m.group(1)) if m else 0.0


def post(server: Any, repo: str, *, data: Any = None, files: Any = None, headers: dict[str, str] | None = None,
         **kw: Any) -> requests.Response:
    return requests.post(f"{server.url}/{repo}/legacy/", data=data, files=files, headers=headers,
                         auth=("__token__", server.token), timeout=60, **kw)


def repo_files(server: Any, repo: str) -> int:
    r = server.api("GET", f"/api/v1/repositories/{repo}")
    assert r.status_code == 200, r.text
    return int(r.json()["stats"]["files"])


def assert_refused(resp: requests.Response, status: int | tuple[int, ...] | None = None, *mentions: str) -> str:
    """A 4xx with a JSON body whose ``error`` is a non-empty sentence (mentioning ``mentions``, any case)."""
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:500])
    if status is not None:
        assert resp.status_code in ((status,) if isinstance(status, int) else status), (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    doc = resp.json()
    error = doc["error"]
    assert isinstance(error, str) and len(error.split()) >= 3, doc  # words, not a code
    assert doc["status"] == resp.status_code
    assert "Traceback" not in error and "Errno" not in error, error
    for word in mentions:
        assert word.lower() in error.lower(), (word, error)
    return error


class Guard:
    """Snapshot the blob store; ``check()`` asserts that nothing was stored and the server still serves."""

    def __init__(self, server: Any, repo: str, project: str = "demo"):
        self.server, self.repo, self.project = server, repo, project
        self.before = blob_files(server.data)

    def check(self) -> None:
        server = self.server
        assert blob_files(server.data) == self.before, "a refused upload left a blob behind"
        assert temp_files(server.data) == [], "a refused upload left a temp file behind"
        assert repo_files(server, self.repo) == 0
        assert requests.get(f"{server.url}/{self.repo}/simple/{self.project}/", timeout=10).status_code == 404
        assert self.project not in requests.get(f"{server.url}/{self.repo}/simple/", timeout=10).text
        assert requests.get(f"{server.url}/health", timeout=10).status_code == 200


@pytest.fixture
def guarded(server: Any) -> Iterator[tuple[str, Guard]]:
    repo = unique("rej")
    server.create_repo(repo)
    guard = Guard(server, repo)
    yield repo, guard


def multipart_body(fields: dict[str, str], file: tuple[str, str, bytes] | None) -> tuple[bytes, str]:
    """A multipart/form-data body built by hand (for chunked and raw-socket sends)."""
    boundary = uuid.uuid4().hex
    out = bytearray()
    for k, v in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    if file is not None:
        field, filename, data = file
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


# -- the malformed corpus ---------------------------------------------------------------------------------------


# built once at import (the ids parametrize the test); removed when the interpreter exits
_CORPUS_DIR = tempfile.TemporaryDirectory(prefix="wharf-malformed-")
CORPUS = {case.id: case for case in artifacts.malformed_uploads(Path(_CORPUS_DIR.name))}


@pytest.mark.parametrize("case_id", list(CORPUS))
def test_malformed_upload_is_refused(server, guarded, case_id):
    repo, guard = guarded
    case = CORPUS[case_id]
    reason = _ROUTE_REASON.get(case.id, case.expected_reason)
    seen = metric(server, reason)
    resp = post(server, repo, data=case.form(), files={"content": (case.filename, case.path.read_bytes())})
    error = assert_refused(resp, 410 if case.id == "form-action-submit" else 400)
    assert metric(server, reason) == seen + 1, f"expected reason {reason!r} for {case.id}: {error}"
    guard.check()


# -- more refusals ------------------------------------------------------------------------------------------------


def _good(wheel: Path, **overrides: str | None) -> tuple[dict[str, str], dict[str, Any]]:
    return upload_form(wheel, wheel.name, "demo", "1.0", **overrides), {"content": (wheel.name, wheel.read_bytes())}


@pytest.mark.parametrize("overrides, mentions", [
    ({"sha256_digest": hashlib.sha256(b"other").hexdigest()}, ("digest",)),
    ({"blake2_256_digest": "f" * 64}, ("digest",)),
    ({"md5_digest": hashlib.md5(b"other").hexdigest()}, ("digest",)),
    ({"sha256_digest": "not-hex"}, ("digest",)),
    ({"name": "demo-other"}, ("name", "demo-1.0-py3-none-any.whl")),
    ({"version": "1.1"}, ("version", "demo-1.0-py3-none-any.whl")),
    ({"version": "1.0.post1"}, ("version",)),
    ({"version": "1.0 beta"}, ("version",)),
    ({"version": ""}, ("version",)),
    ({"name": ""}, ("name",)),
    ({"name": None}, ("name",)),
    ({"filetype": "sdist"}, ("filetype",)),
    ({"filetype": "bdist_egg"}, ("filetype",)),
    ({"filetype": "bdist_wininst"}, ("filetype",)),
    ({"filetype": None}, ("filetype",)),
    ({":action": None}, ("action",)),
    ({":action": "remove_pkg"}, ("action",)),
    ({"protocol_version": "3"}, ("protocol",)),
], ids=lambda v: "-".join(f"{k}={v}" for k, v in v.items()) if isinstance(v, dict) else None)
def test_form_disagreeing_with_file(server, guarded, good_wheel, overrides, mentions):
    repo, guard = guarded
    data, files = _good(good_wheel, **overrides)
    assert_refused(post(server, repo, data=data, files=files), 400, *mentions)
    guard.check()


@pytest.mark.parametrize("filename, mentions", [
    ("demo-1.0-py3-none-any.exe", ("demo-1.0-py3-none-any.exe",)),
    ("demo-1.0.tar.bz2", ("demo-1.0.tar.bz2",)),
    ("demo-1.0.zip", (".zip",)),
    ("demo-1..0-py3-none-any.whl", ("1..0",)),
    ("demo-latest-py3-none-any.whl", ("latest", "version")),
    ("demo-1.0.x-py3-none-any.whl", ("version",)),
    ("-demo-1.0-py3-none-any.whl", ()),
    ("de mo-1.0-py3-none-any.whl", ()),
    ("demo_-1.0.tar.gz", ("name",)),
    ("demo.-1.0.tar.gz", ("name",)),
    ("demo-1.0+cpu-py3-none-any.whl", ("local",)),
    ("", ()),
    (".whl", ()),
    ("../demo-1.0-py3-none-any.whl", ()),
    ("x" * 300 + "-1.0-py3-none-any.whl", ()),
], ids=lambda v: v[:40] if isinstance(v, str) else None)
def test_invalid_filenames(server, guarded, good_wheel, filename, mentions):
    repo, guard = guarded
    data = upload_form(good_wheel, good_wheel.name, "demo", "1.0")
    assert_refused(post(server, repo, data=data, files={"content": (filename, good_wheel.read_bytes())}), 400, *mentions)
    guard.check()


@pytest.mark.parametrize("payload", [b"just some text\n", b"PK\x03\x04" + b"\0" * 100, b"\x1f\x8b" + b"\xff" * 64,
                                     b"<html>not a wheel</html>"], ids=["text", "zip-magic", "gzip-magic", "html"])
@pytest.mark.parametrize("filename", ["demo-1.0-py3-none-any.whl", "demo-1.0.tar.gz"])
def test_not_an_archive(server, guarded, payload, filename, tmp_path):
    repo, guard = guarded
    path = tmp_path / "payload"
    path.write_bytes(payload)
    data = upload_form(path, filename, "demo", "1.0")
    error = assert_refused(post(server, repo, data=data, files={"content": (filename, payload)}), 400, filename)
    assert any(word in error.lower() for word in ("archive", "zip", "tar", "gzip")), error
    guard.check()


def test_empty_file(server, guarded, good_wheel):
    repo, guard = guarded
    data = upload_form(good_wheel, good_wheel.name, "demo", "1.0", sha256_digest=hashlib.sha256(b"").hexdigest(),
                       blake2_256_digest=None)
    assert_refused(post(server, repo, data=data, files={"content": (good_wheel.name, b"")}), 400, "empty", good_wheel.name)
    guard.check()


@pytest.mark.parametrize("ctype", [None, "multipart/form-data; boundary=xyz", "application/x-www-form-urlencoded"])
def test_empty_body(server, guarded, ctype):
    repo, guard = guarded
    headers = {"Content-Type": ctype} if ctype else {}
    assert_refused(post(server, repo, data=b"", headers=headers), 400)
    guard.check()


def test_no_file_field(server, guarded, good_wheel):
    repo, guard = guarded
    data = upload_form(good_wheel, good_wheel.name, "demo", "1.0")
    # only the text fields
    assert_refused(post(server, repo, data=data, files={"comment": (None, "no file")}), 400, "content")
    # the file under another field name
    assert_refused(post(server, repo, data=data, files={"file": (good_wheel.name, good_wheel.read_bytes())}), 400,
                   "content")
    # a "content" field that is a text value, not a file
    assert_refused(post(server, repo, data={**data, "content": "not a file"}, files={"x": (None, "y")}), 400, "content")
    guard.check()


def test_two_files(server, guarded, good_wheel):
    repo, guard = guarded
    data = upload_form(good_wheel, good_wheel.name, "demo", "1.0")
    files = [("content", (good_wheel.name, good_wheel.read_bytes())), ("content", (good_wheel.name, good_wheel.read_bytes()))]
    assert_refused(post(server, repo, data=data, files=files), 400, "one file")
    guard.check()


@pytest.mark.parametrize("ctype, body", [
    ("application/json", b'{"name": "demo", "version": "1.0", "content": "UEsDBA=="}'),
    ("application/octet-stream", b"PK\x03\x04 raw wheel bytes"),
    ("text/plain", b"hello"),
    ("multipart/form-data", b"--x\r\n\r\n--x--\r\n"),  # no boundary parameter
    ("multipart/mixed; boundary=x", b"--x\r\n\r\n--x--\r\n"),
])
def test_wrong_content_type(server, guarded, ctype, body):
    repo, guard = guarded
    error = assert_refused(post(server, repo, data=body, headers={"Content-Type": ctype}), 400)
    assert "multipart/form-data" in error, error
    guard.check()


@pytest.mark.parametrize("body", [
    b"this is not multipart at all",
    b"--b\r\nContent-Disposition: form-data; name=\"content\"; filename=\"demo-1.0-py3-none-any.whl\"\r\n\r\nPK",
    b"--b\r\nX-Nothing: here\r\n\r\nvalue\r\n--b--\r\n",
    b"--b\r\nContent-Disposition: form-data; name=\"content\"; filename=\"demo-1.0-py3-none-any.whl\"\r\n\r\n"
    + b"PK\x03\x04" * 100 + b"\r\n--b--\r\n",
], ids=["garbage", "truncated", "no-disposition", "only-a-file"])
def test_malformed_multipart(server, guarded, body):
    repo, guard = guarded
    assert_refused(post(server, repo, data=body, headers={"Content-Type": "multipart/form-data; boundary=b"}), 400)
    guard.check()


def test_action_submit_is_gone(server, guarded, good_wheel):
    repo, guard = guarded
    for action in ("submit", "doc_upload"):
        data, files = _good(good_wheel, **{":action": action})
        assert_refused(post(server, repo, data=data, files=files), 410, action)
        # without a file too (what old setup.py register sent)
        assert_refused(post(server, repo, files={":action": (None, action), "name": (None, "demo")}), 410, action)
    guard.check()


# -- size limits --------------------------------------------------------------------------------------------------

_LIMIT = 10_000


@pytest.fixture
def small_repo(server: Any) -> Iterator[tuple[str, Guard]]:
    repo = unique("small")
    server.create_repo(repo, max_upload_size=_LIMIT)
    yield repo, Guard(server, repo, project="big")


@pytest.fixture(scope="module")
def big_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return artifacts.make_wheel(tmp_path_factory.mktemp("big"), "big", "1.0",
                                extra_files={"big/blob.bin": random.Random(7).randbytes(200_000)})


def _mentions_limit(error: str) -> None:
    assert "10000 bytes" in error, error
    assert " 0 MiB" not in error, error


def test_oversized_upload(server, small_repo, big_wheel):
    repo, guard = small_repo
    seen = metric(server, "too-large")
    data = upload_form(big_wheel, big_wheel.name, "big", "1.0")
    resp = post(server, repo, data=data, files={"content": (big_wheel.name, big_wheel.read_bytes())})
    _mentions_limit(assert_refused(resp, 413, "too large"))
    assert metric(server, "too-large") == seen + 1
    guard.check()


def test_oversized_chunked_upload(server, small_repo, big_wheel):
    repo, guard = small_repo
    body, ctype = multipart_body(upload_form(big_wheel, big_wheel.name, "big", "1.0"),
                                 ("content", big_wheel.name, big_wheel.read_bytes()))

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 8192):
            yield body[i:i + 8192]

    resp = post(server, repo, data=chunks(), headers={"Content-Type": ctype})
    assert "content-length" not in {k.lower() for k in resp.request.headers}
    assert resp.request.headers.get("Transfer-Encoding") == "chunked"
    _mentions_limit(assert_refused(resp, 413, "too large"))
    guard.check()


def test_declared_length_far_over_the_limit_is_refused_before_the_body(server, small_repo):
    """A Content-Length far above the limit is answered at once, without reading (or waiting for) the body."""
    repo, guard = small_repo
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        auth = base64.b64encode(f"__token__:{server.token}".encode()).decode()
        conn.putrequest("POST", f"/{repo}/legacy/")
        conn.putheader("Authorization", f"Basic {auth}")
        conn.putheader("Content-Type", "multipart/form-data; boundary=b")
        conn.putheader("Content-Length", str(64 * 1024 * 1024))
        conn.endheaders()
        conn.send(b"--b\r\n")  # and then nothing more
        resp = conn.getresponse()
        body = json.loads(resp.read())
        assert resp.status == 413, body
        _mentions_limit(body["error"])
    finally:
        conn.close()
    guard.check()


def test_small_enough_upload_passes_the_limit(server, small_repo, tmp_path):
    repo, _guard = small_repo
    wheel = artifacts.make_wheel(tmp_path, "big", "1.0")
    assert wheel.stat().st_size < _LIMIT
    data, files = upload_form(wheel, wheel.name, "big", "1.0"), {"content": (wheel.name, wheel.read_bytes())}
    assert post(server, repo, data=data, files=files).status_code == 200
    assert repo_files(server, repo) == 1


def test_client_disconnecting_mid_upload_leaves_nothing(server, guarded, big_wheel):
    """A client that goes away half-way through the body: the partial file is discarded, nothing is recorded."""
    repo, guard = guarded
    guard.project = "big"
    body, ctype = multipart_body(upload_form(big_wheel, big_wheel.name, "big", "1.0"),
                                 ("content", big_wheel.name, big_wheel.read_bytes()))
    auth = base64.b64encode(f"__token__:{server.token}".encode()).decode()
    head = (f"POST /{repo}/legacy/ HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body[: len(body) // 2])
        deadline = time.monotonic() + 10
        while not temp_files(server.data) and time.monotonic() < deadline:  # the server is writing the partial file
            time.sleep(0.02)
    deadline = time.monotonic() + 10
    while temp_files(server.data) and time.monotonic() < deadline:
        time.sleep(0.05)
    guard.check()


# -- afterwards ---------------------------------------------------------------------------------------------------


def test_server_still_serves_and_a_valid_upload_succeeds(server, good_wheel, tmp_path):
    """Runs after every refusal above (same server): the store is clean and a good upload works."""
    assert requests.get(f"{server.url}/health", timeout=10).status_code == 200
    assert temp_files(server.data) == []
    repo = unique("after")
    server.create_repo(repo)
    sdist = artifacts.make_sdist(tmp_path, "demo", "1.0")
    for path in (good_wheel, sdist):
        data = upload_form(path, path.name, "demo", "1.0")
        resp = post(server, repo, data=data, files={"content": (path.name, path.read_bytes())})
        assert resp.status_code == 200, resp.text
    assert repo_files(server, repo) == 2
    doc = requests.get(f"{server.url}/{repo}/simple/demo/", headers={"Accept": "application/vnd.pypi.simple.v1+json"},
                       timeout=10).json()
    assert {f["filename"] for f in doc["files"]} == {good_wheel.name, sdist.name}
    for f in doc["files"]:
        blob = requests.get(requests.compat.urljoin(f"{server.url}/{repo}/simple/demo/", f["url"]), timeout=10)
        assert hashlib.sha256(blob.content).hexdigest() == f["hashes"]["sha256"]
    # every blob on disk belongs to an upload that succeeded somewhere in this module: none is orphaned
    args = [WHARF_BIN, "check", "--json", "--data", str(server.data)]
    if server.database_url:
        args += ["--database-url", server.database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
    res = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    report = json.loads(res.stdout)
    assert report["orphan_blobs"] == [] and report["missing_blobs"] == [] and report["temp_files"] == 0, report


