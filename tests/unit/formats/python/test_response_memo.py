"""The response memo (asgi.ResponseMemo) answers plain anonymous GETs of a public hosted repository's index pages
without routing, and only while nothing they depend on changed: a new upload, the repository turning private, a
stale root list; requests with credentials or conditions, HEAD and proxy pages always take the full path."""

from __future__ import annotations

import asyncio
import base64
import json
import time


from tests.support.artifacts import make_wheel
from wharf.asgi import ResponseMemo
from wharf.core.content import NewArtifact

JSON = b"application/vnd.pypi.simple.v1+json"


def _get(app, path: str, *headers: tuple[bytes, bytes], method: str = "GET") -> tuple[int, dict[bytes, bytes], bytes]:
    out: list = []

    async def receive():  # noqa: ANN202
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(m):  # noqa: ANN001, ANN202
        out.append(m)

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(b"host", b"t"), *headers], "client": ("127.0.0.1", 1), "scheme": "http",
             "http_version": "1.1"}
    asyncio.run(app(scope, receive, send))
    return out[0]["status"], dict(out[0]["headers"]), b"".join(m.get("body", b"") for m in out[1:])


def _upload(core, tmp_path, repo: str, name: str, version: str) -> str:
    wheel = make_wheel(tmp_path, name, version)
    blob = core.blobs.put_bytes(wheel.read_bytes())
    info = core.repos.get(repo)
    core.content.add(info, NewArtifact("python", name, version, wheel.name, blob, kind="bdist_wheel",
                                       meta={"requires_python": None}), actor="t")
    core.publish(core.repos.get(repo), {name})
    return wheel.name


def _files(body: bytes) -> list[str]:
    return [f["filename"] for f in json.loads(body)["files"]]


def test_memo_answers_without_routing_and_follows_every_change(app, tmp_path, monkeypatch):
    core = app.core
    core.create_repository(name="dev", format="python", actor="t")
    first = _upload(core, tmp_path, "dev", "demo", "1.0")
    accept = (b"accept", JSON)

    status, headers, body = _get(app, "/dev/simple/demo/", accept)
    assert status == 200 and _files(body) == [first] and headers[b"content-type"] == JSON
    assert len(app.memo) == 1

    # the second request is answered from the memo: routing (which reads the page store) is not reached
    def no_routing(*_a, **_k):  # noqa: ANN202
        raise AssertionError("routed")

    with monkeypatch.context() as m:
        m.setattr(core.pages, "read", no_routing)
        again = _get(app, "/dev/simple/demo/", accept)
    assert again == (status, headers, body)

    # an upload re-renders the page: the next answer shows it
    second = _upload(core, tmp_path, "dev", "demo", "2.0")
    assert _files(_get(app, "/dev/simple/demo/", accept)[2]) == [first, second]

    # the other representation is its own entry, negotiated as the full path does
    status, headers, body = _get(app, "/dev/simple/demo/", (b"accept", b"text/html"))
    assert status == 200 and headers[b"content-type"].startswith(b"text/html") and first.encode() in body
    assert _get(app, "/dev/simple/demo/", (b"accept", b"text/html"))[2] == body

    # the repository turns private: anonymous clients are refused at once, remembered answers or not
    core.repos.update("dev", private=True, actor="t")
    status, headers, _ = _get(app, "/dev/simple/demo/", accept)
    assert status == 401 and b"www-authenticate" in headers
    _, secret = core.tokens.create(name="reader", scopes=[{"repository": "dev", "actions": ["read"]}],
                                   expires_at=None, creator=None)
    basic = (b"authorization", b"Basic " + base64.b64encode(f"__token__:{secret}".encode()))
    size = len(app.memo)
    status, _, body = _get(app, "/dev/simple/demo/", accept, basic)
    assert status == 200 and _files(body) == [first, second]
    assert len(app.memo) == size  # an answer given to credentials is not remembered
    assert _get(app, "/dev/simple/demo/", accept)[0] == 401


def test_root_list_follows_new_projects(app, tmp_path):
    core = app.core
    core.create_repository(name="dev", format="python", actor="t")
    _upload(core, tmp_path, "dev", "alpha", "1.0")
    root = _get(app, "/dev/simple/", (b"accept", JSON))
    assert [p["name"] for p in json.loads(root[2])["projects"]] == ["alpha"]
    _upload(core, tmp_path, "dev", "beta", "1.0")  # marks the root list stale (rendered on its next request)
    root = _get(app, "/dev/simple/", (b"accept", JSON))
    assert sorted(p["name"] for p in json.loads(root[2])["projects"]) == ["alpha", "beta"]


