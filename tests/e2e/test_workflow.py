"""The promotion workflow of issue 5 end to end, with the real clients and a real webhook receiver.

dev is a group of a hosted repository and a proxy (its upstream: a "public" repository on loopback); staging and
prod are hosted. Packages are pushed to dev with twine; every ``scan.completed`` webhook reaches a receiver that
verifies the signature and asks Wharf to promote the scanned package to staging. A policy that denies promotions of
packages with a known critical vulnerability keeps the bad one out. A release is then promoted to prod; prod's
snapshot from before it still serves the old set; pip installs from every stage.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import unique
from tests.support import artifacts
from tests.support.clients import pip_install, twine_upload
from tests.support.net import free_port, wait_until
from tests.support.osv_records import CVSS_CRITICAL, record, write_zip
from tests.support.server import WHARF_BIN


class PromotingReceiver:
    """A CI-like webhook receiver: on a signed ``scan.completed`` it promotes the package version to staging."""

    def __init__(self, wharf_url: str, token: str, secret_box: dict[str, str], source: str, dest: str):
        self.outcomes: list[tuple[str, str, int, str]] = []  # (package, version, status, message)
        self.bad_signatures = 0
        lock = threading.Lock()
        me = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ts = self.headers.get("X-Wharf-Timestamp", "")
                mac = hmac.new(secret_box["secret"].encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
                if not hmac.compare_digest("sha256=" + mac, self.headers.get("X-Wharf-Signature-256", "")):
                    with lock:
                        me.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                event = json.loads(body)
                if event.get("event") == "scan.completed" and event.get("repository") == source:
                    r = httpx.post(f"{wharf_url}/api/v1/promotions", headers={"Authorization": f"Bearer {token}"},
                                   json={"source": source, "destination": dest, "package": event["package"],
                                         "version": event["version"], "operation": "promote",
                                         "skip_existing": True}, timeout=30)
                    message = r.json().get("error", "") if r.status_code >= 400 else ""
                    with lock:
                        me.outcomes.append((event["package"], event["version"], r.status_code, message))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _wharf(server: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
    env.update({"WHARF_URL": server.url, "WHARF_TOKEN": server.token, "COLUMNS": "200",
                "WHARF_CLIENT_CONFIG": "/nonexistent"})
    return subprocess.run([WHARF_BIN, *args], env=env, capture_output=True, text=True, timeout=120)


def _installed(target: Path, dist: str, version: str) -> bool:
    return (target / f"{dist}-{version}.dist-info").is_dir()


@pytest.mark.postgres
def test_dev_to_staging_to_prod(server, tmp_path):
    n = unique("wf")
    public, proxy, dev_hosted, dev = f"{n}-public", f"{n}-pypi", f"{n}-dev-hosted", f"{n}-dev"
    staging, prod = f"{n}-staging", f"{n}-prod"
    good, bad, old, lib = f"{n}-good", f"{n}-bad", f"{n}-app", f"{n}-publiclib"
    dist = tmp_path / "dist"
    dist.mkdir()

    # -- the stages ---------------------------------------------------------------------------------------------
    server.create_repo(public)
    r = server.api("POST", "/api/v1/repositories", json={"name": proxy, "format": "python", "kind": "proxy",
                                                         "config": {"upstream": {"url": f"{server.url}/{public}/simple/"}}})
    assert r.status_code == 201, r.text
    server.create_repo(dev_hosted, promote_to=staging)
    r = server.api("POST", "/api/v1/repositories", json={"name": dev, "format": "python", "kind": "group",
                                                         "config": {"members": [dev_hosted, proxy]}})
    assert r.status_code == 201, r.text
    server.create_repo(staging, promote_to=prod)
    server.create_repo(prod)
    lib_wheel = artifacts.make_wheel(dist, lib, "3.0")
    assert twine_upload(tmp_path, f"{server.url}/{public}/legacy/", [lib_wheel], token=server.token).ok

    # prod already serves an older release; pin it before anything else happens
    old_wheel = artifacts.make_wheel(dist, old, "0.9")
    assert twine_upload(tmp_path, f"{server.url}/{prod}/legacy/", [old_wheel], token=server.token).ok
    r = server.api("POST", f"/api/v1/repositories/{prod}/snapshots", json={"name": "before-release"})
    assert r.status_code == 201, r.text

    # -- vetting data and the gate into staging ------------------------------------------------------------------
    advisory = record(f"PYSEC-2026-{n}", "PyPI", bad, cvss=CVSS_CRITICAL, summary="remote code execution",
                      ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}])
    res = _wharf(server, "advisories", "import", str(write_zip(tmp_path / "osv.zip", [advisory])))
    assert res.returncode == 0, res.stderr
    r = server.api("POST", "/api/v1/policies", json={
        "name": f"{n}-no-critical", "events": ["promotion"], "repositories": [staging], "action": "deny",
        "expression": 'vulnerabilities.max_severity == "critical"',
        "message": "packages with a critical vulnerability do not go to staging"})
    assert r.status_code == 201, r.text

    # -- CI's receiver: promote what the scanner has looked at ---------------------------------------------------
    box: dict[str, str] = {}
    receiver = PromotingReceiver(server.url, server.token, box, dev_hosted, staging)
    try:
        r = server.api("POST", "/api/v1/webhooks", json={"url": receiver.url, "repository": dev_hosted,
                                                         "events": ["scan.completed"]})
        assert r.status_code == 201, r.text
        box["secret"] = r.json()["secret"]

        # -- push to dev --------------------------------------------------------------------------------------------
        wheels = [artifacts.make_wheel(dist, good, "1.0"), artifacts.make_wheel(dist, bad, "1.0")]
        # CI pushes to the hosted member and installs through the group
        assert twine_upload(tmp_path, f"{server.url}/{dev_hosted}/legacy/", wheels, token=server.token).ok

        hook_id = r.json()["id"]
        try:
            outcomes = wait_until(lambda: len({o[0] for o in receiver.outcomes}) >= 2 and receiver.outcomes,
                                  "the receiver to act on both scans", timeout=90)
        except AssertionError:
            events = server.api("GET", "/api/v1/events", params={"repository": dev_hosted}).json()
            deliveries = server.api("GET", f"/api/v1/webhooks/{hook_id}/deliveries").json()
            tasks = server.api("GET", "/api/v1/tasks").json()
            raise AssertionError(f"receiver saw {receiver.outcomes}; events {[e['type'] for e in events]}; "
                                 f"deliveries {deliveries}; tasks {tasks}")
    finally:
        receiver.close()
    assert receiver.bad_signatures == 0
    by_name = {o[0]: o for o in outcomes}
    assert by_name[good][2] == 200, by_name[good]
    assert by_name[bad][2] == 403 and "critical vulnerability" in by_name[bad][3], by_name[bad]

    # the decision is on record for the refused package
    decisions = server.api("GET", "/api/v1/policy-decisions", params={"repository": staging}).json()
    assert any(d["result"] == "deny" and d["package"] == bad and d["event"] == "promotion" for d in decisions), decisions

    # -- install from each stage with pip ------------------------------------------------------------------------
    res = pip_install(tmp_path, f"{server.url}/{dev}/simple/", f"{good}==1.0", f"{lib}==3.0", target=tmp_path / "dev")
    assert res.ok, res
    assert _installed(tmp_path / "dev", good.replace("-", "_"), "1.0")
    assert _installed(tmp_path / "dev", lib.replace("-", "_"), "3.0")  # through the proxy member
    res = pip_install(tmp_path, f"{server.url}/{staging}/simple/", f"{good}==1.0", target=tmp_path / "staging")
    assert res.ok, res
    res = pip_install(tmp_path, f"{server.url}/{staging}/simple/", f"{bad}==1.0", target=tmp_path / "staging-bad")
    assert not res.ok  # the policy kept it out

    # -- release: staging -> prod (its promote_to), with the CLI ------------------------------------------------
    res = _wharf(server, "promote", f"{staging}/{good}@1.0")
    assert res.returncode == 0, res.stderr + res.stdout
    res = pip_install(tmp_path, f"{server.url}/{prod}/simple/", f"{good}==1.0", f"{old}==0.9", target=tmp_path / "prod")
    assert res.ok, res
    # byte for byte what was scanned in dev
    dev_files = server.api("GET", f"/api/v1/repositories/{dev_hosted}/packages/{good}").json()
    prod_files = server.api("GET", f"/api/v1/repositories/{prod}/packages/{good}").json()
    assert _digests(dev_files) == _digests(prod_files) and _digests(dev_files)

    # -- the snapshot from before the release still serves the old set ---------------------------------------------
    snap = f"{server.url}/{prod}/~before-release/simple/"
    res = pip_install(tmp_path, snap, f"{old}==0.9", target=tmp_path / "snap")
    assert res.ok, res
    res = pip_install(tmp_path, snap, f"{good}==1.0", target=tmp_path / "snap-new")
    assert not res.ok

    # -- the trail: dev -> staging -> prod -------------------------------------------------------------------------
    trail = server.api("GET", f"/api/v1/packages/python/{good}/trail").json()
    hops = [(e["event"], e["source"], e["destination"]) for e in trail["events"] if "destination" in e]
    assert hops == [("promote", dev_hosted, staging), ("promote", staging, prod)], trail
    assert trail["events"][0]["event"] == "upload" and trail["events"][0]["repository"] == dev_hosted
    assert sorted(trail["live_in"]) == sorted([dev_hosted, staging, prod])


def _digests(package: dict[str, Any]) -> set[str]:
    return {f["sha256"] for f in package["files"]}
