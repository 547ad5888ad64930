"""The CLI end to end, on SQLite and PostgreSQL: snapshot create/list/delete, repo versions/diff/rollback, retention
(`keep_last`, snapshots kept) and `wharf gc` (dry run, then --apply) against a running server."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import httpx

from tests.conftest import unique
from tests.support.clients import clean_env
from tests.support.server import WHARF_BIN


def wharf(tmp: Path, srv, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(tmp, {"WHARF_CLIENT_CONFIG": str(tmp / "none.toml"), "WHARF_URL": srv.url,
                          "WHARF_TOKEN": srv.token, "COLUMNS": "250", "TERM": "dumb"})
    return subprocess.run([WHARF_BIN, *args], env=env, capture_output=True, text=True, timeout=120)


def ok_json(proc: subprocess.CompletedProcess[str]):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def test_cli_snapshots_rollback_retention_and_gc(server, tmp_path):
    repo = unique("ret")
    server.create_repo(repo, format="generic")
    r = wharf(tmp_path, server, "repo", "retention", repo, "--keep-last", "1")
    assert r.returncode == 0 and "retention {'keep_last': 1}" in r.stderr, r.stderr
    assert server.api("GET", f"/api/v1/repositories/{repo}").json()["config"]["retention"] == {"keep_last": 1}
    base = f"{server.url}/{repo}"
    auth = {"Authorization": f"Bearer {server.token}"}
    sha = {k: hashlib.sha256(f"{k} {repo}".encode()).hexdigest() for k in "abc"}

    with httpx.Client(timeout=30, headers=auth) as c:
        def put(k: str, data: bytes | None = None) -> int:
            return c.put(f"{base}/rel/{k}.bin", content=data or f"{k} {repo}".encode()).status_code

        assert put("a") == 201  # v1
        snap = ok_json(wharf(tmp_path, server, "snapshot", "create", repo, "--name", "keep", "--json"))
        assert snap["version"] == 1
        assert put("b") == 201  # v2
        assert c.delete(f"{base}/rel/b.bin").status_code == 200  # v3
        assert put("c") == 201  # v4

        assert [s["name"] for s in server.api("GET", f"/api/v1/repositories/{repo}/snapshots").json()] == ["keep"]
        versions = server.api("GET", f"/api/v1/repositories/{repo}/versions").json()
        assert [v["number"] for v in versions] == [4, 3, 2, 1, 0] and versions[3]["snapshots"] == ["keep"]
        d = ok_json(wharf(tmp_path, server, "repo", "diff", repo, "keep", "4", "--json"))
        assert [f["sha256"] for f in d["added"]] == [sha["c"]] and d["removed"] == []

        # dry run: nothing is unreferenced yet; the retention policy would prune versions 0, 2 and 3
        dry = ok_json(wharf(tmp_path, server, "gc", "--grace", "0", "--json"))
        assert dry["blobs"] == [] and not dry["applied"]
        assert [p["pruned_versions"] for p in dry["pruned"] if p["repository"] == repo] == [[0, 2, 3]]
        assert c.get(f"{base}/~2/rel/b.bin").status_code == 200  # still there: it was a dry run

        # apply: versions 2 and 3 go, and with them the only rows holding b: its blob is collected
        out = ok_json(wharf(tmp_path, server, "gc", "--apply", "--grace", "0", "--json"))
        assert sha["b"] in out["deleted"] and sha["a"] not in out["deleted"] and sha["c"] not in out["deleted"]
        assert c.get(f"{base}/~2/rel/b.bin").status_code == 404
        assert "pruned" in c.get(f"{base}/~2/rel/b.bin").json()["error"]
        assert c.get(f"{base}/~keep/rel/a.bin").content == f"a {repo}".encode()
        assert c.get(f"{base}/rel/c.bin").status_code == 200
        # the pruned, deleted path stays reserved: other bytes there are refused
        assert put("b", b"other bytes") == 409

        # rollback to the snapshot: a new version (5) with a only; the live tree follows
        r = wharf(tmp_path, server, "repo", "rollback", repo, "--to", "keep")
        assert r.returncode == 0 and "version 5 has the contents of version 1" in r.stderr, r.stderr
        assert c.get(f"{base}/rel/c.bin").status_code == 404 and c.get(f"{base}/rel/a.bin").status_code == 200
        assert server.api("GET", f"/api/v1/repositories/{repo}/diff", params={"from": "keep", "to": "5"}).json()[
            "added"] == []

        # without the snapshot, deleting a leaves a and c referenced by no kept version
        assert wharf(tmp_path, server, "snapshot", "delete", repo, "keep").returncode == 0
        assert c.get(f"{base}/~keep/rel/a.bin").status_code == 404
        assert c.delete(f"{base}/rel/a.bin").status_code == 200  # v6
        out = server.api("POST", "/api/v1/gc", params={"apply": True, "grace": 0}).json()
        assert {sha["a"], sha["c"]} <= set(out["deleted"])
        r = wharf(tmp_path, server, "gc", "--grace", "0")
        assert r.returncode == 0 and "0 blob(s), 0 bytes would be deleted" in r.stderr, r.stderr

    assert wharf(tmp_path, server, "repo", "retention", repo, "--off").returncode == 0
    assert "retention" not in server.api("GET", f"/api/v1/repositories/{repo}").json()["config"]
    actions = [e["action"] for e in server.api("GET", "/api/v1/audit", params={"limit": 200}).json()]
    for a in ("repository:snapshot:create", "repository:snapshot:delete", "repository:version:rollback",
              "repository:version:prune", "system:blobs:gc"):
        assert a in actions, a
