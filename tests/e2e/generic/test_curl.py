"""Generic repositories driven by curl against a real ``wharf serve``, on SQLite and PostgreSQL: upload with and
without checksum headers, download, resume, HEAD, ETag/304, immutability, overwrite, delete, listings, tokens."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.e2e.generic.conftest import make_repo, stats
from tests.support.generic_curl import Curl


def _digests(data: bytes) -> dict[str, str]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest(),
            "md5": hashlib.md5(data).hexdigest()}


def _file(tmp: Path, name: str, data: bytes) -> Path:
    p = tmp / name
    p.write_bytes(data)
    return p


def test_upload_download_list_delete(server, curl: Curl, tmp_path: Path) -> None:
    repo = make_repo(server)
    base = f"{server.url}/{repo}"
    auth = ["-H", f"Authorization: Bearer {server.token}"]
    data = os.urandom(300_000)
    d = _digests(data)
    src = _file(tmp_path, "tool.tar.gz", data)

    # upload with every checksum header: 201 and the stored digests
    r = curl(*auth, "-T", src, "-H", f"X-Checksum-Sha256: {d['sha256']}", "-H", f"X-Checksum-Sha1: {d['sha1']}",
             "-H", f"X-Checksum-Md5: {d['md5'].upper()}", f"{base}/tools/cli/1.4/tool.tar.gz")
    assert r.status == 201, r
    doc = r.json()
    assert doc["checksums"] == d and doc["size"] == len(data) and doc["path"] == "/tools/cli/1.4/tool.tar.gz"
    assert doc["downloadUri"] == f"{base}/tools/cli/1.4/tool.tar.gz"
    # and without any (the server computes them); a name with a space and non-ASCII letters
    small = b"hello generic\n"
    r = curl(*auth, "-T", _file(tmp_path, "n.txt", small), f"{base}/tools/cli/1.4/r%C3%A9sum%C3%A9%20notes.txt")
    assert r.status == 201, r
    assert r.json()["checksums"] == _digests(small)

    # download: bytes, Content-Length, checksum headers, ETag
    out = tmp_path / "down.tar.gz"
    r = curl(f"{base}/tools/cli/1.4/tool.tar.gz", output=out)
    assert r.status == 200 and out.read_bytes() == data
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["x-checksum-sha256"] == d["sha256"] and r.headers["x-checksum-sha1"] == d["sha1"]
    assert r.headers["etag"] == f'"{d["sha256"]}"'
    assert r.headers["content-type"] == "application/gzip"
    r = curl(f"{base}/tools/cli/1.4/r%C3%A9sum%C3%A9%20notes.txt")
    assert r.status == 200 and r.body == small

    # HEAD: headers only
    r = curl("-I", f"{base}/tools/cli/1.4/tool.tar.gz")  # (curl -I writes the headers as its output)
    assert r.status == 200 and len(r.body) < 2048 and r.headers["content-length"] == str(len(data))
    assert r.headers["x-checksum-sha256"] == d["sha256"]

    # Range: 206 and the slice; unsatisfiable: 416
    r = curl("-r", "100-199", f"{base}/tools/cli/1.4/tool.tar.gz")
    assert r.status == 206 and r.body == data[100:200] and r.headers["content-range"] == f"bytes 100-199/{len(data)}"
    r = curl("-r", f"{len(data) + 10}-", f"{base}/tools/cli/1.4/tool.tar.gz")
    assert r.status == 416

    # resume an interrupted download with curl -C -
    partial = tmp_path / "partial.tar.gz"
    partial.write_bytes(data[:123_457])
    proc = curl.run(["-C", "-", "-o", partial, f"{base}/tools/cli/1.4/tool.tar.gz"])
    assert proc.returncode == 0, proc.stderr
    assert partial.read_bytes() == data

    # ETag: curl --etag-save / --etag-compare gets a 304 and keeps its copy
    etag_file, kept = tmp_path / "etag", tmp_path / "kept"
    proc = curl.run(["--etag-save", etag_file, "-o", kept, f"{base}/tools/cli/1.4/tool.tar.gz"])
    assert proc.returncode == 0 and kept.read_bytes() == data
    r = curl("--etag-compare", etag_file, f"{base}/tools/cli/1.4/tool.tar.gz")
    assert r.status == 304 and r.body == b""

    # identical re-PUT: a no-op 200, no new repository version
    version = stats(server, repo)["version"]
    r = curl(*auth, "-T", src, f"{base}/tools/cli/1.4/tool.tar.gz")
    assert r.status == 200 and r.json()["checksums"] == d and r.json()["stored"] is False
    assert stats(server, repo)["version"] == version
    # other bytes at the same path: 409 with a sentence, the file unchanged
    r = curl(*auth, "-T", _file(tmp_path, "other", b"other bytes"), f"{base}/tools/cli/1.4/tool.tar.gz")
    assert r.status == 409 and "already exists" in r.error and "allow_overwrite" in r.error
    assert curl(f"{base}/tools/cli/1.4/tool.tar.gz").body == data

    # listings: root, directories, ?list, 304 on the listing's ETag
    r = curl(f"{base}/")
    assert r.status == 200 and r.json()["directories"] == [{"name": "tools", "path": "tools/"}] and r.json()["files"] == []
    r = curl(f"{base}/tools/cli/1.4/")
    files = {f["name"]: f for f in r.json()["files"]}
    assert set(files) == {"tool.tar.gz", "résumé notes.txt"}
    assert files["tool.tar.gz"]["sha256"] == d["sha256"] and files["tool.tar.gz"]["size"] == len(data)
    assert files["tool.tar.gz"]["modified"].endswith("Z")
    assert curl(f"{base}/tools/cli/1.4?list").json() == r.json()
    r2 = curl("-H", f"If-None-Match: {r.headers['etag']}", f"{base}/tools/cli/1.4/")
    assert r2.status == 304
    assert curl(f"{base}/tools/nope/").status == 404
    r = curl(f"{base}/tools/cli")  # a directory asked for as a file
    assert r.status == 404 and "is a directory" in r.error

    # delete needs admin: a write token is refused, the admin token removes the path in a new version
    writer = server.create_token("gen-writer", {repo: "write"})
    r = curl("-X", "DELETE", "-H", f"Authorization: Bearer {writer}", f"{base}/tools/cli/1.4/tool.tar.gz")
    assert r.status == 403
    r = curl(*auth, "-X", "DELETE", f"{base}/tools/cli/1.4/tool.tar.gz")
    assert r.status == 200 and r.json()["deleted"] == ["tools/cli/1.4/tool.tar.gz"]
    assert stats(server, repo)["version"] == version + 1
    assert curl(f"{base}/tools/cli/1.4/tool.tar.gz").status == 404
    assert [f["name"] for f in curl(f"{base}/tools/cli/1.4/").json()["files"]] == ["résumé notes.txt"]
    assert curl(*auth, "-X", "DELETE", f"{base}/tools/cli/1.4/tool.tar.gz").status == 404
    # a deleted path is not reused for other bytes (immutable paths)
    r = curl(*auth, "-T", _file(tmp_path, "new", b"new bytes"), f"{base}/tools/cli/1.4/tool.tar.gz")
    assert r.status == 409 and "deleted" in r.error
    # deleting the last file of a directory removes the directory from the listings
    assert curl(*auth, "-X", "DELETE", f"{base}/tools/cli/1.4/r%C3%A9sum%C3%A9%20notes.txt").status == 200
    assert curl(f"{base}/").json()["directories"] == []
    assert curl(f"{base}/tools/").status == 404


def test_overwrite_when_the_repository_allows_it(server, curl: Curl, tmp_path: Path) -> None:
    repo = make_repo(server, allow_overwrite=True)
    url = f"{server.url}/{repo}/latest/build.bin"
    auth = ["-H", f"Authorization: Bearer {server.token}"]
    assert curl(*auth, "-T", _file(tmp_path, "a", b"first"), url).status == 201
    r = curl(*auth, "-T", _file(tmp_path, "b", b"second"), url)
    assert r.status == 201 and r.json()["checksums"]["sha256"] == hashlib.sha256(b"second").hexdigest()
    assert curl(url).body == b"second"
    assert len(curl(f"{server.url}/{repo}/latest/").json()["files"]) == 1


def test_directory_delete_and_file_directory_conflicts(server, curl: Curl, tmp_path: Path) -> None:
    repo = make_repo(server)
    base = f"{server.url}/{repo}"
    auth = ["-H", f"Authorization: Bearer {server.token}"]
    f = _file(tmp_path, "x", b"x")
    for p in ("rel/1.0/a.bin", "rel/1.0/sub/b.bin", "rel/2.0/c.bin", "top.txt"):
        assert curl(*auth, "-T", f, f"{base}/{p}").status == 201
    r = curl(*auth, "-T", f, f"{base}/top.txt/inner.bin")  # under a file
    assert r.status == 409 and "is a file" in r.error
    r = curl(*auth, "-T", f, f"{base}/rel/1.0")  # over a directory
    assert r.status == 409 and "is a directory" in r.error
    r = curl(*auth, "-X", "DELETE", f"{base}/rel/1.0/")
    assert r.status == 200 and r.json()["deleted"] == ["rel/1.0/a.bin", "rel/1.0/sub/b.bin"]
    assert [d["name"] for d in curl(f"{base}/rel/").json()["directories"]] == ["2.0"]
    # the identical bytes at another path still download after the link they shared was removed
    assert curl(f"{base}/rel/2.0/c.bin").body == b"x"


@pytest.mark.parametrize("style", ["basic", "bearer"])
def test_private_repository_needs_a_token(server, curl: Curl, tmp_path: Path, style: str) -> None:
    repo = make_repo(server, private=True)
    url = f"{server.url}/{repo}/secret/app.bin"
    reader = server.create_token(f"gen-read-{style}", {repo: "read"})
    writer = server.create_token(f"gen-write-{style}", {repo: "write"})

    def cred(token: str) -> list[str]:
        return ["-u", f"__token__:{token}"] if style == "basic" else ["-H", f"Authorization: Bearer {token}"]

    src = _file(tmp_path, "app.bin", b"private bytes")
    r = curl("-T", src, url)
    assert r.status == 401 and r.headers["www-authenticate"].startswith("Basic")
    assert curl(*cred(reader), "-T", src, url).status == 403
    assert curl(*cred(writer), "-T", src, url).status == 201
    assert curl(url).status == 401 and curl(f"{server.url}/{repo}/").status == 401
    r = curl(*cred(reader), url)
    assert r.status == 200 and r.body == b"private bytes"
    assert curl(*cred(reader), f"{server.url}/{repo}/secret/").json()["files"][0]["name"] == "app.bin"
