"""Webhooks through a real server and a real receiver on 127.0.0.1: twine uploads become signed package.created
deliveries (the signature is checked here with hmac, independently of Wharf's code); failures are retried with
backoff and every attempt is in the delivery log; a dead and a slow receiver never slow an upload; the secret is
shown once and is not stored in clear."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from tests.conftest import unique
from tests.support import artifacts
from tests.support.clients import twine_upload
from tests.support.net import free_port
from tests.support.server import WHARF_BIN

from .conftest import sqlite_only
from .receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2)
    yield r
    r.close()


def _wait(cond: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _wharf(srv: Any, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"WHARF_URL": srv.url, "WHARF_TOKEN": srv.token, "PATH": "/usr/bin:/bin", "HOME": str(tmp), "COLUMNS": "200"}
    return subprocess.run([WHARF_BIN, *args], env=env, capture_output=True, text=True, timeout=60)


def _wheel(tmp: Path, name: str, version: str) -> Path:
    (tmp / "dist").mkdir(parents=True, exist_ok=True)
    return artifacts.make_wheel(tmp / "dist", name, version)


def _signed(secret: str, headers: dict[str, str], body: bytes) -> bool:
    ts = headers["x-wharf-timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["x-wharf-signature-256"]) and abs(time.time() - int(ts)) < 300


def _deliveries(srv: Any, hook_id: int) -> list[dict[str, Any]]:
    r = srv.api("GET", f"/api/v1/webhooks/{hook_id}/deliveries")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _finished(srv: Any, hook_id: int, n: int = 1) -> list[dict[str, Any]]:
    return _wait(lambda: (lambda ds: ds if len(ds) >= n and all(d["status"] in ("delivered", "failed") for d in ds)
                          else None)(_deliveries(srv, hook_id)), f"deliveries of webhook {hook_id}")


def test_upload_is_delivered_signed_retried_and_logged(hooks_server, receiver, tmp_path):
    srv = hooks_server
    repo = unique("hooked")
    srv.create_repo(repo)
    res = _wharf(srv, tmp_path, "webhook", "create", "--url", receiver.url("/ok"), "--repo", repo,
                 "--events", "package.created", "--json")
    assert res.returncode == 0, res.stderr
    hook = json.loads(res.stdout)
    secret = hook["secret"]
    assert secret.startswith("whsec_") and hook["repository"] == repo and hook["events"] == ["package.created"]
    given = "s3cret-chosen-by-the-admin-" + unique("x")
    r = srv.api("POST", "/api/v1/webhooks", json={"url": receiver.url("/flaky"), "secret": given, "max_attempts": 5})
    assert r.status_code == 201 and r.json()["secret"] == given and r.json()["repository"] is None
    flaky = r.json()

    wheel = _wheel(tmp_path, "hookpkg", "1.0")
    assert twine_upload(tmp_path, f"{srv.url}/{repo}/legacy/", [wheel], token=srv.token).ok
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()

    # the repository's webhook: one signed delivery with the package, its files and digests, the actor
    [got] = _wait(lambda: receiver.at("/ok") and [g for g in receiver.at("/ok") if g.json()["repository"] == repo],
                  "the package.created delivery")
    assert _signed(secret, got.headers, got.body)
    assert not _signed("another-secret-value", got.headers, got.body)
    assert got.headers["x-wharf-event"] == "package.created" and got.headers["content-type"] == "application/json"
    body = got.json()
    assert (body["event"], body["repository"], body["format"], body["package"], body["version"]) == \
        ("package.created", repo, "python", "hookpkg", "1.0")
    assert body["files"] == [{"filename": wheel.name, "key": wheel.name, "sha256": sha, "size": wheel.stat().st_size}]
    assert body["actor"] == "token:admin#1" and isinstance(body["id"], int) and body["time"]
    [delivery] = _finished(srv, hook["id"])
    assert delivery["uuid"] == got.headers["x-wharf-delivery"] and delivery["status"] == "delivered"
    assert [(a["attempt"], a["response_code"], a["error"]) for a in delivery["log"]] == [(1, 200, None)]

    # the global webhook: 500, 500, then 200 -- three attempts of one delivery, all in the log
    mine = lambda: [g for g in receiver.at("/flaky")  # noqa: E731  (other events, e.g. scan.completed, come too)
                    if g.json()["repository"] == repo and g.json()["event"] == "package.created"]
    attempts = _wait(lambda: len(mine()) >= 3 and mine(), "three attempts at the flaky receiver")
    assert len({a.headers["x-wharf-delivery"] for a in attempts}) == 1
    assert [a.headers["x-wharf-attempt"] for a in attempts] == ["1", "2", "3"]
    assert all(_signed(given, a.headers, a.body) for a in attempts) and len({a.body for a in attempts}) == 1
    [delivery] = [d for d in _finished(srv, flaky["id"]) if d["uuid"] == attempts[0].headers["x-wharf-delivery"]]
    assert delivery["status"] == "delivered" and delivery["attempts"] == 3
    log = delivery["log"]
    assert [a["response_code"] for a in log] == [500, 500, 200]
    assert log[0]["error"] == "receiver answered HTTP 500" and log[2]["error"] is None
    assert log[0]["response_excerpt"].startswith("receiver is having a bad day") and len(log[0]["response_excerpt"]) <= 1024
    assert all(a["duration_ms"] >= 0 for a in log)
    res = _wharf(srv, tmp_path, "webhook", "deliveries", str(flaky["id"]))
    assert res.returncode == 0 and "500" in res.stdout and "delivered" in res.stdout, res.stderr

    # ping: a test delivery to that webhook only
    res = _wharf(srv, tmp_path, "webhook", "ping", str(hook["id"]), "--json")
    assert res.returncode == 0, res.stderr
    ping = json.loads(res.stdout)
    assert ping["event"] == "ping" and ping["status"] == "delivered"
    pinged = [g for g in receiver.at("/ok") if g.headers["x-wharf-delivery"] == ping["uuid"]]
    assert len(pinged) == 1 and pinged[0].json()["event"] == "ping" and _signed(secret, pinged[0].headers, pinged[0].body)

    # the secret is never shown again: not by the API, the CLI, the logs; not stored in clear
    listed = srv.api("GET", "/api/v1/webhooks").text + srv.api("GET", f"/api/v1/webhooks/{hook['id']}").text
    listed += _wharf(srv, tmp_path, "webhook", "list", "--json").stdout
    listed += srv.api("GET", "/api/v1/audit").text + json.dumps(_deliveries(srv, hook["id"])) + srv.log()
    assert secret not in listed and given not in listed and "secret" not in srv.api("GET", "/api/v1/webhooks").json()[0]
    if srv.backend == "sqlite":
        stored = b"".join(p.read_bytes() for p in srv.data.glob("wharf.db*"))
        assert secret.encode() not in stored and given.encode() not in stored

    # deleting stops deliveries; only admins manage webhooks
    reader = srv.create_token(unique("r"), {repo: "admin"})
    assert srv.api("GET", "/api/v1/webhooks", token=reader).status_code == 403
    assert srv.api("POST", "/api/v1/webhooks", token=reader, json={"url": receiver.url("/ok")}).status_code == 403
    assert _wharf(srv, tmp_path, "webhook", "delete", str(flaky["id"])).returncode == 0
    assert srv.api("GET", f"/api/v1/webhooks/{flaky['id']}").status_code == 404


@sqlite_only
def test_dead_and_slow_receivers_never_slow_uploads(hooks_server, receiver, tmp_path):
    srv = hooks_server
    # a dead receiver: every attempt fails, the delivery ends as failed after max_attempts
    dead = srv.api("POST", "/api/v1/webhooks", json={"url": f"http://127.0.0.1:{free_port()}/gone", "max_attempts": 3})
    assert dead.status_code == 201, dead.text
    res = _wharf(srv, tmp_path, "webhook", "ping", str(dead.json()["id"]), "--wait", "30", "--json")
    assert res.returncode == 1, res.stdout + res.stderr
    [d] = _finished(srv, dead.json()["id"])
    assert d["status"] == "failed" and d["attempts"] == 3 and d["finished_at"]
    assert [a["attempt"] for a in d["log"]] == [1, 2, 3]
    assert all(a["response_code"] is None and "ConnectError" in a["error"] for a in d["log"])
    srv.api("DELETE", f"/api/v1/webhooks/{dead.json()['id']}")

    # a receiver slower than the webhook's timeout: the attempt is logged as timed out
    slow_repo = unique("slow")
    srv.create_repo(slow_repo)
    short = srv.api("POST", "/api/v1/webhooks", json={"url": receiver.url("/slow"), "repository": slow_repo,
                                                      "timeout": 0.5, "max_attempts": 1, "events": ["ping"]}).json()
    srv.api("POST", f"/api/v1/webhooks/{short['id']}/ping")
    [d] = _finished(srv, short["id"])
    assert d["status"] == "failed" and d["log"][0]["error"] == "timed out after 0.5 s"
    srv.api("DELETE", f"/api/v1/webhooks/{short['id']}")

    # a receiver that holds every request: uploads complete while it sleeps
    hook = srv.api("POST", "/api/v1/webhooks", json={"url": receiver.url("/slow"), "repository": slow_repo,
                                                     "timeout": 60, "events": ["package.created"]}).json()
    before = len(receiver.at("/slow"))
    first, second = _wheel(tmp_path, "slowpoke", "1.0"), _wheel(tmp_path, "slowpoke", "1.1")
    assert twine_upload(tmp_path, f"{srv.url}/{slow_repo}/legacy/", [first], token=srv.token).ok
    _wait(lambda: len(receiver.at("/slow")) > before, "the slow receiver to get the first delivery")
    assert twine_upload(tmp_path, f"{srv.url}/{slow_repo}/legacy/", [second], token=srv.token).ok
    assert not receiver.release.is_set() and len(receiver.at("/slow")) == before + 1  # still holding the first
    assert [d["status"] for d in _deliveries(srv, hook["id"])] == ["pending"]  # the second waits its turn
    events = srv.api("GET", "/api/v1/events", params={"repository": slow_repo}).json()
    assert [e["version"] for e in events if e["type"] == "package.created"] == ["1.1", "1.0"]
    receiver.release.set()
    done = _finished(srv, hook["id"], 2)
    assert [d["status"] for d in done] == ["delivered", "delivered"]
    assert {json.loads(g.body)["version"] for g in receiver.at("/slow")[before:]} == {"1.0", "1.1"}


@sqlite_only
def test_webhook_input_is_checked(hooks_server):
    srv = hooks_server
    for body, words in [({"url": "ftp://127.0.0.1/x"}, "http"), ({"url": "http://127.0.0.1:9/x", "events": ["nope"]}, "nope"),
                        ({"url": "http://127.0.0.1:9/x", "repository": "no-such-repo"}, "no-such-repo"),
                        ({"url": "http://127.0.0.1:9/x", "secret": "short"}, "16")]:
        r = srv.api("POST", "/api/v1/webhooks", json=body)
        assert r.status_code == 400 and words in r.json()["error"], (body, r.text)
    assert srv.api("POST", "/api/v1/webhooks/99999/ping").status_code == 404
    assert srv.api("GET", "/api/v1/webhooks", token=None).status_code == 401
