"""pip, uv and twine against a real server, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.support import artifacts


def make_wheel(d: Path, *a, **kw) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return artifacts.make_wheel(d, *a, **kw)


def make_sdist(d: Path, *a, **kw) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return artifacts.make_sdist(d, *a, **kw)
from tests.support.clients import pip_install, twine_upload, uv_pip_install, uv_publish


def _installed(target: Path, dist: str, version: str) -> bool:
    return (target / f"{dist}-{version}.dist-info").is_dir()


def test_twine_upload_then_pip_and_uv_install(server, repo_name, tmp_path):
    server.create_repo(repo_name)
    dist = tmp_path / "dist"
    files = [make_wheel(dist, "Acme.Widget", "1.0", requires_python=">=3.8"), make_sdist(dist, "Acme.Widget", "1.0"),
             make_wheel(dist, "Acme.Widget", "1.1")]
    res = twine_upload(tmp_path, f"{server.url}/{repo_name}/legacy/", files, token=server.token)
    assert res.ok, res
    index = f"{server.url}/{repo_name}/simple/"
    res = pip_install(tmp_path, index, "acme-widget==1.0", target=tmp_path / "pip")
    assert res.ok, res
    assert _installed(tmp_path / "pip", "acme_widget", "1.0")
    res = uv_pip_install(tmp_path, index, "acme-widget", target=tmp_path / "uv")
    assert res.ok, res
    assert _installed(tmp_path / "uv", "acme_widget", "1.1")


def test_uv_publish_and_identical_reupload_is_noop(server, repo_name, tmp_path):
    server.create_repo(repo_name)
    wheel = make_wheel(tmp_path / "dist", "uvpub", "2.0")
    url = f"{server.url}/{repo_name}/legacy/"
    res = uv_publish(tmp_path, url, [wheel], token=server.token)
    assert res.ok, res
    # the identical file again (a CI retry) succeeds without changing anything
    res = twine_upload(tmp_path, url, [wheel], token=server.token)
    assert res.ok, res
    r = httpx.get(f"{server.url}/api/v1/repositories/{repo_name}", headers={"Authorization": f"Bearer {server.token}"})
    assert r.json()["stats"]["files"] == 1
    assert r.json()["version"] == 1  # one change: the no-op made no new repository version


def test_same_filename_different_content_is_refused_and_skip_existing_works(server, repo_name, tmp_path):
    server.create_repo(repo_name)
    first = make_wheel(tmp_path / "a", "clash", "1.0", summary="first")
    second = make_wheel(tmp_path / "b", "clash", "1.0", summary="second")
    assert first.name == second.name and first.read_bytes() != second.read_bytes()
    url = f"{server.url}/{repo_name}/legacy/"
    assert twine_upload(tmp_path, url, [first], token=server.token).ok
    res = twine_upload(tmp_path, url, [second], token=server.token, extra_args=["--verbose"])
    assert not res.ok
    assert "File already exists" in res.output
    # twine 7 allows --skip-existing only for the public index (a client-side check). What it would do with our
    # answer is decided by twine's own skip_upload(): feed it the real response to the real upload.
    import requests
    from twine.commands.upload import skip_upload
    from tests.support.artifacts import upload_form
    form = upload_form(second, second.name, "clash", "1.0")
    resp = requests.post(url, data=form, files={"content": (second.name, second.read_bytes())},
                         auth=("__token__", server.token), timeout=30)
    assert resp.status_code == 400 and resp.text.count("File already exists") == 1
    assert skip_upload(resp, True, None)
    # uv publish --check-url skips a file the index already has (identical content)
    res = uv_publish(tmp_path, url, [first], token=server.token,
                     extra_args=["--check-url", f"{server.url}/{repo_name}/simple/"])
    assert res.ok, res
    assert "skipping" in res.output.lower(), res
    # uv refuses to "skip" a different local file with the same name
    res = uv_publish(tmp_path, url, [second], token=server.token,
                     extra_args=["--check-url", f"{server.url}/{repo_name}/simple/"])
    assert not res.ok and "Local file and index file" in res.output
    page = httpx.get(f"{server.url}/{repo_name}/simple/clash/").text
    import hashlib
    assert hashlib.sha256(first.read_bytes()).hexdigest() in page  # the first upload is what stays


def test_simple_index_protocol(server, repo_name, tmp_path):
    server.create_repo(repo_name)
    dist = tmp_path / "dist"
    wheel = make_wheel(dist, "Proto_Pkg", "3.0", requires_python=">=3.9")
    sdist = make_sdist(dist, "Proto_Pkg", "3.0")
    assert twine_upload(tmp_path, f"{server.url}/{repo_name}/legacy/", [wheel, sdist], token=server.token).ok
    base = f"{server.url}/{repo_name}/simple"
    with httpx.Client() as c:
        # non-normalized names redirect to the normalized URL
        r = c.get(f"{base}/Proto_Pkg/")
        assert r.status_code == 301 and r.headers["location"].endswith(f"/{repo_name}/simple/proto-pkg/")
        assert c.get(f"{base}/proto-pkg").status_code == 301
        html = c.get(f"{base}/proto-pkg/")
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert html.headers["vary"] == "Accept"
        assert 'data-requires-python="&gt;=3.9"' in html.text
        assert "data-core-metadata=\"sha256=" in html.text
        # PEP 691 JSON by content negotiation (pip's exact Accept header)
        pip_accept = ("application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
                      "text/html; q=0.01")
        j = c.get(f"{base}/proto-pkg/", headers={"Accept": pip_accept})
        assert j.headers["content-type"] == "application/vnd.pypi.simple.v1+json"
        doc = j.json()
        assert doc["meta"]["api-version"] == "1.1" and doc["name"] == "proto-pkg" and doc["versions"] == ["3.0"]
        by_name = {f["filename"]: f for f in doc["files"]}
        wf = by_name[wheel.name]
        assert wf["size"] == wheel.stat().st_size and wf["requires-python"] == ">=3.9" and wf["upload-time"].endswith("Z")
        assert by_name[sdist.name]["core-metadata"] is False
        # files: the digest in the index is the file's, Range and ETag work, the metadata file is served
        file_url = httpx.URL(j.url).join(wf["url"])
        blob = c.get(file_url)
        assert blob.content == wheel.read_bytes()
        assert blob.headers["content-length"] == str(wheel.stat().st_size)
        import hashlib
        assert hashlib.sha256(blob.content).hexdigest() == wf["hashes"]["sha256"]
        part = c.get(file_url, headers={"Range": "bytes=0-9"})
        assert part.status_code == 206 and part.content == wheel.read_bytes()[:10]
        assert c.get(file_url, headers={"If-None-Match": blob.headers["etag"]}).status_code == 304
        meta = c.get(str(file_url) + ".metadata")
        assert meta.status_code == 200 and hashlib.sha256(meta.content).hexdigest() == wf["core-metadata"]["sha256"]
        assert b"Name: Proto_Pkg" in meta.content or b"Name: Proto-Pkg" in meta.content or b"Name: proto" in meta.content.lower()
        # index ETag -> 304
        assert c.get(f"{base}/proto-pkg/", headers={"If-None-Match": html.headers["etag"]}).status_code == 304
        # root list in both forms
        assert 'href="proto-pkg/"' in c.get(f"{base}/").text
        root = c.get(f"{base}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
        assert {"name": "proto-pkg"} in root["projects"]
        # unknown project, unacceptable type
        assert c.get(f"{base}/nope/").status_code == 404
        assert c.get(f"{base}/proto-pkg/", headers={"Accept": "application/xml"}).status_code == 406


def test_yank_hides_release_from_resolution(server, repo_name, tmp_path):
    server.create_repo(repo_name)
    dist = tmp_path / "dist"
    files = [make_wheel(dist, "yanky", "1.0"), make_wheel(dist, "yanky", "2.0")]
    assert twine_upload(tmp_path, f"{server.url}/{repo_name}/legacy/", files, token=server.token).ok
    r = server.api("POST", f"/api/v1/repositories/{repo_name}/packages/yanky/versions/2.0/yank", json={"reason": "broken"})
    assert r.status_code == 200, r.text
    page = httpx.get(f"{server.url}/{repo_name}/simple/yanky/").text
    assert 'data-yanked="broken"' in page
    index = f"{server.url}/{repo_name}/simple/"
    res = pip_install(tmp_path, index, "yanky", target=tmp_path / "t1")
    assert res.ok and _installed(tmp_path / "t1", "yanky", "1.0"), res
    # an exact pin still installs a yanked release (PEP 592)
    res = pip_install(tmp_path, index, "yanky==2.0", target=tmp_path / "t2")
    assert res.ok and _installed(tmp_path / "t2", "yanky", "2.0"), res
    r = server.api("DELETE", f"/api/v1/repositories/{repo_name}/packages/yanky/versions/2.0/yank")
    assert r.status_code == 200
    res = pip_install(tmp_path, index, "yanky", target=tmp_path / "t3")
    assert res.ok and _installed(tmp_path / "t3", "yanky", "2.0"), res


def test_json_api_shape(server, repo_name, tmp_path):
    server.create_repo(repo_name)
    dist = tmp_path / "dist"
    files = [make_wheel(dist, "jsonapi", "1.0", requires_dist=["packaging>=20"]), make_wheel(dist, "jsonapi", "2.0rc1")]
    assert twine_upload(tmp_path, f"{server.url}/{repo_name}/legacy/", files, token=server.token).ok
    doc = httpx.get(f"{server.url}/{repo_name}/pypi/jsonapi/json").json()
    assert doc["info"]["version"] == "1.0"  # the newest final release, not the pre-release
    assert doc["info"]["requires_dist"] == ["packaging>=20"]
    assert set(doc["releases"]) == {"1.0", "2.0rc1"}
    url0 = doc["urls"][0]
    assert url0["digests"]["sha256"] and url0["digests"]["md5"] and url0["packagetype"] == "bdist_wheel"
    assert url0["url"].startswith(server.url)
    assert doc["vulnerabilities"] == []
    one = httpx.get(f"{server.url}/{repo_name}/pypi/jsonapi/2.0rc1/json").json()
    assert one["info"]["version"] == "2.0rc1" and "releases" not in one
    assert httpx.get(f"{server.url}/{repo_name}/pypi/jsonapi/9.9/json").status_code == 404


def test_delete_release_then_reupload_refused_unless_overwrite(server, tmp_path):
    from tests.conftest import unique
    strict, loose = unique("strict"), unique("loose")
    server.create_repo(strict)
    server.create_repo(loose, allow_overwrite=True)
    wheel = make_wheel(tmp_path / "d", "gone", "1.0")
    for repo in (strict, loose):
        assert twine_upload(tmp_path, f"{server.url}/{repo}/legacy/", [wheel], token=server.token).ok
        r = server.api("DELETE", f"/api/v1/repositories/{repo}/packages/gone/versions/1.0")
        assert r.status_code == 200 and r.json()["removed"] == [wheel.name], r.text
        assert httpx.get(f"{server.url}/{repo}/simple/gone/").status_code == 404
    res = twine_upload(tmp_path, f"{server.url}/{strict}/legacy/", [wheel], token=server.token, extra_args=["--verbose"])
    assert not res.ok and "deleted" in res.output
    assert twine_upload(tmp_path, f"{server.url}/{loose}/legacy/", [wheel], token=server.token).ok
    assert httpx.get(f"{server.url}/{loose}/simple/gone/").status_code == 200


def test_identical_retry_republishes_a_page_that_failed_to_publish(server, repo_name, tmp_path):
    server.create_repo(repo_name)
    wheel = make_wheel(tmp_path / "d", "republish", "1.0")
    url = f"{server.url}/{repo_name}/legacy/"
    assert twine_upload(tmp_path, url, [wheel], token=server.token).ok
    # simulate a crash between recording the upload and publishing it: the published tree loses the project
    import shutil
    shutil.rmtree(server.data / "pages" / repo_name / "files")
    (server.data / "pages" / repo_name / "simple" / "republish.page").unlink()
    assert httpx.get(f"{server.url}/{repo_name}/simple/republish/").status_code == 404
    assert twine_upload(tmp_path, url, [wheel], token=server.token).ok  # the CI retry
    res = pip_install(tmp_path, f"{server.url}/{repo_name}/simple/", "republish", target=tmp_path / "t")
    assert res.ok, res


def test_incremental_pages_equal_a_full_render(server, repo_name, tmp_path):
    """Uploads splice files into the stored page; a full re-render from the database must give the same page."""
    import subprocess
    from tests.support.server import WHARF_BIN
    server.create_repo(repo_name)
    url = f"{server.url}/{repo_name}/legacy/"
    files = []
    for i, (name, version) in enumerate([("inc-a", "1.0"), ("inc-a", "1.1"), ("inc-b", "1.0"), ("inc-a", "2.0"),
                                         ("inc-a", "2.0"), ("inc-b", "1.1")]):
        d = tmp_path / str(i)
        files.append(make_sdist(d, name, version) if i == 4 else make_wheel(d, name, version, requires_python=">=3.8"))
    for f in files:  # one by one: each upload takes the incremental path when it can
        assert twine_upload(tmp_path, url, [f], token=server.token).ok
    server.api("POST", f"/api/v1/repositories/{repo_name}/packages/inc-a/versions/1.1/yank", json={"reason": "x"})
    assert twine_upload(tmp_path, url, [make_wheel(tmp_path / "late", "inc-a", "3.0")], token=server.token).ok
    accept = {"Accept": "application/vnd.pypi.simple.v1+json"}

    def pages():
        out = {}
        for n in ("inc-a", "inc-b"):
            doc = httpx.get(f"{server.url}/{repo_name}/simple/{n}/", headers=accept).json()
            html = httpx.get(f"{server.url}/{repo_name}/simple/{n}/").text
            out[n] = (sorted(doc["versions"]), sorted(map(str, doc["files"])), sorted(html.splitlines()))
        return out

    before = pages()
    assert len(before["inc-a"][1]) == 5 and "3.0" in before["inc-a"][0]
    env = {"WHARF_DATABASE_URL": server.database_url} if server.database_url else {}
    import os
    res = subprocess.run([WHARF_BIN, "check", "--data", str(server.data), "--repair", "--grace", "999999"],
                         env={**os.environ, **env}, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    assert pages() == before
