"""Bad uploads to a generic repository: a clear 4xx, nothing stored, the server keeps serving.

Traversal paths (raw and percent-encoded), control characters, directories, bad and mismatching checksum headers,
oversized bodies (refused from Content-Length and while streaming), bodies shorter than their Content-Length and
clients that disconnect mid-upload."""

from __future__ import annotations

import hashlib
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.e2e.generic.conftest import make_repo, stats
from tests.support.blobs import blob_files, temp_files
from tests.support.generic_curl import Curl

GOOD = b"the good bytes\n"


class Guard:
    """Snapshot of what is stored; ``check`` asserts a refused request changed nothing."""

    def __init__(self, server: Any, repo: str):
        self.server, self.repo = server, repo
        self.blobs = blob_files(server.data)
        self.version = stats(server, repo)["version"]

    def check(self) -> None:
        deadline = time.monotonic() + 10
        while temp_files(self.server.data) and time.monotonic() < deadline:  # an aborted body is dropped async
            time.sleep(0.05)
        assert temp_files(self.server.data) == []
        assert blob_files(self.server.data) == self.blobs
        s = stats(self.server, self.repo)
        assert s["version"] == self.version and s["stats"]["files"] == 1


@pytest.fixture(scope="module")
def target(sqlite_server: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    repo = make_repo(sqlite_server, max_upload_size=4096)
    src = tmp_path_factory.mktemp("good") / "good.txt"
    src.write_bytes(GOOD)
    c = Curl(tmp_path_factory.mktemp("curl"))
    assert c("-H", f"Authorization: Bearer {sqlite_server.token}", "-T", src,
             f"{sqlite_server.url}/{repo}/keep/good.txt").status == 201
    return repo


@pytest.fixture
def guard(sqlite_server: Any, target: str) -> Iterator[Guard]:
    g = Guard(sqlite_server, target)
    yield g
    g.check()
    # and the server still serves the good file
    c = Curl(Path(sqlite_server.data.parent))
    assert c(f"{sqlite_server.url}/{target}/keep/good.txt").body == GOOD


def _payload(tmp: Path, data: bytes = b"payload bytes") -> Path:
    p = tmp / "payload.bin"
    p.write_bytes(data)
    return p


@pytest.mark.parametrize("path, status, mention", [
    ("../escape.txt", 400, "'..'"),
    ("keep/../../escape.txt", 400, "'..'"),
    ("keep/./x.txt", 400, "'.'"),
    ("%2e%2e/escape.txt", 400, "'..'"),
    ("keep/%2E%2E/%2e%2e/escape.txt", 400, "'..'"),
    ("keep%2fx.txt", 400, "encoded '%2f' (slash)"),
    ("keep%2Fx.txt", 400, "encoded '%2F' (slash)"),
    ("keep%5cx.txt", 400, "backslash"),
    ("keep%5c..%5cx.txt", 400, "backslash"),
    ("keep/%252e%252e/x.txt", 400, "encoded twice"),
    ("keep\\x.txt", 400, "backslash"),
    ("keep//x.txt", 400, "empty segment"),
    ("keep/x%00.txt", 400, "NUL"),
    ("keep/x%0a.txt", 400, "control"),
    ("keep/x%1b%5b31m.txt", 400, "control"),
    ("keep/invoice%e2%80%aetxt.exe", 400, "U+202E"),
    ("keep/", 400, "names a directory"),
    ("keep/sub/", 400, "names a directory"),
    ("", 400, "no file path given"),
    ("x" * 300, 400, "longer than 255 bytes"),
    ("/".join(["d" * 100] * 5) + "/x", 400, "longer than 500 characters"),
    ("keep", 409, "is a directory"),
    ("keep/good.txt/inner.txt", 409, "is a file"),
])
def test_bad_paths(sqlite_server: Any, target: str, guard: Guard, curl: Curl, tmp_path: Path, path: str,
                   status: int, mention: str) -> None:
    # (not -T: with a URL ending in '/', curl -T appends the local file's name)
    r = curl("--path-as-is", "-H", f"Authorization: Bearer {sqlite_server.token}", "-X", "PUT",
             "--data-binary", f"@{_payload(tmp_path)}", f"{sqlite_server.url}/{target}/{path}")
    assert r.status == status, r
    assert mention in r.error, r.error


@pytest.mark.parametrize("headers, mention", [
    ({"X-Checksum-Sha256": "z" * 64}, "not a hexadecimal sha256"),
    ({"X-Checksum-Sha256": "ab" * 16}, "has 32 hex digits; a sha256 digest has 64"),
    ({"X-Checksum-Sha1": "0" * 41}, "has 41 hex digits"),
    ({"X-Checksum-Md5": "md5:" + "0" * 28}, "not a hexadecimal md5"),
    ({"X-Checksum-Sha256": "0" * 64}, "checksum mismatch"),
    ({"X-Checksum-Sha1": hashlib.sha1(b"other").hexdigest()}, "checksum mismatch: the client said sha1"),
    ({"X-Checksum-Md5": hashlib.md5(b"other").hexdigest()}, "checksum mismatch: the client said md5"),
    ({"X-Checksum-Sha256": hashlib.sha256(b"payload bytes").hexdigest(),
      "X-Checksum-Sha1": hashlib.sha1(b"other").hexdigest()}, "the client said sha1"),  # one right, one wrong
    ({"X-Checksum": "1" * 40, "X-Checksum-Sha1": "2" * 40}, "different sha1 digests"),
])
def test_bad_checksum_headers(sqlite_server: Any, target: str, guard: Guard, curl: Curl, tmp_path: Path,
                              headers: dict[str, str], mention: str) -> None:
    args = [a for k, v in headers.items() for a in ("-H", f"{k}: {v}")]
    r = curl("-H", f"Authorization: Bearer {sqlite_server.token}", *args, "-T", _payload(tmp_path),
             f"{sqlite_server.url}/{target}/new/file.bin")
    assert r.status == 400 and mention in r.error, r


def test_oversized_refused_from_content_length(sqlite_server: Any, target: str, guard: Guard, curl: Curl,
                                               tmp_path: Path) -> None:
    r = curl("-H", f"Authorization: Bearer {sqlite_server.token}", "-T", _payload(tmp_path, b"x" * 5000),
             f"{sqlite_server.url}/{target}/new/big.bin")
    assert r.status == 413 and "File too large" in r.error and "4096 bytes" in r.error, r


def test_oversized_chunked_refused_while_streaming(sqlite_server: Any, target: str, guard: Guard, curl: Curl,
                                                   tmp_path: Path) -> None:
    r = curl("-H", f"Authorization: Bearer {sqlite_server.token}", "-H", "Transfer-Encoding: chunked",
             "-T", _payload(tmp_path, b"x" * 50_000), f"{sqlite_server.url}/{target}/new/big.bin")
    assert r.status == 413 and "File too large" in r.error, r


def _raw_put(server: Any, path: str, declared: int, body: bytes, *, wait_answer: bool) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall((f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {server.token}\r\n"
                   f"Content-Length: {declared}\r\n\r\n").encode() + body)
        s.shutdown(socket.SHUT_WR)  # the client stops sending: the body ends short of its Content-Length
        answer = b""
        if wait_answer:
            try:
                while chunk := s.recv(65536):
                    answer += chunk
            except (ConnectionResetError, socket.timeout):
                pass
        return answer


def test_body_shorter_than_content_length(sqlite_server: Any, target: str, guard: Guard) -> None:
    answer = _raw_put(sqlite_server, f"/{target}/new/short.bin", 3000, b"y" * 1000, wait_answer=True)
    assert not answer.startswith((b"HTTP/1.1 2", b"HTTP/1.0 2")), answer[:200]


def test_client_disconnecting_mid_upload(sqlite_server: Any, target: str, guard: Guard) -> None:
    path = f"/{target}/new/cut.bin"
    _raw_put(sqlite_server, path, 4000, b"z" * 2500, wait_answer=False)
    # the client is gone before the server even starts on the request: wait until the server has finished with it
    # (its access-log line), or the guard could look at the temp directory before the upload's temp file exists
    deadline = time.monotonic() + 20
    while f'"path":"{path}"' not in sqlite_server.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the server never finished the cut upload"
        time.sleep(0.05)


def test_nothing_of_a_refused_path_is_listed(sqlite_server: Any, target: str, curl: Curl) -> None:
    listing = curl(f"{sqlite_server.url}/{target}/").json()
    assert listing["directories"] == [{"name": "keep", "path": "keep/"}] and listing["files"] == []
    assert curl(f"{sqlite_server.url}/{target}/new/").status == 404