def test_conditional_head_and_proxy_requests_take_the_full_path(app, tmp_path):
    core = app.core
    core.create_repository(name="dev", format="python", actor="t")
    _upload(core, tmp_path, "dev", "demo", "1.0")
    status, headers, _ = _get(app, "/dev/simple/demo/", (b"if-none-match", b"*"))
    assert status == 304
    status, headers, body = _get(app, "/dev/simple/demo/", method="HEAD")
    assert status == 200 and body == b"" and int(headers[b"content-length"]) > 0
    assert len(app.memo) == 0
    status, _, body = _get(app, "/dev/simple/demo/")
    assert status == 200 and len(app.memo) == 1
    # a remembered answer never stands in for a conditional request
    assert _get(app, "/dev/simple/demo/", (b"if-none-match", headers[b"etag"]))[0] == 304



def _proxy_page(filename: str) -> dict[str, bytes]:
    doc = {"meta": {"api-version": "1.1"}, "name": "demo", "versions": ["9.0"],
           "files": [{"filename": filename, "url": f"../../files/x/{filename}", "hashes": {"sha256": "a" * 64}}]}
    return {"json": json.dumps(doc).encode(), "html": b"<html></html>"}


class _Later:
    """Stands in for the memo's clock: an hour from now."""

    @staticmethod
    def time() -> float:
        return time.time() + 3600


def test_proxy_and_group_answers_last_until_revalidation(app, tmp_path, monkeypatch):
    core = app.core
    core.create_repository(name="dev", format="python", actor="t")
    core.create_repository(name="up", format="python", kind="proxy", actor="t",
                           config={"upstream": {"url": "http://127.0.0.1:9/simple/"}})
    core.create_repository(name="grp", format="python", kind="group", actor="t", config={"members": ["dev", "up"]})
    exp = time.time() + 600
    core.pages.write("up", "simple/demo", 1, _proxy_page("demo-9.0-py3-none-any.whl"), {"exp": exp, "upstream": {}})
    accept = (b"accept", JSON)
    for _ in range(2):  # (the group's first merge writes its own page: what was remembered before it is renewed)
        for path in ("/up/simple/demo/", "/grp/simple/demo/"):
            assert _files(_get(app, path, accept)[2]) == ["demo-9.0-py3-none-any.whl"]
    assert sorted(v[5] for v in app.memo._items.values()) == [exp, exp]  # good until the proxy page is due

    reads: list[str] = []
    read = core.pages.read
    monkeypatch.setattr(core.pages, "read", lambda repo, key: reads.append(repo) or read(repo, key))
    for path in ("/up/simple/demo/", "/grp/simple/demo/"):
        _get(app, path, accept)
    assert reads == []  # both answered from the memo
    with monkeypatch.context() as m:
        m.setattr("wharf.asgi.time", _Later)  # past the proxy page's revalidation time: the full path again
        _get(app, "/up/simple/demo/", accept)
    assert reads == ["up"]

    # a new proxy page (a revalidation brought a new file): the proxy and the group follow at once
    core.pages.write("up", "simple/demo", 2, _proxy_page("demo-9.1-py3-none-any.whl"), {"exp": exp, "upstream": {}})
    for path in ("/up/simple/demo/", "/grp/simple/demo/"):
        assert _files(_get(app, path, accept)[2]) == ["demo-9.1-py3-none-any.whl"]

    # a stale proxy page (served while its upstream is down) is never remembered
    core.pages.write("up", "simple/other", 1, _proxy_page("other-1.0-py3-none-any.whl"),
                     {"exp": time.time() - 1, "upstream": {}})
    size = len(app.memo)
    assert _get(app, "/up/simple/other/", accept)[0] == 200
    assert len(app.memo) == size

    # a member with address rules: the group's answers are checked on every request (this client is allowed, the
    # next may not be), never remembered
    core.repos.update("dev", config={"allow_read": ["127.0.0.0/8"]}, actor="t")
    size = len(app.memo)
    assert _get(app, "/grp/simple/demo/", accept)[0] == 200
    assert len(app.memo) == size


def test_memo_is_bounded():
    memo = ResponseMemo(entries=3, body_bytes=1600)
    for i in range(10):
        memo.store((f"/r/simple/p{i}/", None), 1, 200, [], b"x" * 90, "python")
        assert len(memo) <= 3
    memo.store(("/r/simple/big/", None), 1, 200, [], b"x" * 200, "python")  # over 1/16 of the budget: not kept
    assert all(key[0] != "/r/simple/big/" for key in memo._items)
    small = ResponseMemo(entries=100, body_bytes=16 * 100)
    for i in range(40):
        small.store((f"/p{i}", None), 1, 200, [], b"x" * 100, "python")
        assert small._bytes <= 1600
