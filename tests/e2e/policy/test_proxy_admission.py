"""A proxy's first fetch of a file is decided before its bytes reach anyone: quarantine, policies that need only the
package's name and version (vulnerabilities from advisories included) and package-scoped entitlements refuse the
fetch before the upstream is asked; a policy that needs the bytes (a licence) makes the proxy hold them until the
gate has passed the stored file. Python (pip, a fake upstream), Cargo and Maven proxies (of hosted repositories on
the same server, over loopback), and 403 instead of 404 for quarantined hosted Cargo and Maven files."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile

import httpx
import pytest

from tests.conftest import unique
from tests.support import artifacts
from tests.support.cargo_crates import crate_bytes, metadata, publish_body
from tests.support.clients import pip_install
from tests.support.fake_upstream import FakeUpstream
from tests.support.net import wait_until, with_credentials
from tests.support.osv_records import record

CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8


def _sqlite_only(server) -> None:
    if server.backend == "postgres":
        pytest.skip("the database is not this test's subject (runs on SQLite)")


def _policy(server, repo: str, name: str, expression: str, action: str, message: str) -> None:
    r = server.api("POST", "/api/v1/policies", json={
        "name": unique(name), "events": ["proxy_fetch"], "repositories": [repo], "action": action,
        "expression": expression, "message": message})
    assert r.status_code == 201, r.text


def _create(server, name: str, fmt: str, kind: str, private: bool = False, **config) -> None:
    r = server.api("POST", "/api/v1/repositories", json={"name": name, "format": fmt, "kind": kind, "private": private,
                                                          "config": config})
    assert r.status_code == 201, r.text


def _files_url(server, repo: str, name: str, filename: str) -> str:
    page = server.api("GET", f"/{repo}/simple/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert page.status_code == 200, page.text
    (entry,) = [f for f in page.json()["files"] if f["filename"] == filename]
    return f"{server.url}/{repo}/files/{entry['hashes']['sha256']}/{filename}"


def _blob_names(server) -> set[str]:
    return {p.name for p in (server.data / "blobs").rglob("*") if p.is_file()}


def test_python_proxy_decides_before_the_bytes_reach_the_client(server, tmp_path):
    evil, vuln, gpl, mit, held = (unique(n) for n in ("evilpkg", "vulnpkg", "copyleft", "permissive", "heldpkg"))
    wheels = {
        evil: {"1.0": artifacts.wheel_bytes(evil, "1.0")},
        vuln: {v: artifacts.wheel_bytes(vuln, v) for v in ("1.0", "2.0")},
        gpl: {"1.0": artifacts.wheel_bytes(gpl, "1.0", metadata_fields={"License": "GPL-3.0-only"})},
        mit: {"1.0": artifacts.wheel_bytes(mit, "1.0", metadata_fields={"License": "MIT"})},
        held: {"1.0": artifacts.wheel_bytes(held, "1.0")},
    }
    fname = {n: {v: f"{artifacts.dist_name(n)}-{v}-py3-none-any.whl" for v in vs} for n, vs in wheels.items()}
    r = server.api("POST", "/api/v1/advisories/import",
                   json=record(unique("WH-"), "PyPI", vuln, versions=["1.0"], cvss=CRITICAL))
    assert r.status_code == 200, r.text
    with FakeUpstream() as up:
        for n, vs in wheels.items():
            up.project(n, {fname[n][v]: data for v, data in vs.items()})
        proxy = unique("admpx")
        _create(server, proxy, "python", "proxy", upstream={"url": up.index_url})
        _policy(server, proxy, "no-evil", f'name == "{evil}"', "deny", "not from outside")
        _policy(server, proxy, "no-critical", 'vulnerabilities.max_severity == "critical"', "deny",
                "critical vulnerability")
        _policy(server, proxy, "no-gpl", 'license.startsWith("GPL")', "deny", "no GPL here")
        _policy(server, proxy, "review", f'name == "{held}"', "quarantine", "review first")
        index = f"{server.url}/{proxy}/simple/"

        # decided on the name, and on the advisories for name + version: refused, the upstream never asked
        for n, v, why in ((evil, "1.0", "not from outside"), (vuln, "1.0", "critical vulnerability")):
            r = httpx.get(_files_url(server, proxy, n, fname[n][v]))
            assert r.status_code == 403 and why in r.text, r.text
            assert up.count(f"/files/{fname[n][v]}") == 0
        assert not pip_install(tmp_path, index, f"{evil}==1.0").ok
        assert up.count(f"/files/{fname[evil]['1.0']}") == 0
        res = pip_install(tmp_path, index, f"{vuln}==2.0")  # the fixed version is fetched
        assert res.ok, res

        # a licence needs the bytes: held until the gate decided; the refused file reaches no one, nothing is kept
        before = _blob_names(server)
        url = _files_url(server, proxy, gpl, fname[gpl]["1.0"])
        r = httpx.get(url)
        assert r.status_code == 403 and "no GPL here" in r.text, r.text
        assert up.count(f"/files/{fname[gpl]['1.0']}") == 1
        assert hashlib.sha256(wheels[gpl]["1.0"]).hexdigest() not in _blob_names(server) - before
        assert server.api("GET", f"/api/v1/repositories/{proxy}/packages/{gpl}").status_code == 404
        assert not pip_install(tmp_path, index, f"{gpl}==1.0").ok
        res = pip_install(tmp_path, index, f"{mit}==1.0")  # held, passed, then served from the store
        assert res.ok, res
        assert (tmp_path / "pip-target" / f"{artifacts.dist_name(mit)}-1.0.dist-info").is_dir()
        assert up.count(f"/files/{fname[mit]['1.0']}") == 1

        # a quarantine decision: the file is stored and quarantined, the first client already gets the 403
        r = httpx.get(_files_url(server, proxy, held, fname[held]["1.0"]))
        assert r.status_code == 403 and "review first" in r.text, r.text
        listed = server.api("GET", "/api/v1/quarantine", params={"repository": proxy}).json()
        assert [(q["package"], q["version"]) for q in listed] == [(held, "1.0")]

    log = server.api("GET", "/api/v1/policy-decisions", params={"repository": proxy, "package": evil}).json()
    # one decision per attempt: the direct download, and pip's (for the PEP 658 metadata it asks for first)
    assert [(d["event"], d["result"]) for d in log if d["matched"]] == [("proxy_fetch", "deny")] * 2
    events = server.api("GET", "/api/v1/events", params={"repository": proxy, "type": "policy.denied"}).json()
    assert {e["package"] for e in events} >= {evil, vuln, gpl}


def test_package_scoped_entitlement_reads_a_python_proxy(server, tmp_path):
    _sqlite_only(server)
    mine, other = unique("acme-client"), unique("internal-tool")
    with FakeUpstream() as up:
        for n in (mine, other):
            up.project(n, {f"{artifacts.dist_name(n)}-1.0-py3-none-any.whl": artifacts.wheel_bytes(n, "1.0")})
        proxy = unique("entpx")
        _create(server, proxy, "python", "proxy", private=True, upstream={"url": up.index_url})
        r = server.api("POST", "/api/v1/entitlements", json={"name": unique("ACME"), "repositories": [proxy],
                                                             "packages": ["acme-*"]})
        assert r.status_code == 201, r.text
        secret, ent_id = r.json()["token"], r.json()["id"]
        index = with_credentials(f"{server.url}/{proxy}/simple/", "customer", secret)
        res = pip_install(tmp_path, index, f"{mine}==1.0")  # PEP 658 metadata first, then the wheel
        assert res.ok, res
        res = pip_install(tmp_path, index, f"{other}==1.0")
        assert not res.ok
        wheel = f"{artifacts.dist_name(other)}-1.0-py3-none-any.whl"
        r = server.api("GET", _files_url(server, proxy, other, wheel).removeprefix(server.url), token=secret)
        assert r.status_code == 403 and "entitlement does not cover" in r.text, r.text
        assert up.count(f"/files/{wheel}") == 0 and up.count(f"/files/{wheel}.metadata") == 0
    wait_until(lambda: server.api("GET", f"/api/v1/entitlements/{ent_id}").json()["downloads"] >= 1,
               "the proxied wheel counted as the entitlement's download")


def _cargo_publish(server, repo: str, name: str, version: str) -> bytes:
    crate = crate_bytes(name, version)
    r = httpx.put(f"{server.url}/{repo}/api/v1/crates/new", headers={"Authorization": server.token},
                  content=publish_body(metadata(name, version), crate))
    assert r.status_code == 200, r.text
    return crate


def _upstream_gets(server, part: str) -> int:
    """GET/HEAD requests the server answered (its JSON access log) whose path contains ``part``."""
    n = 0
    for line in server.log_path.read_text(errors="replace").splitlines():
        if '"logger":"wharf.access"' in line:
            entry = json.loads(line)
            n += entry.get("method") in ("GET", "HEAD") and part in entry.get("path", "")
    return n


def test_cargo_quarantine_hosted_403_and_proxy_never_fetches(server):
    _sqlite_only(server)
    hosted, proxy, grp = unique("ch"), unique("cp"), unique("cg")
    server.create_repo(hosted, format="cargo")
    name = unique("qcrate").replace("-", "_")
    crates = {v: _cargo_publish(server, hosted, name, v) for v in ("0.1.0", "0.2.0", "0.3.0")}
    _create(server, proxy, "cargo", "proxy", upstream={"url": f"{server.url}/{hosted}/index/"})
    _create(server, grp, "cargo", "group", members=[proxy])
    index_file = f"{name[:2]}/{name[2:4]}/{name}"
    for repo, version in ((hosted, "0.3.0"), (proxy, "0.2.0")):
        r = server.api("POST", "/api/v1/quarantine", json={"repository": repo, "package": name, "version": version,
                                                           "reason": f"{version} yanked for malware"})
        assert r.status_code == 201, r.text
    # hosted: the index leaves 0.3.0 out and its download answers 403 with the reason, not 404
    lines = httpx.get(f"{server.url}/{hosted}/index/{index_file}").text.splitlines()
    assert [json.loads(x)["vers"] for x in lines] == ["0.1.0", "0.2.0"]
    r = httpx.get(f"{server.url}/{hosted}/api/v1/crates/{name}/0.3.0/download")
    assert r.status_code == 403 and "0.3.0 yanked for malware" in r.text, r.text
    # proxy and group: the mirrored index leaves 0.2.0 out; its download is refused without asking the upstream
    for repo in (proxy, grp):
        lines = httpx.get(f"{server.url}/{repo}/index/{index_file}").text.splitlines()
        assert [json.loads(x)["vers"] for x in lines] == ["0.1.0"], repo
        r = httpx.get(f"{server.url}/{repo}/api/v1/crates/{name}/0.2.0/download")
        assert r.status_code == 403 and "0.2.0 yanked for malware" in r.text, (repo, r.text)
    assert _upstream_gets(server, f"/{hosted}/api/v1/crates/{name}/0.2.0/download") == 0
    r = httpx.get(f"{server.url}/{grp}/api/v1/crates/{name}/0.1.0/download")
    assert r.status_code == 200 and r.content == crates["0.1.0"]


def _jar(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        zf.writestr("Lib.class", text * 50)
    return buf.getvalue()


def _maven_deploy(server, repo: str, gid: str, aid: str, version: str) -> bytes:
    base = f"{gid.replace('.', '/')}/{aid}/{version}/{aid}-{version}"
    pom = (f'<?xml version="1.0"?><project><modelVersion>4.0.0</modelVersion><groupId>{gid}</groupId>'
           f"<artifactId>{aid}</artifactId><version>{version}</version></project>").encode()
    jar = _jar(f"{aid} {version}")
    for path, body in ((f"{base}.pom", pom), (f"{base}.jar", jar)):
        r = httpx.put(f"{server.url}/{repo}/{path}", content=body, auth=("ci", server.token))
        assert r.status_code in (200, 201), r.text
    return jar


def test_maven_quarantine_hosted_403_and_proxy_never_fetches(server):
    _sqlite_only(server)
    hosted, proxy = unique("mh"), unique("mp")
    server.create_repo(hosted, format="maven")
    gid, aid = "org.acme." + unique("q").replace("-", ""), "lib"
    jars = {v: _maven_deploy(server, hosted, gid, aid, v) for v in ("1.0", "2.0", "3.0")}
    _create(server, proxy, "maven", "proxy", upstream={"url": f"{server.url}/{hosted}/"})
    for repo, version in ((hosted, "3.0"), (proxy, "2.0")):
        r = server.api("POST", "/api/v1/quarantine", json={"repository": repo, "package": f"{gid}:{aid}",
                                                           "version": version, "reason": f"{version} under review"})
        assert r.status_code == 201, r.text
    path = f"{gid.replace('.', '/')}/{aid}"
    for repo, listed, withheld in ((hosted, ["1.0", "2.0"], "3.0"), (proxy, ["1.0"], "2.0")):
        r = httpx.get(f"{server.url}/{repo}/{path}/{withheld}/{aid}-{withheld}.jar")
        assert r.status_code == 403 and f"{withheld} under review" in r.text, (repo, r.text)
        meta = httpx.get(f"{server.url}/{repo}/{path}/maven-metadata.xml")
        assert meta.status_code == 200, (repo, meta.text)
        assert re.findall(r"<version>([^<]+)</version>", meta.text) == listed, (repo, meta.text)
        sha1 = httpx.get(f"{server.url}/{repo}/{path}/maven-metadata.xml.sha1").text
        assert sha1 == hashlib.sha1(meta.content).hexdigest()
    assert _upstream_gets(server, f"/{hosted}/{path}/2.0/") == 0  # the proxy never asked for 2.0's files
    r = httpx.get(f"{server.url}/{proxy}/{path}/1.0/{aid}-1.0.jar")
    assert r.status_code == 200 and r.content == jars["1.0"]
