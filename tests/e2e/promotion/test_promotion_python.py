"""Copy, move and promote Python packages by reference, on SQLite and PostgreSQL: pip and uv install from the
destination, conflicts, move, provenance trail (API and web page), bulk with a query (CLI)."""

from __future__ import annotations

import hashlib
import json

import httpx

from tests.support.blobs import blob_files
from tests.support.clients import pip_install, uv_pip_install

from .conftest import files_of, promote, python_package, repo, wharf


def test_cp_by_reference_then_pip_and_uv_install_from_the_destination(server, tmp_path):
    dev, staging = repo(server, "dev"), repo(server, "stg")
    files = python_package(server, dev, tmp_path, "Acme.Promo", ("1.0", "1.1"), requires_python=">=3.8")
    blobs_before = len(blob_files(server.data))

    r = wharf(server, "cp", f"{dev}/acme-promo@1.0", staging)
    assert r.returncode == 0, r.stderr
    assert "copied acme-promo" in r.stderr and "2 file(s) added" in r.stderr
    assert len(blob_files(server.data)) == blobs_before  # by reference: not one byte stored again
    src, dest = files_of(server, dev, "acme-promo"), files_of(server, staging, "acme-promo")
    assert set(dest) == {f.name for f in files if "-1.0" in f.name}
    uploaded = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    assert all(dest[fn] == src[fn] == uploaded[fn] for fn in dest)

    # pip and uv resolve and install from the destination (pip reads PEP 658 metadata there too)
    index = f"{server.url}/{staging}/simple/"
    page = httpx.get(index + "acme-promo/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    wheel = next(f for f in page["files"] if f["filename"].endswith(".whl"))
    assert wheel["hashes"]["sha256"] == src[wheel["filename"]] and wheel.get("core-metadata")
    meta = httpx.get(f"{index}acme-promo/{wheel['url']}.metadata", follow_redirects=True)
    assert meta.status_code == 200 and hashlib.sha256(meta.content).hexdigest() == wheel["core-metadata"]["sha256"]
    res = pip_install(tmp_path, index, "acme-promo", target=tmp_path / "pip")
    assert res.ok, res
    assert (tmp_path / "pip" / "acme_promo-1.0.dist-info").is_dir()  # 1.1 was not copied
    res = uv_pip_install(tmp_path, index, "acme-promo==1.0", target=tmp_path / "uv")
    assert res.ok, res

    # the same copy again is a no-op: everything is already there (identical), no conflict
    again = promote(server, source=dev, destination=staging, package="acme-promo", version="1.0")
    assert again.status_code == 200, again.text
    assert again.json()["added"] == [] and len(again.json()["identical"]) == 2
    assert again.json()["entries"] == []  # and no provenance entry or event for a change that did not happen

    # the trail: upload to dev, then the copy (who, from, to, digests), in the API and on the package page
    trail = server.api("GET", "/api/v1/packages/python/Acme.Promo/trail").json()
    kinds = [(e["event"], e["repository"]) for e in trail["events"]]
    assert ("upload", dev) in kinds and kinds.count(("copy", staging)) == 1
    copy = next(e for e in trail["events"] if e["event"] == "copy")
    assert copy["source"] == dev and copy["destination"] == staging and copy["version"] == "1.0"
    assert copy["actor"].startswith("token:admin") and copy["remote_addr"] == "127.0.0.1"
    assert {f["sha256"] for f in copy["files"]} == {dest[fn] for fn in dest}
    assert sorted(trail["live_in"]) == sorted([dev, staging])
    same = server.api("GET", f"/api/v1/repositories/{staging}/trail/acme-promo").json()
    assert same["events"] == json.loads(json.dumps(trail["events"]))
    html = httpx.get(f"{server.url}/ui/{staging}/acme-promo/").text
    assert "Trail" in html and f"/ui/{dev}/acme-promo/" in html and "copied" in html


def test_conflicts_are_refused_with_409_unless_skip_existing(server, tmp_path):
    dev, staging = repo(server, "dev"), repo(server, "stg")
    python_package(server, dev, tmp_path / "a", "clashy", ("1.0",), summary="first")
    python_package(server, staging, tmp_path / "b", "clashy", ("1.0",), sdist=False, summary="second")
    before = files_of(server, staging, "clashy")
    r = promote(server, source=dev, destination=staging, package="clashy")
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert "clashy-1.0-py3-none-any.whl" in err and "--skip-existing" in err
    assert files_of(server, staging, "clashy") == before  # nothing copied

    r = promote(server, source=dev, destination=staging, package="clashy", skip_existing=True)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [f["filename"] for f in body["added"]] == ["clashy-1.0.tar.gz"]
    assert [f["filename"] for f in body["skipped"]] == ["clashy-1.0-py3-none-any.whl"]
    after = files_of(server, staging, "clashy")
    assert after["clashy-1.0-py3-none-any.whl"] == before["clashy-1.0-py3-none-any.whl"]  # kept
    # the CLI says the same in words and exits 1 on the conflict
    r = wharf(server, "cp", f"{dev}/clashy", repo(server, "empty"))
    assert r.returncode == 0, r.stderr
    other = repo(server, "oth")
    python_package(server, other, tmp_path / "c", "clashy", ("1.0",), sdist=False, summary="third")
    r = wharf(server, "cp", f"{dev}/clashy", other)
    assert r.returncode == 1 and "409" in r.stderr and "conflict" in r.stderr


def test_mv_removes_from_the_source_only_what_the_destination_holds(server, tmp_path):
    dev, prod = repo(server, "dev"), repo(server, "prd")
    python_package(server, dev, tmp_path, "movable", ("1.0", "2.0"))
    r = wharf(server, "mv", f"{dev}/movable@1.0", prod)
    assert r.returncode == 0, r.stderr
    assert set(files_of(server, prod, "movable")) == {"movable-1.0-py3-none-any.whl", "movable-1.0.tar.gz"}
    assert set(files_of(server, dev, "movable")) == {"movable-2.0-py3-none-any.whl", "movable-2.0.tar.gz"}
    # downloadable from the destination, gone from the source's index
    page = httpx.get(f"{server.url}/{prod}/simple/movable/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    for f in page.json()["files"]:
        got = httpx.get(f"{server.url}/{prod}/simple/movable/" + f["url"], follow_redirects=True)
        assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == f["hashes"]["sha256"]
    src_page = httpx.get(f"{server.url}/{dev}/simple/movable/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert {f["filename"] for f in src_page.json()["files"]} == {"movable-2.0-py3-none-any.whl", "movable-2.0.tar.gz"}
    trail = server.api("GET", "/api/v1/packages/python/movable/trail").json()
    move = [e for e in trail["events"] if e["event"] == "move"]
    assert len(move) == 1 and move[0]["source"] == dev and move[0]["destination"] == prod
    assert not [e for e in trail["events"] if e["event"] == "removal"]  # the move explains the source's removal
    events = server.api("GET", "/api/v1/events", params={"repository": prod, "type": "package.moved"}).json()
    assert [(e["package"], e["version"], e["detail"]["from"]) for e in events] == [("movable", "1.0", dev)]
    assert {f["sha256"] for f in events[0]["files"]} == {f["sha256"] for f in move[0]["files"]}


def test_bulk_with_a_query_cli_progress_and_api_summary(server, tmp_path):
    dev, staging = repo(server, "dev"), repo(server, "stg")
    for name in ("acme-one", "acme-two", "other"):
        python_package(server, dev, tmp_path, name, ("1.0", "2.0"), sdist=False)
    python_package(server, staging, tmp_path / "x", "acme-two", ("2.0",), sdist=False, summary="different")

    plan = promote(server, source=dev, destination=staging, query="name:acme-* version:2.*", dry_run=True).json()
    assert [(i["name"], i["version"]) for i in plan["items"]] == [("acme-one", "2.0"), ("acme-two", "2.0")]

    r = wharf(server, "cp", dev, staging, "--query", "name:acme-* version:2.*", "--json")
    assert r.returncode == 1  # acme-two 2.0 conflicts
    summary = json.loads(r.stdout)
    assert [f["filename"] for f in summary["copied"]] == ["acme_one-2.0-py3-none-any.whl"]
    assert [(f["name"], f["status"]) for f in summary["failed"]] == [("acme-two", 409)]
    assert "2/2" in r.stderr  # the progress bar counted the items

    r = promote(server, source=dev, destination=staging, all=True, skip_existing=True)
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["items"] == 6 and not s["failed"]
    assert len(s["copied"]) == 4 and len(s["identical"]) == 1 and len(s["skipped"]) == 1
    assert set(server.api("GET", f"/api/v1/repositories/{staging}/packages").json()) == {"acme-one", "acme-two", "other"}
