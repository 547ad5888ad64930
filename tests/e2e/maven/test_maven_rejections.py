"""Malformed Maven uploads: each gets a clear 4xx, nothing is stored, and the server keeps serving."""

from __future__ import annotations

import hashlib
import http.client
import io
import zipfile

import httpx
import pytest

from tests.conftest import unique

from .conftest import create_repo

POM = b"""<?xml version="1.0"?>
<project><modelVersion>4.0.0</modelVersion>
<groupId>com.acme</groupId><artifactId>lib</artifactId><version>1.0</version></project>"""


def _jar(text: str = "hello") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        zf.writestr("com/acme/Lib.class", (text * 200).encode())
    return buf.getvalue()


JAR = _jar()


@pytest.fixture(scope="module")
def repo(sqlite_server):
    name = unique("mvnbad")
    create_repo(sqlite_server, name, max_upload_size=64 * 1024)
    return name


def _blobs(srv) -> set[str]:
    return {p.name for p in (srv.data / "blobs").rglob("*") if p.is_file()}


def _put(srv, repo, path, body, **headers):
    return httpx.put(f"{srv.url}/{repo}/{path}", content=body, headers=headers, auth=("ci", srv.token), timeout=30)


def _raw(srv, method: str, raw_path: str, body: bytes = b"") -> tuple[int, bytes]:
    """A request whose path is sent exactly as written (no client-side normalisation of '..' or '%2e')."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    import base64
    auth = base64.b64encode(f"ci:{srv.token}".encode()).decode()
    conn.request(method, raw_path, body=body or None, headers={"Authorization": f"Basic {auth}"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


BAD_UPLOADS = [
    # (id, path, body, headers, status, words in the message)
    ("jar-wrong-sha1-header", "com/acme/lib/1.0/lib-1.0.jar", JAR, {"X-Checksum-Sha1": "0" * 40}, 400, "checksum mismatch"),
    ("jar-wrong-sha256-header", "com/acme/lib/1.0/lib-1.0.jar", JAR, {"X-Checksum-Sha256": "f" * 64}, 400,
     "checksum mismatch"),
    ("truncated-jar", "com/acme/lib/1.0/lib-1.0.jar", JAR[: len(JAR) // 2], {}, 400, "truncated or corrupt"),
    ("corrupt-jar", "com/acme/lib/1.0/lib-1.0.jar", JAR[:40] + b"\x00" * 40 + JAR[80:], {}, 400, "corrupt"),
    ("not-a-zip-war", "com/acme/lib/1.0/lib-1.0.war", b"this is text, not a war", {}, 400, "not a readable"),
    ("empty-jar", "com/acme/lib/1.0/lib-1.0.jar", b"", {}, 400, "empty"),
    ("pom-not-xml", "com/acme/lib/1.0/lib-1.0.pom", b"{\"not\": \"xml\"}", {}, 400, "not well-formed XML"),
    ("pom-truncated", "com/acme/lib/1.0/lib-1.0.pom", POM[:-30], {}, 400, "not well-formed XML"),
    ("pom-wrong-root", "com/acme/lib/1.0/lib-1.0.pom", b"<html><body/></html>", {}, 400, "not a Maven POM"),
    ("pom-wrong-group", "com/acme/lib/1.0/lib-1.0.pom", POM.replace(b"com.acme", b"com.evil"), {}, 400,
     "groupId 'com.evil' does not match"),
    ("pom-wrong-artifact", "com/acme/lib/1.0/lib-1.0.pom", POM.replace(b"<artifactId>lib", b"<artifactId>other"), {},
     400, "artifactId 'other' does not match"),
    ("pom-wrong-version", "com/acme/lib/1.0/lib-1.0.pom", POM.replace(b"<version>1.0", b"<version>6.6"), {}, 400,
     "version '6.6' does not match"),
    ("pom-xxe", "com/acme/lib/1.0/lib-1.0.pom",
     b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]><project>&x;</project>', {}, 400,
     "DOCTYPE"),
    ("filename-not-matching-dir", "com/acme/lib/1.0/other-1.0.jar", JAR, {}, 400, "does not match its directory"),
    ("filename-other-version", "com/acme/lib/1.0/lib-2.0.jar", JAR, {}, 400, "does not match its directory"),
    ("invalid-version", "com/acme/lib/1.0$x/lib-1.0$x.jar", JAR, {}, 400, "not a valid version"),
    ("invalid-group", "com/ac~me/lib/1.0/lib-1.0.jar", JAR, {}, 400, "not a valid groupId"),
    ("no-group", "lib/1.0/lib-1.0.jar", JAR, {}, 400, "not <group path>"),
    ("checksum-for-missing-file", "com/acme/lib/1.0/lib-7.0.jar.sha1", b"0" * 40, {}, 400, None),
    ("checksum-for-missing-file-2", "com/acme/missing/1.0/missing-1.0.jar.sha1", b"0" * 40, {}, 400,
     "upload the file first"),
    ("checksum-garbage", "com/acme/lib/1.0/lib-1.0.pom.sha1", b"not a checksum", {}, 400, "does not hold a sha1"),
    ("metadata-not-xml", "com/acme/lib/maven-metadata.xml", b"nope", {}, 400, "not well-formed XML"),
    ("metadata-other-artifact", "com/acme/lib/maven-metadata.xml",
     b"<metadata><groupId>com.acme</groupId><artifactId>evil</artifactId></metadata>", {}, 400, "artifactId 'evil'"),
    ("oversized", "com/acme/lib/1.0/lib-1.0-big.zip", b"x" * (128 * 1024), {}, 413, "too large"),
]


@pytest.mark.parametrize("case", BAD_UPLOADS, ids=[c[0] for c in BAD_UPLOADS])
def test_bad_upload_is_refused_and_nothing_is_stored(sqlite_server, repo, case):
    _id, path, body, headers, status, words = case
    srv = sqlite_server
    before = _blobs(srv)
    r = _put(srv, repo, path, body, **headers)
    assert r.status_code == status, r.text
    if words:
        assert words in r.json()["error"], r.json()
    assert _blobs(srv) == before
    if not path.endswith((".sha1", ".xml")):
        assert httpx.get(f"{srv.url}/{repo}/{path}").status_code == 404
    assert httpx.get(f"{srv.url}/health").status_code == 200


def test_oversized_chunked_body_without_length(sqlite_server, repo):
    srv = sqlite_server
    before = _blobs(srv)

    def chunks():
        for _ in range(64):
            yield b"y" * 4096

    r = httpx.put(f"{srv.url}/{repo}/com/acme/lib/1.0/lib-1.0-chunked.zip", content=chunks(), auth=("ci", srv.token))
    assert r.status_code == 413 and "too large" in r.json()["error"]
    assert _blobs(srv) == before


@pytest.mark.parametrize("raw", [
    "/{repo}/com/acme/../../../../etc/passwd",
    "/{repo}/com/%2e%2e/%2e%2e/etc/lib/1.0/lib-1.0.jar",
    "/{repo}/com/acme/lib/1.0/..%2f..%2flib-1.0.jar",
    "/{repo}//etc/acme/lib/1.0/lib-1.0.jar",
    "/{repo}/com/acme/lib/1.0/lib-1.0.jar%00.pom",
    "/{repo}/com\\acme/lib/1.0/lib-1.0.jar",
])
def test_path_traversal_is_refused(sqlite_server, repo, raw):
    srv = sqlite_server
    before = _blobs(srv)
    path = raw.format(repo=repo)
    status, body = _raw(srv, "PUT", path, JAR)
    assert status in (400, 404), body
    status, _ = _raw(srv, "GET", path)
    assert status in (400, 404)
    assert _blobs(srv) == before
    assert not list(srv.data.parent.rglob("passwd"))


def test_release_overwrite_is_refused_and_identical_reput_is_a_no_op(sqlite_server, repo):
    srv = sqlite_server
    path = "com/acme/lib/1.0/lib-1.0.jar"
    assert _put(srv, repo, path, JAR).status_code == 201
    assert _put(srv, repo, path, JAR).status_code == 200  # identical: no-op (CI retries are safe)
    before = _blobs(srv)
    r = _put(srv, repo, path, _jar("other"))
    assert r.status_code == 409 and "immutable" in r.json()["error"], r.text
    assert _blobs(srv) == before
    assert hashlib.sha256(httpx.get(f"{srv.url}/{repo}/{path}").content).hexdigest() == hashlib.sha256(JAR).hexdigest()
    # checksum files are verified against the stored file, not stored
    good = hashlib.sha1(JAR).hexdigest()
    assert _put(srv, repo, path + ".sha1", good.encode()).status_code == 201
    r = _put(srv, repo, path + ".sha1", hashlib.sha1(b"x").hexdigest().encode())
    assert r.status_code == 400 and "checksum mismatch" in r.json()["error"]
    assert httpx.get(f"{srv.url}/{repo}/{path}.sha1").text == good


def test_uploaded_metadata_is_validated_but_the_served_one_is_the_servers(sqlite_server, repo):
    srv = sqlite_server
    assert _put(srv, repo, "com/acme/meta/1.0/meta-1.0.pom",
                POM.replace(b"<artifactId>lib", b"<artifactId>meta")).status_code == 201
    lying = (b"<metadata><groupId>com.acme</groupId><artifactId>meta</artifactId><versioning><latest>99.0</latest>"
             b"<release>99.0</release><versions><version>1.0</version><version>99.0</version></versions></versioning>"
             b"</metadata>")
    assert _put(srv, repo, "com/acme/meta/maven-metadata.xml", lying).status_code == 201
    # its own checksum upload matches what was uploaded, so mvn's deploy sequence succeeds
    assert _put(srv, repo, "com/acme/meta/maven-metadata.xml.sha1", hashlib.sha1(lying).hexdigest().encode()).status_code == 201
    served = httpx.get(f"{srv.url}/{repo}/com/acme/meta/maven-metadata.xml").text
    assert "99.0" not in served and "<release>1.0</release>" in served
    assert httpx.get(f"{srv.url}/{repo}/com/acme/meta/maven-metadata.xml.sha1").text == \
        hashlib.sha1(served.encode()).hexdigest()


def test_deleting_a_version_unpublishes_it_and_rerenders_metadata(sqlite_server, repo):
    srv = sqlite_server
    base = f"{srv.url}/{repo}/com/acme/gone"
    for v in ("1.0", "2.0"):
        pom = POM.replace(b"<artifactId>lib", b"<artifactId>gone").replace(b"<version>1.0", f"<version>{v}".encode())
        assert _put(srv, repo, f"com/acme/gone/{v}/gone-{v}.pom", pom).status_code == 201
        assert _put(srv, repo, f"com/acme/gone/{v}/gone-{v}.jar", JAR).status_code == 201
    assert "<release>2.0</release>" in httpx.get(f"{base}/maven-metadata.xml").text
    r = srv.api("DELETE", f"/api/v1/repositories/{repo}/packages/com.acme:gone/versions/2.0")
    assert r.status_code == 200, r.text
    assert httpx.get(f"{base}/2.0/gone-2.0.jar").status_code == 404
    assert httpx.get(f"{base}/2.0/gone-2.0.jar.sha1").status_code == 404
    meta = httpx.get(f"{base}/maven-metadata.xml").text
    assert "2.0" not in meta and "<release>1.0</release>" in meta
    assert httpx.get(f"{base}/1.0/gone-1.0.jar").status_code == 200
    # a deleted release path cannot be deployed again
    r = _put(srv, repo, "com/acme/gone/2.0/gone-2.0.jar", JAR)
    assert r.status_code == 409 and "deleted" in r.json()["error"]
