"""Advisories end to end on SQLite and PostgreSQL: `wharf advisories import` (zip and directory, incremental), the
vulnerabilities scan of stored packages re-evaluated on change (scan.completed), the PyPI JSON API's
`vulnerabilities`, the OSV query API, `wharf audit -r requirements.txt` / `wharf audit package-lock.json`, and the
real `npm audit` against a Wharf npm repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unique
from tests.support.artifacts import wheel_bytes
from tests.support.osv_records import CVSS_CRITICAL, CVSS_MEDIUM, record, write_dir, write_zip
from tests.support.server import WHARF_BIN

FIXED = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]


def wharf(server: Any, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
    env.update({"WHARF_URL": server.url, "WHARF_TOKEN": token or server.token, "COLUMNS": "200",
                "WHARF_CLIENT_CONFIG": "/nonexistent"})
    return subprocess.run([WHARF_BIN, *args], env=env, capture_output=True, text=True, timeout=120)


def upload_wheels(server: Any, repo: str, releases: list[tuple[str, str]], tmp: Path) -> None:
    paths = []
    for name, version in releases:
        path = tmp / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
        path.write_bytes(wheel_bytes(name, version))
        paths.append(str(path))
    r = wharf(server, "push", repo, *paths)
    assert r.returncode == 0, r.stderr


def wait_for(fn: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_import_scan_json_api_osv_api_and_audit(server, tmp_path):
    pkg = unique("vulnpkg")  # unique per module run: the advisory data is server-wide
    repo = unique("py")
    server.create_repo(repo)
    upload_wheels(server, repo, [(pkg, "1.0"), (pkg, "1.1"), (pkg, "1.2"), (unique("bystander"), "1.0")], tmp_path)

    # the first scans (no advisory yet) are done by the server's worker: wait for them
    def scans() -> list[dict[str, Any]]:
        return server.api("GET", "/api/v1/events", params={"repository": repo, "package": pkg,
                                                           "type": "scan.completed"}).json()
    assert len(wait_for(lambda: len(scans()) >= 3 and scans())) == 3

    sec_id, other_id = f"PYSEC-2026-{pkg}", f"GHSA-{pkg}"
    docs = [record(sec_id, "PyPI", pkg.upper(), ranges=FIXED, cvss=CVSS_CRITICAL, aliases=[f"CVE-2026-{pkg}"],
                   summary="remote code execution"),
            record(other_id, "PyPI", pkg, versions=["1.0"], cvss=CVSS_MEDIUM, summary="minor leak")]
    r = wharf(server, "advisories", "import", str(write_zip(tmp_path / "all.zip", docs)), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert (report["read"], report["added"], report["packages_touched"]) == (2, 2, 1)
    assert (report["reevaluated"], report["changed_results"]) == (3, 2)  # 1.0 and 1.1 changed; bystander untouched

    # incremental: the same data again changes nothing; a directory works too
    r = wharf(server, "advisories", "import", str(write_dir(tmp_path / "dir", docs)), "--json")
    assert r.returncode == 0, r.stderr
    assert (json.loads(r.stdout)["unchanged"], json.loads(r.stdout)["reevaluated"]) == (2, 0)

    changed = scans()[: len(scans()) - 3]
    assert sorted(e["version"] for e in changed) == ["1.0", "1.1"]
    res = server.api("GET", "/api/v1/advisories/match", params={"repository": repo, "name": pkg, "version": "1.0"}).json()
    assert res["status"] == "fail" and res["summary"]["count"] == 2 and res["summary"]["max_severity"] == "critical"
    assert res["summary"]["max_score"] == 9.8 and res["summary"]["fixable"] == 1

    # the PyPI JSON API, in the public index's shape
    doc = server.api("GET", f"/{repo}/pypi/{pkg}/1.1/json", token=None).json()
    assert doc["vulnerabilities"] == [{
        "id": sec_id, "aliases": [f"CVE-2026-{pkg}"], "details": "Details of the issue.",
        "summary": "remote code execution", "fixed_in": ["1.2.0"], "link": f"{server.url}/-/osv/v1/vulns/{sec_id}",
        "source": "osv", "withdrawn": None}]
    assert server.api("GET", f"/{repo}/pypi/{pkg}/1.2/json", token=None).json()["vulnerabilities"] == []
    assert [v["id"] for v in server.api("GET", f"/{repo}/pypi/{pkg}/json").json()["vulnerabilities"]] == []  # latest 1.2

    # the OSV query API: same shapes as the public service, anonymous
    q = server.api("POST", "/-/osv/v1/query", token=None,
                   json={"package": {"ecosystem": "PyPI", "name": pkg}, "version": "1.0"}).json()
    assert sorted(v["id"] for v in q["vulns"]) == sorted([sec_id, other_id])
    assert q["vulns"][0]["modified"] == "2026-01-01T00:00:00Z" and "affected" in q["vulns"][0]
    batch = server.api("POST", "/-/osv/v1/querybatch", token=None, json={"queries": [
        {"package": {"purl": f"pkg:pypi/{pkg}@1.1"}}, {"package": {"ecosystem": "PyPI", "name": pkg}, "version": "9"}]})
    assert batch.json() == {"results": [{"vulns": [{"id": sec_id, "modified": "2026-01-01T00:00:00Z"}]}, {}]}
    assert server.api("GET", f"/-/osv/v1/vulns/{sec_id}", token=None).json()["id"] == sec_id
    assert server.api("POST", "/-/osv/v1/query", token=None, json={"commit": "abc"}).status_code == 400

    # wharf audit -r requirements.txt: exit 1 with the fixed version; a clean set exits 0
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(f"{pkg}==1.0\nrequests>=2\n")
    r = wharf(server, "audit", "-r", str(reqs), "--json")
    assert r.returncode == 1, r.stderr
    out = json.loads(r.stdout)
    assert {(v["id"], tuple(v["fixed"])) for v in out["vulnerabilities"]} == {(sec_id, ("1.2.0",)), (other_id, ())}
    assert out["not_checked"] and "requests" in out["not_checked"][0]
    r = wharf(server, "audit", "-r", str(reqs))
    assert r.returncode == 1 and sec_id in r.stdout and "1.2.0" in r.stdout, r.stdout + r.stderr
    reqs.write_text(f"{pkg}==1.2\n")
    assert wharf(server, "audit", "-r", str(reqs)).returncode == 0
    # the audit-log usage is unchanged: the import above is in it
    r = wharf(server, "audit", "--json", "--action", "system:advisories:import")
    assert r.returncode == 0 and len(json.loads(r.stdout)) == 2, r.stderr
    assert wharf(server, "audit", "-r", repo, "--json").returncode == 0

    # a withdrawn record stops matching; the affected versions are re-evaluated
    gone = record(other_id, "PyPI", pkg, versions=["1.0"], modified="2026-02-01T00:00:00Z",
                  withdrawn="2026-02-01T00:00:00Z")
    r = server.api("POST", "/api/v1/advisories/import", json=gone)
    assert r.status_code == 200 and r.json()["withdrawn"] == 1 and r.json()["changed_results"] == 1, r.text
    res = server.api("GET", "/api/v1/advisories/match", params={"repository": repo, "name": pkg, "version": "1.0"}).json()
    assert res["summary"]["ids"] == [sec_id]


def test_import_needs_a_server_admin(sqlite_server, tmp_path):
    server = sqlite_server
    repo = unique("py")
    server.create_repo(repo)
    tok = server.api("POST", "/api/v1/tokens", json={"name": "w", "scopes": [{"repository": repo,
                                                                             "actions": ["admin"]}]}).json()
    secret = tok.get("token") or tok.get("secret")
    zipped = write_zip(tmp_path / "a.zip", [record("PYSEC-x", "PyPI", "x", versions=["1"])]).read_bytes()
    r = server.api("POST", "/api/v1/advisories/import", token=secret, content=zipped,
                   headers={"Content-Type": "application/zip"})
    assert r.status_code == 403
    r = server.api("POST", "/api/v1/advisories/import", token=None, content=zipped,
                   headers={"Content-Type": "application/zip"})
    assert r.status_code == 401


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_npm_audit_and_lockfile_audit(sqlite_server, tmp_path):
    """(SQLite only: the data path is the one the main test runs on both databases.)"""
    server = sqlite_server
    from tests.support.npm_clients import NpmClient, make_project

    repo = unique("npm")
    server.create_repo(repo, format="npm")
    reg = f"{server.url}/{repo}/"
    pkg = unique("leaky")
    dev = NpmClient(tmp_path, reg, server.token, name="dev")
    for v in ("1.0.0", "1.0.1"):
        assert dev.run("publish", cwd=make_project(tmp_path / "src", pkg, v)).ok
    adv = f"GHSA-{pkg}"
    server.api("POST", "/api/v1/advisories/import", json=record(
        adv, "npm", pkg, ranges=[{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.0.1"}]}],
        cvss=CVSS_CRITICAL, summary="prototype pollution in leaky")).raise_for_status()

    app = make_project(tmp_path / "app", "app", "0.0.1", dependencies={pkg: "1.0.0"}, extra={"private": True})
    user = NpmClient(tmp_path, reg, name="user")
    assert user.run("install", cwd=app).ok
    r = user.run("audit", "--json", cwd=app, audit=True)
    assert r.returncode == 1, r
    report = r.json()
    assert "metadata" in report, r
    assert report["metadata"]["vulnerabilities"]["critical"] == 1, report
    vuln = report["vulnerabilities"][pkg]
    assert vuln["severity"] == "critical" and vuln["range"] == "1.0.0"  # npm: our range over the published versions
    assert vuln["via"][0]["range"] == "<1.0.1"
    assert vuln["via"][0]["title"] == "prototype pollution in leaky"
    assert vuln["via"][0]["url"] == f"{server.url}/-/osv/v1/vulns/{adv}"
    assert vuln["fixAvailable"] is not False
    r = user.run("audit", cwd=app, audit=True)
    assert r.returncode == 1 and "prototype pollution in leaky" in r.output, r

    # wharf audit package-lock.json reports the same, with the fixed version
    r = wharf(server, "audit", str(app / "package-lock.json"), "--json")
    assert r.returncode == 1, r.stderr
    [found] = json.loads(r.stdout)["vulnerabilities"]
    assert (found["name"], found["version"], found["id"], found["fixed"]) == (pkg, "1.0.0", adv, ["1.0.1"])

    # after upgrading, both are clean
    assert user.run("install", f"{pkg}@1.0.1", cwd=app).ok
    assert user.run("audit", cwd=app, audit=True).returncode == 0
    assert wharf(server, "audit", str(app / "package-lock.json")).returncode == 0
