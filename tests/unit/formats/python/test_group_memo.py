"""The group's memoised merge is exact: a member page that changes, a hosted member that gains the name (the guard
engages), a proxy page due for revalidation, or new group settings all lead to a fresh merge."""

from __future__ import annotations

import asyncio
import json
import time


from tests.support.artifacts import make_wheel
from wharf.core.content import NewArtifact


def _upstream_page(filename: str, sha: str) -> dict[str, bytes]:
    doc = {"meta": {"api-version": "1.1"}, "name": "demo", "versions": ["9.0"],
           "files": [{"filename": filename, "url": f"../../files/{sha}/{filename}", "hashes": {"sha256": sha}}]}
    return {"json": json.dumps(doc).encode(), "html": b"<html></html>"}


def _files(app, path: str) -> list[str]:
    out: list = []

    async def receive():  # noqa: ANN202
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(m):  # noqa: ANN001, ANN202
        out.append(m)

    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(b"host", b"t"), (b"accept", b"application/vnd.pypi.simple.v1+json")], "client": ("127.0.0.1", 1),
             "scheme": "http", "http_version": "1.1"}
    asyncio.run(app(scope, receive, send))
    assert out[0]["status"] == 200, out
    return [f["filename"] for f in json.loads(out[1]["body"])["files"]]


def test_group_memo_follows_every_change(app, tmp_path):
    core = app.core
    hosted = core.create_repository(name="dev", format="python", actor="t")
    core.create_repository(name="up", format="python", kind="proxy", actor="t",
                           config={"upstream": {"url": "http://127.0.0.1:9/simple/"}})
    core.create_repository(name="grp", format="python", kind="group", actor="t", config={"members": ["dev", "up"]})
    far = {"exp": time.time() + 3600, "upstream": {}}
    core.pages.write("up", "simple/demo", 1, _upstream_page("demo-9.0-py3-none-any.whl", "a" * 64), far)
    assert _files(app, "/grp/simple/demo/") == ["demo-9.0-py3-none-any.whl"]
    assert _files(app, "/grp/simple/demo/") == ["demo-9.0-py3-none-any.whl"]  # served from the memo

    # the proxy page changes (a revalidation brought a new file): the group follows
    core.pages.write("up", "simple/demo", 2, _upstream_page("demo-9.1-py3-none-any.whl", "b" * 64), far)
    assert _files(app, "/grp/simple/demo/") == ["demo-9.1-py3-none-any.whl"]

    # the hosted member gains the name: the guard hides the proxy at once
    wheel = make_wheel(tmp_path, "demo", "1.0")
    blob = core.blobs.put_bytes(wheel.read_bytes())
    core.content.add(hosted, NewArtifact("python", "demo", "1.0", wheel.name, blob, kind="bdist_wheel",
                                         meta={"requires_python": None}), actor="t")
    core.publish(core.repos.get("dev"), {"demo"})
    assert _files(app, "/grp/simple/demo/") == [wheel.name]

    # new group settings (guard off): both members again
    core.repos.update("grp", config={"members": ["dev", "up"], "guard": False}, actor="t")
    assert _files(app, "/grp/simple/demo/") == [wheel.name, "demo-9.1-py3-none-any.whl"]
