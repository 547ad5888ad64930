"""Copies by reference are downloadable from the destination in every format: npm installs from it (the real npm),
Maven, Cargo and generic files are served there with the source's bytes and listed in its metadata. And the rules:
who may copy/move, what is refused, the stage path of ``promote``."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import zipfile

import httpx
import pytest

from tests.support.cargo_crates import crate_bytes, metadata, publish_body
from tests.support.npm_clients import NpmClient, make_project, pack_tarball, publish_document

from tests.conftest import unique

from .conftest import files_of, promote, python_package, repo, wharf


def _npm_publish(server, repo_name: str, name: str, version: str, deps: dict[str, str] | None = None) -> bytes:
    manifest = {"name": name, "version": version, "main": "index.js", **({"dependencies": deps} if deps else {})}
    tarball = pack_tarball(manifest, members=[("package/index.js", f"module.exports = '{name}@{version}';\n".encode())])
    doc = publish_document(name, version, tarball, manifest={k: v for k, v in manifest.items() if k not in ("name", "version")})
    r = httpx.put(f"{server.url}/{repo_name}/{name.replace('/', '%2f')}", json=doc,
                  headers={"Authorization": f"Bearer {server.token}"}, timeout=60)
    assert r.status_code in (200, 201), r.text
    return tarball


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_npm_install_from_the_destination(sqlite_server, tmp_path):
    srv = sqlite_server
    dev, staging = repo(srv, "npmdev", format="npm"), repo(srv, "npmstg", format="npm")
    lib = _npm_publish(srv, dev, "@acme/plib", "1.0.0")
    _npm_publish(srv, dev, "pgreeter", "2.1.0", deps={"@acme/plib": "^1.0.0"})
    _npm_publish(srv, dev, "pgreeter", "2.2.0-beta.1", deps={"@acme/plib": "^1.0.0"})
    for package in ("@acme/plib", "pgreeter@2.1.0"):
        name, _, version = package[1:].partition("@") if package.startswith("@") else package.partition("@")
        name = "@" + name if package.startswith("@") else name
        r = promote(srv, source=dev, destination=staging, package=name, version=version or None)
        assert r.status_code == 200 and r.json()["added"], r.text
    reg = f"{srv.url}/{staging}/"
    full = httpx.get(reg + "pgreeter").json()
    assert list(full["versions"]) == ["2.1.0"] and full["dist-tags"] == {"latest": "2.1.0"}
    tgz = httpx.get(f"{reg}@acme/plib/-/plib-1.0.0.tgz")
    assert tgz.status_code == 200 and tgz.content == lib
    app = make_project(tmp_path / "src", "app", "0.0.1", dependencies={"pgreeter": "^2.0.0"}, extra={"private": True})
    res = NpmClient(tmp_path, reg, name="installer").run("install", cwd=app)
    assert res.ok, res
    installed = json.loads((app / "node_modules" / "pgreeter" / "package.json").read_text())
    assert installed["version"] == "2.1.0"
    lock = json.loads((app / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@acme/plib"]["resolved"] == f"{reg}@acme/plib/-/plib-1.0.0.tgz"


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_npm_dist_tags_travel_with_the_promoted_versions(sqlite_server, npm, project):
    """npm publish --tag / npm dist-tag add in dev; wharf promote; npm view / npm install pkg@beta from prod."""
    srv = sqlite_server
    prod = repo(srv, "npmprod", format="npm")
    dev = repo(srv, "npmdev", format="npm", promote_to=prod)
    publisher = npm(f"{srv.url}/{dev}/", srv.token, name="publisher")
    for version, tag in (("1.0.0", "latest"), ("2.0.0-beta.1", "beta")):
        res = publisher.run("publish", "--tag", tag, cwd=project("tagged", version))
        assert res.ok, res
    res = publisher.run("dist-tag", "add", "tagged@1.0.0", "stable")
    assert res.ok, res
    user = npm(f"{srv.url}/{prod}/", name="installer")

    def prod_tags() -> dict[str, str]:
        res = user.run("view", "tagged", "dist-tags", "--json")
        assert res.ok, res
        return res.json()  # type: ignore[no-any-return]

    # the beta alone: its tag goes along; 'latest' and 'stable' name 1.0.0, which stays in dev
    r = wharf(srv, "promote", f"{dev}/tagged@2.0.0-beta.1", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["state"] == {"dist-tags": {"beta": "2.0.0-beta.1"}}
    res = user.run("view", "tagged@beta", "version")
    assert res.ok and res.stdout.strip() == "2.0.0-beta.1", res
    app = project("app", "0.0.1", extra={"private": True})
    res = user.run("install", "tagged@beta", cwd=app)
    assert res.ok, res
    assert json.loads((app / "node_modules" / "tagged" / "package.json").read_text())["version"] == "2.0.0-beta.1"

    # the release: 'latest' and 'stable' follow it (the beta served as 'latest' meanwhile holds nothing back)
    r = wharf(srv, "promote", f"{dev}/tagged@1.0.0")
    assert r.returncode == 0 and f"dist-tags in {prod}" in r.stderr, r.stdout + r.stderr  # the CLI says what moved
    assert prod_tags() == {"latest": "1.0.0", "beta": "2.0.0-beta.1", "stable": "1.0.0"}

    # prod's beta is ahead (beta.2 promoted with its tag); dev points beta back at beta.1 and promotes it again:
    # prod's tag is not set back to the older version
    res = publisher.run("publish", "--tag", "beta", cwd=project("tagged", "2.0.0-beta.2"))
    assert res.ok, res
    assert wharf(srv, "promote", f"{dev}/tagged@2.0.0-beta.2").returncode == 0
    assert publisher.run("dist-tag", "add", "tagged@2.0.0-beta.1", "beta").ok
    r = wharf(srv, "promote", f"{dev}/tagged@2.0.0-beta.1", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["state"] == {}, r.stdout + r.stderr
    assert prod_tags() == {"latest": "1.0.0", "beta": "2.0.0-beta.2", "stable": "1.0.0"}
    res = user.run("view", "tagged@beta", "version")
    assert res.ok and res.stdout.strip() == "2.0.0-beta.2", res


def test_cargo_crate_is_downloadable_and_indexed_in_the_destination(sqlite_server):
    srv = sqlite_server
    dev, staging = repo(srv, "crdev", format="cargo"), repo(srv, "crstg", format="cargo")
    crate = crate_bytes("pcrate", "1.0.0")
    r = httpx.put(f"{srv.url}/{dev}/api/v1/crates/new", headers={"Authorization": srv.token},
                  content=publish_body(metadata("pcrate", "1.0.0"), crate))
    assert r.status_code == 200, r.text
    owners = httpx.get(f"{srv.url}/{dev}/api/v1/crates/pcrate/owners").json()["users"]
    assert [u["login"] for u in owners]  # the first publisher owns the crate in dev
    r = promote(srv, source=dev, destination=staging, package="pcrate")
    assert r.status_code == 200 and len(r.json()["added"]) == 1, r.text
    assert r.json()["state"] == {"owners": [u["login"] for u in owners]}  # and in staging, where it had none
    assert httpx.get(f"{srv.url}/{staging}/api/v1/crates/pcrate/owners").json()["users"] == owners
    got = httpx.get(f"{srv.url}/{staging}/api/v1/crates/pcrate/1.0.0/download", follow_redirects=True)
    assert got.status_code == 200 and got.content == crate
    index = httpx.get(f"{srv.url}/{staging}/index/pc/ra/pcrate")
    assert index.status_code == 200, index.text
    entry = json.loads(index.text.splitlines()[0])
    assert entry["vers"] == "1.0.0" and entry["cksum"] == hashlib.sha256(crate).hexdigest()


def _jar() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        z.writestr("org/acme/Lib.class", b"\xca\xfe\xba\xbe")
    return buf.getvalue()


POM = b"""<project><modelVersion>4.0.0</modelVersion><groupId>com.acme</groupId><artifactId>plib</artifactId>
<version>1.0</version></project>"""


def test_maven_files_are_downloadable_and_listed_in_the_destination(sqlite_server):
    srv = sqlite_server
    dev, staging = repo(srv, "mvdev", format="maven"), repo(srv, "mvstg", format="maven")
    jar = _jar()
    base = "com/acme/plib/1.0"
    for filename, data in (("plib-1.0.pom", POM), ("plib-1.0.jar", jar)):
        r = httpx.put(f"{srv.url}/{dev}/{base}/{filename}", content=data, auth=("x", srv.token))
        assert r.status_code == 201, r.text
    r = promote(srv, source=dev, destination=staging, package="com.acme:plib", version="1.0")
    assert r.status_code == 200 and len(r.json()["added"]) == 2, r.text
    got = httpx.get(f"{srv.url}/{staging}/{base}/plib-1.0.jar")
    assert got.status_code == 200 and got.content == jar
    sha1 = httpx.get(f"{srv.url}/{staging}/{base}/plib-1.0.jar.sha1")
    assert sha1.status_code == 200 and sha1.text.strip() == hashlib.sha1(jar).hexdigest()
    meta = httpx.get(f"{srv.url}/{staging}/com/acme/plib/maven-metadata.xml")
    assert meta.status_code == 200 and "<version>1.0</version>" in meta.text


def test_generic_files_are_downloadable_and_listed_in_the_destination(sqlite_server):
    srv = sqlite_server
    dev, staging = repo(srv, "gndev", format="generic"), repo(srv, "gnstg", format="generic")
    data = b"generic bytes\n" * 100
    r = httpx.put(f"{srv.url}/{dev}/tools/cli/1.4/tool.tar.gz", content=data, auth=("x", srv.token))
    assert r.status_code == 201, r.text
    packages = srv.api("GET", f"/api/v1/repositories/{dev}/packages").json()
    r = promote(srv, source=dev, destination=staging, package=packages[0])
    assert r.status_code == 200 and len(r.json()["added"]) == 1, r.text
    got = httpx.get(f"{srv.url}/{staging}/tools/cli/1.4/tool.tar.gz")
    assert got.status_code == 200 and got.content == data
    listing = httpx.get(f"{srv.url}/{staging}/tools/cli/1.4/", headers={"Accept": "application/json"})
    assert listing.status_code == 200 and "tool.tar.gz" in listing.text


# -- rules (SQLite: the subject is not the database) -------------------------------------------------------
def test_authorization_read_source_write_destination_admin_source_for_mv(sqlite_server, tmp_path):
    server = sqlite_server
    dev, staging = repo(server, "dev", private=True), repo(server, "stg")
    python_package(server, dev, tmp_path, "guarded", ("1.0",), sdist=False)
    reader = server.create_token(unique("rd"), {dev: "read", staging: "read"})
    writer = server.create_token(unique("wr"), {dev: "read", staging: "write"})
    outsider = server.create_token(unique("out"), {staging: "write"})
    body = {"source": dev, "destination": staging, "package": "guarded"}
    assert promote(server, token=None, **body).status_code == 401
    r = promote(server, token=reader, **body)
    assert r.status_code == 403 and staging in r.json()["error"]
    r = promote(server, token=outsider, **body)  # may write there, but cannot read the private source
    assert r.status_code == 403 and dev in r.json()["error"]
    r = promote(server, token=writer, **{**body, "operation": "move"})  # a move deletes: admin on the source
    assert r.status_code == 403 and "admin" in r.json()["error"]
    assert promote(server, token=writer, **body).status_code == 200
    # the trail hides what the caller cannot read: the private source's upload, the copy's source name
    anon = server.api("GET", "/api/v1/packages/python/guarded/trail", token=None).json()
    assert [e["event"] for e in anon["events"]] == ["copy"] and anon["events"][0]["source"] is None

def test_refusals_other_format_group_proxy_same_repo(sqlite_server, tmp_path):
    server = sqlite_server
    dev = repo(server, "dev")
    python_package(server, dev, tmp_path, "refused", ("1.0",), sdist=False)
    npm = repo(server, "npm", format="npm")
    group = repo(server, "grp", kind="group", members=[dev])
    proxy = repo(server, "prx", kind="proxy", upstream={"url": "http://127.0.0.1:9/simple/"})
    for dest, words in ((npm, "one format"), (group, "group"), (proxy, "proxy"), (dev, "same repository")):
        r = promote(server, source=dev, destination=dest, package="refused")
        assert r.status_code == 400 and words in r.json()["error"], (dest, r.text)
    r = promote(server, source=group, destination=repo(server, "x"), package="refused")
    assert r.status_code == 400 and "member" in r.json()["error"]
    r = promote(server, source=dev, destination=repo(server, "y"), package="nope")
    assert r.status_code == 404

def test_promote_follows_the_stage_path(sqlite_server, tmp_path):
    server = sqlite_server
    prod = repo(server, "prd")
    staging = repo(server, "stg", promote_to=prod)
    python_package(server, staging, tmp_path, "staged", ("3.0",), sdist=False)
    r = wharf(server, "promote", f"{staging}/staged@3.0")  # no destination: the next stage
    assert r.returncode == 0, r.stderr
    assert "promoted staged" in r.stderr and prod in r.stderr
    assert list(files_of(server, prod, "staged")) == ["staged-3.0-py3-none-any.whl"]
    r = promote(server, source=staging, destination=repo(server, "elsewhere"), package="staged", operation="promote")
    assert r.status_code == 400 and f"leads to '{prod}'" in r.json()["error"]
    r = promote(server, source=prod, package="staged", operation="promote")
    assert r.status_code == 400 and "promote_to" in r.json()["error"]
    entries = server.api("GET", "/api/v1/promotions", params={"repository": prod}).json()
    assert entries[0]["operation"] == "promote" and entries[0]["files"][0]["status"] == "added"
