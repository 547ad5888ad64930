"""Views of cargo, Maven and generic repositories are served by the same mechanism: a snapshot's index / metadata /
listing shows the pinned set, downloads work through the view, newer files are absent, writes are refused."""

from __future__ import annotations

import io
import zipfile

import httpx

from tests.conftest import unique
from tests.support.cargo_crates import crate_bytes, metadata, publish_body
from tests.support.generic_curl import Curl


def _snapshot(srv, repo: str, name: str) -> dict:
    r = srv.api("POST", f"/api/v1/repositories/{repo}/snapshots", json={"name": name})
    assert r.status_code == 201, r.text
    return r.json()


def test_cargo_view(sqlite_server):
    srv = sqlite_server
    repo = unique("cargosnap")
    srv.create_repo(repo, format="cargo")

    def publish(version: str) -> None:
        r = httpx.put(f"{srv.url}/{repo}/api/v1/crates/new", headers={"Authorization": srv.token}, timeout=30,
                      content=publish_body(metadata("snapcrate", version), crate_bytes("snapcrate", version)))
        assert r.status_code == 200, r.text

    publish("1.0.0")
    _snapshot(srv, repo, "r1")
    publish("2.0.0")
    view = f"{srv.url}/{repo}/~r1"
    with httpx.Client(timeout=30) as c:
        config = c.get(f"{view}/index/config.json").json()
        assert config["dl"] == f"{view}/api/v1/crates"
        lines = c.get(f"{view}/index/sn/ap/snapcrate").text.splitlines()
        assert [line.split('"vers":"')[1].split('"')[0] for line in lines] == ["1.0.0"]
        assert len(c.get(f"{srv.url}/{repo}/index/sn/ap/snapcrate").text.splitlines()) == 2
        assert c.get(f"{view}/api/v1/crates/snapcrate/1.0.0/download").status_code == 200
        assert c.get(f"{view}/api/v1/crates/snapcrate/2.0.0/download").status_code == 404
        r = c.put(f"{view}/api/v1/crates/new", headers={"Authorization": srv.token},
                  content=publish_body(metadata("snapcrate", "3.0.0"), crate_bytes("snapcrate", "3.0.0")))
        assert r.status_code == 405 and "read-only view" in r.json()["error"]


def _jar(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        zf.writestr("com/acme/Lib.class", text.encode())
    return buf.getvalue()


def _pom(version: str) -> bytes:
    return (f'<?xml version="1.0"?><project><modelVersion>4.0.0</modelVersion><groupId>com.acme</groupId>'
            f"<artifactId>snaplib</artifactId><version>{version}</version></project>").encode()


def test_maven_view(sqlite_server):
    srv = sqlite_server
    repo = unique("mvnsnap")
    srv.create_repo(repo, format="maven")
    base = f"{srv.url}/{repo}/com/acme/snaplib"
    with httpx.Client(timeout=30, auth=("ci", srv.token)) as c:
        jar1 = _jar("1.0")
        assert c.put(f"{base}/1.0/snaplib-1.0.pom", content=_pom("1.0")).status_code == 201
        assert c.put(f"{base}/1.0/snaplib-1.0.jar", content=jar1).status_code == 201
        _snapshot(srv, repo, "r1")
        assert c.put(f"{base}/2.0/snaplib-2.0.pom", content=_pom("2.0")).status_code == 201
        assert c.put(f"{base}/2.0/snaplib-2.0.jar", content=_jar("2.0")).status_code == 201
        vbase = f"{srv.url}/{repo}/~r1/com/acme/snaplib"
        meta = c.get(f"{vbase}/maven-metadata.xml")
        assert meta.status_code == 200 and "<version>1.0</version>" in meta.text and "2.0" not in meta.text
        assert "<version>2.0</version>" in c.get(f"{base}/maven-metadata.xml").text
        jar = c.get(f"{vbase}/1.0/snaplib-1.0.jar")
        assert jar.status_code == 200 and jar.content == jar1
        assert c.get(f"{vbase}/1.0/snaplib-1.0.jar.sha1").status_code == 200
        assert c.get(f"{vbase}/2.0/snaplib-2.0.jar").status_code == 404
        r = c.put(f"{vbase}/3.0/snaplib-3.0.jar", content=_jar("3.0"))
        assert r.status_code == 405


def test_generic_view_with_curl(sqlite_server, tmp_path):
    srv = sqlite_server
    curl = Curl(tmp_path)
    repo = unique("gensnap")
    srv.create_repo(repo, format="generic")
    auth = ("-H", f"Authorization: Bearer {srv.token}")
    base = f"{srv.url}/{repo}"
    (tmp_path / "a.txt").write_bytes(b"first release\n")
    (tmp_path / "b.txt").write_bytes(b"second release\n")
    assert curl(*auth, "-T", tmp_path / "a.txt", f"{base}/tools/1.0/tool.txt").status == 201
    _snapshot(srv, repo, "r1")
    assert curl(*auth, "-T", tmp_path / "b.txt", f"{base}/tools/2.0/tool.txt").status == 201
    assert curl("-X", "DELETE", *auth, f"{base}/tools/1.0/tool.txt").status == 200
    view = f"{base}/~r1"
    r = curl(f"{view}/tools/1.0/tool.txt")
    assert r.status == 200 and r.body == b"first release\n"
    assert curl(f"{view}/tools/2.0/tool.txt").status == 404
    assert curl(f"{base}/tools/1.0/tool.txt").status == 404
    listing = curl(f"{view}/tools/").json()
    assert [d["name"] for d in listing["directories"]] == ["1.0"]
    r = curl(*auth, "-T", tmp_path / "b.txt", f"{view}/tools/3.0/tool.txt")
    assert r.status == 405 and "read-only view" in r.error
    # a generic file may not take a '~' top-level name: that is where views are
    r = curl(*auth, "-T", tmp_path / "b.txt", f"{base}/~r2/tool.txt")
    assert r.status in (400, 405)
    r = httpx.put(f"{base}/x/~ok.txt", content=b"fine", headers={"Authorization": f"Bearer {srv.token}"})
    assert r.status_code == 201  # only the first segment is reserved
