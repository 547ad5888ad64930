"""The event stream through a real server: twine and npm uploads become package.created events, which the
server's own background worker hands to subscribers (here: the scan trigger) without any request waiting on it."""

from __future__ import annotations

import time

from tests.support import artifacts
from tests.support.clients import twine_upload


def _wait_idle(server, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = server.api("GET", "/api/v1/tasks").json()
        if not [t for t in tasks if t["state"] != "failed"]:
            return tasks
        time.sleep(0.1)
    raise AssertionError(f"background work still pending: {tasks}")


def test_uploads_and_deletes_become_events(server, repo_name, tmp_path):
    server.create_repo(repo_name)
    wheel = artifacts.make_wheel(tmp_path, "evented", "1.0")
    assert twine_upload(tmp_path, f"{server.url}/{repo_name}/legacy/", [wheel], token=server.token).ok
    r = server.api("GET", "/api/v1/events", params={"repository": repo_name})
    assert r.status_code == 200, r.text
    # (vetting's analyzers run on it too: their scan.completed may already be there)
    [created] = [e for e in r.json() if e["type"] != "scan.completed"]
    assert (created["type"], created["package"], created["version"], created["format"]) == \
        ("package.created", "evented", "1.0", "python")
    assert created["files"][0]["filename"] == wheel.name and len(created["files"][0]["sha256"]) == 64
    assert created["detail"]["action"] == "upload"
    # the server's worker thread drains the queued deliveries by itself
    assert _wait_idle(server) == []
    assert server.api("DELETE", f"/api/v1/repositories/{repo_name}/packages/evented").status_code in (200, 204)
    types = [e["type"] for e in server.api("GET", "/api/v1/events", params={"repository": repo_name}).json()]
    assert [t for t in types if t != "scan.completed"] == ["package.deleted", "package.created"]
    assert "scan.completed" in types


def test_event_and_task_lists_need_permission(server, repo_name):
    server.create_repo(repo_name, private=True)
    reader = server.create_token("reader", {"other": ["read"]})
    assert server.api("GET", "/api/v1/events", token=None).status_code == 401
    assert server.api("GET", "/api/v1/events", token=reader).status_code == 403  # all events: server admin
    assert server.api("GET", "/api/v1/events", token=reader, params={"repository": repo_name}).status_code == 403
    assert server.api("GET", "/api/v1/tasks", token=reader).status_code == 403
