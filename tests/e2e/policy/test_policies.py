"""Policies over the API and CLI against a real server (SQLite and PostgreSQL): a deny policy refuses twine/npm
uploads with its message (nothing stored), versions, the decision log per package, dry run, bad CEL -> 400."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from tests.conftest import unique
from tests.support import artifacts
from tests.support.clients import twine_upload
from tests.support.net import wait_until
from wharf.cli import app as cli


def _wheel(d: Path, name: str, version: str, **kw) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    return artifacts.make_wheel(d, name, version, **kw)


def _cli(server, *args: str):
    return CliRunner().invoke(cli, [*args, "--url", server.url, "--token", server.token])


def test_deny_policy_refuses_twine_upload_and_logs_decisions(server, tmp_path):
    dev, staging = unique("dev"), unique("stg")
    server.create_repo(dev)
    server.create_repo(staging)
    pname = unique("no-gpl")
    r = server.api("POST", "/api/v1/policies", json={
        "name": pname, "events": ["upload", "promotion"], "repositories": [staging], "action": "deny",
        "expression": 'license.startsWith("GPL")', "message": "GPL packages may not enter staging"})
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1

    gpl = _wheel(tmp_path / "gpl", "copyleft", "1.0", metadata_fields={"License": "GPL-3.0-only"})
    mit = _wheel(tmp_path / "mit", "permissive", "1.0", metadata_fields={"License": "MIT"})
    res = twine_upload(tmp_path, f"{server.url}/{staging}/legacy/", [gpl], token=server.token)
    assert not res.ok and "403" in res.output  # twine shows the status; the body carries the policy's message
    r = httpx.post(f"{server.url}/{staging}/legacy/", data=artifacts.upload_form(gpl, gpl.name, "copyleft", "1.0"),
                   files={"content": (gpl.name, gpl.read_bytes())}, auth=("__token__", server.token))
    assert r.status_code == 403 and "GPL packages may not enter staging" in r.text and pname in r.text
    assert httpx.get(f"{server.url}/{staging}/simple/copyleft/").status_code == 404  # nothing stored
    assert twine_upload(tmp_path, f"{server.url}/{staging}/legacy/", [mit], token=server.token).ok
    r = httpx.post(f"{server.url}/{dev}/legacy/", data=artifacts.upload_form(gpl, gpl.name, "copyleft", "1.0"),
                   files={"content": (gpl.name, gpl.read_bytes())}, auth=("__token__", server.token))
    assert r.status_code == 200, r.text  # another repository: out of the policy's scope

    log = server.api("GET", "/api/v1/policy-decisions", params={"repository": staging, "package": "copyleft"}).json()
    assert [(d["policy"], d["policy_version"], d["event"], d["result"]) for d in log] == [(pname, 1, "upload", "deny")] * 2
    assert log[0]["inputs"]["license"] == "GPL-3.0-only" and len(log[0]["inputs_digest"]) == 64
    ok = server.api("GET", "/api/v1/policy-decisions", params={"repository": staging, "package": "permissive"}).json()
    assert [d["result"] for d in ok] == ["none"]
    anon = httpx.get(f"{server.url}/api/v1/policy-decisions", params={"repository": staging}).json()
    assert anon and all("inputs" not in d for d in anon)  # public repository: the log, without its inputs
    events = server.api("GET", "/api/v1/events", params={"type": "policy.denied"}).json()
    denied = events["events"] if isinstance(events, dict) else events
    assert any(e["package"] == "copyleft" and e["repository"] == staging for e in denied)

    # an edit is a new version; the decision log names the version that decided
    r = server.api("PATCH", f"/api/v1/policies/{pname}", json={"expression": 'license.startsWith("AGPL")'})
    assert r.status_code == 200 and r.json()["current_version"] == 2
    r = httpx.post(f"{server.url}/{staging}/legacy/", data=artifacts.upload_form(gpl, gpl.name, "copyleft", "1.0"),
                   files={"content": (gpl.name, gpl.read_bytes())}, auth=("__token__", server.token))
    assert r.status_code == 200, r.text
    log = server.api("GET", "/api/v1/policy-decisions", params={"repository": staging, "package": "copyleft"}).json()
    assert [(d["policy_version"], d["result"]) for d in log] == [(2, "none"), (1, "deny"), (1, "deny")]
    old = server.api("GET", f"/api/v1/policies/{pname}", params={"version": 1}).json()
    assert old["expression"] == 'license.startsWith("GPL")' and old["current_version"] == 2
    assert server.api("DELETE", f"/api/v1/policies/{pname}").status_code == 204


def test_policy_api_and_cli(server, tmp_path):
    if server.backend == "postgres":
        pytest.skip("the database is not this test's subject (runs on SQLite)")
    repo = unique("pol")
    server.create_repo(repo)
    files = [_wheel(tmp_path / "d", "alpha", v) for v in ("0.9", "1.0")] + [_wheel(tmp_path / "d", "beta", "2.0")]
    assert twine_upload(tmp_path, f"{server.url}/{repo}/legacy/", files, token=server.token).ok
    # the three versions' first scans run in background work (the task helper), and their scan.completed events
    # are handed to subscribers (the policy engine) by the server's worker after that: let all of it finish before
    # any scan policy exists, or a late delivery would (rightly) let the policy enabled below act on alpha 0.9 too
    scanned = wait_until(lambda: len(ids := {e["id"] for e in server.api("GET", "/api/v1/events", params={
        "repository": repo, "type": "scan.completed"}).json()}) >= 3 and ids, "the first scans of the uploads",
        timeout=120)
    wait_until(lambda: not [t for t in server.api("GET", "/api/v1/tasks").json()
                            if t["kind"].startswith("event:") and t["payload"].get("event") in scanned],
               "the deliveries of the scans' events", timeout=60)

    # bad CEL: 400 with the compiler's message; other mistakes too
    r = server.api("POST", "/api/v1/policies", json={"name": "bad", "events": ["upload"], "action": "deny",
                                                     "expression": "name == ", "message": "x"})
    assert r.status_code == 400 and "invalid CEL expression" in r.json()["error"] and "Syntax error" in r.json()["error"]
    for body, msg in (({"expression": "true", "action": "explode", "events": ["upload"]}, "action must be"),
                      ({"expression": "true", "action": "deny", "events": ["download"]}, "events must be"),
                      ({"expression": "true", "action": "deny", "events": ["upload"]}, "needs a message"),
                      ({"expression": "nmae == 'x'", "action": "allow", "events": ["upload"]}, "unknown variable")):
        r = server.api("POST", "/api/v1/policies", json={"name": "bad2", **body})
        assert r.status_code == 400 and msg in r.json()["error"], r.text
    # only server-wide admins manage policies
    reader = server.create_token(unique("reader"), {repo: "admin"})
    assert server.api("GET", "/api/v1/policies", token=reader).status_code == 403

    pname = unique("pre-1")
    out = _cli(server, "policy", "create", pname, "--expr", 'version.startsWith("0.")', "--action", "quarantine",
               "--events", "upload,scan", "--repos", repo, "--message", "pre-1.0 releases are not allowed",
               "--disabled", "--json")
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["enabled"] is False
    out = _cli(server, "policy", "dry-run", pname, "--repo", repo, "--json")
    assert out.exit_code == 0, out.output
    dry = json.loads(out.stdout)
    assert dry["evaluated"] == 3 and dry["summary"] == {"quarantine": 1, "none": 2}
    assert [(x["package"], x["version"]) for x in dry["results"] if x["matched"]] == [("alpha", "0.9")]
    assert server.api("GET", "/api/v1/quarantine", params={"repository": repo}).json() == []  # nothing done

    out = _cli(server, "policy", "update", pname, "--enable", "--json")
    assert out.exit_code == 0 and json.loads(out.stdout)["current_version"] == 2
    out = _cli(server, "policy", "list", "--json")
    assert pname in [p["name"] for p in json.loads(out.stdout)]
    out = _cli(server, "policy", "show", pname, "--history")
    assert out.exit_code == 0 and [h["version"] for h in json.loads(out.stdout)["history"]] == [1, 2]
    # enabled: an upload of a 0.x version is stored, then quarantined by the policy
    assert twine_upload(tmp_path, f"{server.url}/{repo}/legacy/", [_wheel(tmp_path / "e", "gamma", "0.1")],
                        token=server.token).ok
    listed = server.api("GET", "/api/v1/quarantine", params={"repository": repo}).json()
    assert [(q["package"], q["version"], q["reason"]) for q in listed] == \
        [("gamma", "0.1", "pre-1.0 releases are not allowed")]
    assert listed[0]["source"] == f"policy:{pname}@2"
    assert httpx.get(f"{server.url}/{repo}/simple/gamma/").status_code == 404  # its only version is withheld
    f = server.api("GET", f"/api/v1/repositories/{repo}/packages/gamma").json()["files"][0]
    r = httpx.get(f"{server.url}{f['url']}")
    assert r.status_code == 403 and "pre-1.0 releases are not allowed" in r.text
    out = _cli(server, "policy", "decisions", f"{repo}/gamma", "--json")
    assert out.exit_code == 0 and json.loads(out.stdout)[0]["result"] == "quarantine"
    out = _cli(server, "quarantine", "add", f"{repo}/beta", "--reason", "maintainer account compromised")
    assert out.exit_code == 0, out.output
    out = _cli(server, "quarantine", "list", repo)
    assert out.exit_code == 0 and "beta" in out.stdout
    out = _cli(server, "quarantine", "list", repo, "--json")
    assert [(q["package"], q["version"], q["reason"]) for q in json.loads(out.stdout)] == \
        [("gamma", "0.1", "pre-1.0 releases are not allowed"), ("beta", None, "maintainer account compromised")]
    out = _cli(server, "policy", "delete", pname)
    assert out.exit_code == 0
    assert _cli(server, "policy", "show", pname).exit_code == 1


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_npm_publish_denied_by_policy(server, tmp_path):
    if server.backend == "postgres":
        pytest.skip("npm on SQLite")
    from tests.e2e.npm.conftest import new_repo
    from tests.support.npm_clients import NpmClient, make_project

    repo = new_repo(server)
    pname = unique("no-scope")
    r = server.api("POST", "/api/v1/policies", json={
        "name": pname, "events": ["upload"], "repositories": [repo], "action": "deny",
        "expression": 'format == "npm" && !name.startsWith("@acme/")', "message": "only @acme packages here"})
    assert r.status_code == 201, r.text
    dev = NpmClient(tmp_path, f"{server.url}/{repo}/", server.token, name="dev")
    r = dev.run("publish", cwd=make_project(tmp_path / "a", "unscoped", "1.0.0"))
    assert not r.ok and "only @acme packages here" in r.output
    r = dev.run("publish", cwd=make_project(tmp_path / "b", "@acme/ok", "1.0.0"))
    assert r.ok, r
    assert server.api("DELETE", f"/api/v1/policies/{pname}").status_code == 204
