"""An error answered before a request body was read: a small body is drained so the connection can be reused;
a large one gets ``Connection: close`` instead of the server reading megabytes it will throw away."""

from __future__ import annotations

import asyncio

import pytest

from wharf.app import WharfApp
from wharf.config import Settings
from wharf.core.services import Core


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    core = Core(Settings(data=tmp_path_factory.mktemp("app") / "data", access_log=False), migrate=True)
    core.create_repository(name="dev", format="python", actor="t")
    yield WharfApp(core)
    core.close()


def _run(app, chunks, length, stall=False):
    sent, pending = [], list(chunks)

    async def receive():
        if pending:
            body = pending.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(pending) or stall}
        await asyncio.sleep(5)  # a client that stopped sending
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/dev/legacy/", "scheme": "http", "client": ("127.0.0.1", 1),
             "headers": [(b"content-type", b"multipart/form-data; boundary=b"), (b"content-length", str(length).encode())]}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], dict(start["headers"]), pending


def test_small_unread_body_is_drained_and_the_connection_kept(app):
    chunks = [b"x" * 65536] * 8
    status, headers, left = _run(app, chunks, 65536 * 8)
    assert status == 401 and left == []  # everything was read
    assert headers.get(b"connection") != b"close"


def test_large_unread_body_closes_the_connection(app):
    status, headers, left = _run(app, [b"x" * 65536] * 4, 64 * 1024 * 1024)
    assert status == 401 and headers[b"connection"] == b"close"
    assert len(left) == 4  # not read


def test_stalled_body_does_not_hang_the_error(app):
    status, headers, _left = _run(app, [b"x" * 1000], 500_000, stall=True)  # sends less than it declares, then stalls
    assert status == 401 and headers[b"connection"] == b"close"
