"""Proxy repositories against a scripted upstream: every fault gives a clear 502/504 naming the upstream, and
nothing bad is cached. The upstream is a fake (tests/support/fake_upstream.py) because these faults (garbage,
wrong digests, slow bodies, resets) cannot be caused with a real server; the happy paths with real servers and
real clients are in test_proxy_group.py."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import time
from typing import Any, Iterator

import httpx
import pytest

from tests.conftest import unique
from tests.support import artifacts
from tests.support.clients import pip_install
from tests.support.fake_upstream import JSON_TYPE, Behaviour, FakeUpstream, Fault
from tests.support.server import WharfServer

pytestmark = pytest.mark.timeout(120)

JSON = {"Accept": "application/vnd.pypi.simple.v1+json"}


@pytest.fixture(scope="module")
def wharf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfServer]:
    with WharfServer(tmp_path_factory.mktemp("wharf-faults") / "data") as srv:
        yield srv


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


def _proxy(srv: WharfServer, fake: FakeUpstream, url: str | None = None, **upstream: Any) -> str:
    """A proxy repository on ``fake`` with small timeouts and explicit breaker settings (overridable)."""
    name = unique("fx")
    cfg = {"url": url or fake.index_url, "connect_timeout": 1, "read_timeout": 1, "index_ttl": 600, "negative_ttl": 600,
           "breaker_threshold": 100, "breaker_cooldown": 1, **upstream}
    r = srv.api("POST", "/api/v1/repositories", json={"name": name, "format": "python", "kind": "proxy",
                                                       "config": {"upstream": cfg}})
    assert r.status_code == 201, r.text
    return name


def _page(srv: WharfServer, repo: str, project: str, fake: FakeUpstream, **kw: Any) -> httpx.Response:
    """GET a project page through the proxy; whatever it is, it never shows the upstream's address."""
    r = httpx.get(f"{srv.url}/{repo}/simple/{project}/", timeout=30, **kw)
    if r.status_code == 200:
        assert fake.host not in r.text, r.text
    return r


def _assert_upstream_error(r: httpx.Response, fake: FakeUpstream, status: tuple[int, ...] = (502,)) -> str:
    assert r.status_code in status, (r.status_code, r.text)
    error = r.json()["error"]
    assert fake.index_url in error, error  # names the upstream
    return error


def _cached_page(srv: WharfServer, repo: str, project: str) -> bool:
    return (srv.data / "pages" / repo / "simple" / f"{project}.page").exists()


def _blobs(srv: WharfServer) -> set[str]:
    root = srv.data / "blobs"
    return {p.name for p in root.rglob("*") if p.is_file() and ".tmp" not in p.relative_to(root).parts}


def _packages(srv: WharfServer, repo: str) -> list[str]:
    r = srv.api("GET", f"/api/v1/repositories/{repo}/packages")
    assert r.status_code == 200, r.text
    return r.json()


def _file_url(srv: WharfServer, repo: str, project: str) -> str:
    doc = httpx.get(f"{srv.url}/{repo}/simple/{project}/", headers=JSON, timeout=30).json()
    return str(httpx.URL(f"{srv.url}/{repo}/simple/{project}/").join(doc["files"][0]["url"]))


def _download(url: str) -> tuple[int | None, bytes]:
    """(status, body) of a GET, or (None, what arrived) when the connection was cut."""
    got = b""
    try:
        with httpx.stream("GET", url, timeout=30) as r:
            for chunk in r.iter_raw():
                got += chunk
            return r.status_code, got
    except httpx.TransportError:
        return None, got


# -- each fault: a clear error, nothing cached ------------------------------------------------------------------
def test_garbage_index_page_is_502_and_not_cached(wharf, fake):
    repo = _proxy(wharf, fake)
    for garbage in (Fault.garbage(), Fault.garbage("text/html", b"\xff\xfe\x00 not utf-8 \x81"),
                    Fault.garbage(JSON_TYPE, b'{"files": 5}'), Fault.garbage(JSON_TYPE, b'{"files": [{"x": 1}]}'),
                    Fault.garbage("image/png", b"\x89PNG")):
        fake.set("/simple/garbled/", garbage)
        error = _assert_upstream_error(_page(wharf, repo, "garbled", fake), fake)
        assert "garbled" in error
        assert not _cached_page(wharf, repo, "garbled")
    # fixed upstream: the good page is served at once (index_ttl is 600 s: nothing bad was cached to wait out)
    fake.project("garbled", {"garbled-1.0-py3-none-any.whl": artifacts.wheel_bytes("garbled", "1.0")})
    r = _page(wharf, repo, "garbled", fake, headers=JSON)
    assert r.status_code == 200 and [f["filename"] for f in r.json()["files"]] == ["garbled-1.0-py3-none-any.whl"]


def test_wrong_digest_fails_the_download_and_stores_nothing(wharf, fake, tmp_path):
    fn = "tampered-1.0-py3-none-any.whl"
    good = artifacts.wheel_bytes("tampered", "1.0")
    evil = artifacts.wheel_bytes("tampered", "1.0", module_code="print('owned')")  # a valid wheel, other bytes
    fake.project("tampered", {fn: good})
    fake.set(f"/files/{fn}", Behaviour(body=evil))
    repo = _proxy(wharf, fake)
    blobs = _blobs(wharf)

    res = pip_install(tmp_path, f"{wharf.url}/{repo}/simple/", "tampered", target=tmp_path / "t1",
                      extra_args=["--retries", "0"])
    assert not res.ok, res
    assert not (tmp_path / "t1" / "tampered").exists()
    url = _file_url(wharf, repo, "tampered")
    # one chunk from the upstream: the mismatch is known before anything is sent -> 502 naming the upstream
    status, body = _download(url)
    assert status == 502 and fake.index_url in json.loads(body)["error"] and "sha256" in json.loads(body)["error"]
    # many chunks: the response has started, the held-back tail is never sent -> a cut, never the whole wrong file
    fake.set(f"/files/{fn}", Fault.slow(evil, delay=0.05, chunk=200))
    status, body = _download(url)
    assert status is None or status >= 500 or len(body) < len(evil), (status, len(body))
    assert body != evil
    assert _blobs(wharf) == blobs
    assert _packages(wharf, repo) == []
    assert not (wharf.data / "pages" / repo / "files").exists() or not any((wharf.data / "pages" / repo / "files").rglob(fn))

    fake.set(f"/files/{fn}", Behaviour(body=good))  # the upstream is fixed
    res = pip_install(tmp_path, f"{wharf.url}/{repo}/simple/", "tampered", target=tmp_path / "t2")
    assert res.ok, res
    assert (tmp_path / "t2" / "tampered-1.0.dist-info").is_dir()
    assert _packages(wharf, repo) == ["tampered"]
    assert httpx.get(url, timeout=30).content == good


def test_slow_upstream_is_504_and_the_server_keeps_answering(wharf, fake):
    fn = "sluggish-1.0-py3-none-any.whl"
    data = artifacts.wheel_bytes("sluggish", "1.0")
    page = fake.project("sluggish", {fn: data})
    repo = _proxy(wharf, fake, read_timeout=2)
    fake.set("/simple/sluggish/", Fault.slow(page, delay=4, chunk=16, content_type=JSON_TYPE))
    other = _proxy(wharf, fake)
    fake.project("brisk", {"brisk-1.0-py3-none-any.whl": artifacts.wheel_bytes("brisk", "1.0")})

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        started = time.monotonic()
        slow = pool.submit(_page, wharf, repo, "sluggish", fake)
        time.sleep(0.2)
        # meanwhile: other requests (health, another proxy's page) are answered promptly
        assert httpx.get(f"{wharf.url}/health", timeout=5).status_code == 200
        assert _page(wharf, other, "brisk", fake).status_code == 200
        assert not slow.done()
        r = slow.result()
        elapsed = time.monotonic() - started
    error = _assert_upstream_error(r, fake, (504,))
    assert "timed out" in error and elapsed < 3.8  # the read timeout (2 s), not the upstream's pace (4 s a chunk)
    assert not _cached_page(wharf, repo, "sluggish")

    # a slow file: 504 when nothing was sent yet, else a cut response; never cached
    fake.project("sluggish", {fn: data})
    fake.set(f"/files/{fn}", Fault.slow(data, delay=4, chunk=16))
    blobs = _blobs(wharf)
    status, body = _download(_file_url(wharf, repo, "sluggish"))
    assert status == 504 or status is None or len(body) < len(data), (status, len(body))
    if status == 504:
        assert "timed out" in json.loads(body)["error"] and fake.index_url in json.loads(body)["error"]
    assert _blobs(wharf) == blobs and _packages(wharf, repo) == []


def test_upstream_500_and_connection_resets_are_502(wharf, fake):
    fn = "flaky-1.0-py3-none-any.whl"
    data = artifacts.wheel_bytes("flaky", "1.0")
    repo = _proxy(wharf, fake)
    fake.set("/simple/flaky/", Fault.status(500))
    error = _assert_upstream_error(_page(wharf, repo, "flaky", fake), fake)
    assert "500" in error
    fake.set("/simple/flaky/", Fault.reset())
    _assert_upstream_error(_page(wharf, repo, "flaky", fake), fake)
    assert not _cached_page(wharf, repo, "flaky")

    fake.project("flaky", {fn: data})
    url = _file_url(wharf, repo, "flaky")
    blobs = _blobs(wharf)
    for fault in (Fault.status(500), Fault.status(503), Fault.reset(), Fault.reset_mid(data)):
        fake.set(f"/files/{fn}", fault)
        status, body = _download(url)
        assert status == 502, (fault, status, body[:200])
        assert fake.index_url in json.loads(body)["error"]
    assert _blobs(wharf) == blobs and _packages(wharf, repo) == []
    fake.set(f"/files/{fn}", Behaviour(body=data))
    assert _download(url) == (200, data)


def test_negative_cache_until_negative_ttl(wharf, fake):
    repo = _proxy(wharf, fake, negative_ttl=1.5)
    r = _page(wharf, repo, "later", fake)
    t0 = time.monotonic()  # the 404 was remembered before this
    assert r.status_code == 404 and fake.index_url in r.json()["error"]
    assert fake.count("/simple/later/") == 1
    fake.project("later", {"later-1.0-py3-none-any.whl": artifacts.wheel_bytes("later", "1.0")})
    assert _page(wharf, repo, "later", fake).status_code == 404  # remembered...
    assert fake.count("/simple/later/") == 1  # ...without asking the upstream
    time.sleep(max(0.0, 1.7 - (time.monotonic() - t0)))
    r = _page(wharf, repo, "later", fake)
    assert r.status_code == 200, r.text
    assert fake.count("/simple/later/") == 2


def test_circuit_breaker_fails_fast_then_recovers(wharf, fake):
    repo = _proxy(wharf, fake, breaker_threshold=2, breaker_cooldown=1.5)
    fake.set("/simple/downer/", Fault.status(500))
    for _ in range(2):
        _assert_upstream_error(_page(wharf, repo, "downer", fake), fake)
    assert fake.count("/simple/downer/") == 2
    # open: fails fast, says so, and the upstream is not contacted (for any project)
    t0 = time.monotonic()
    error = _assert_upstream_error(_page(wharf, repo, "downer", fake), fake)
    assert "unavailable" in error and time.monotonic() - t0 < 1.0
    fake.project("other", {"other-1.0-py3-none-any.whl": artifacts.wheel_bytes("other", "1.0")})
    assert "unavailable" in _assert_upstream_error(_page(wharf, repo, "other", fake), fake)
    assert fake.count("/simple/downer/") == 2 and fake.count("/simple/other/") == 0
    # after the cooldown, the (now healthy) upstream is tried again
    fake.project("downer", {"downer-1.0-py3-none-any.whl": artifacts.wheel_bytes("downer", "1.0")})
    time.sleep(1.6)
    assert _page(wharf, repo, "downer", fake).status_code == 200
    assert _page(wharf, repo, "other", fake).status_code == 200
    assert fake.count("/simple/downer/") == 3


def test_stale_if_error_serves_the_cache_when_the_upstream_is_gone(wharf, fake, tmp_path):
    fn = "durable-1.0-py3-none-any.whl"
    fake.project("durable", {fn: artifacts.wheel_bytes("durable", "1.0")})
    repo = _proxy(wharf, fake, index_ttl=0.3)
    index = f"{wharf.url}/{repo}/simple/"
    res = pip_install(tmp_path, index, "durable", target=tmp_path / "t1")
    assert res.ok, res
    before = _page(wharf, repo, "durable", fake, headers=JSON)
    assert before.status_code == 200
    fake.stop()
    time.sleep(0.4)  # past the TTL: the proxy tries the upstream, fails, serves what it has
    after = _page(wharf, repo, "durable", fake, headers=JSON)
    assert after.status_code == 200 and after.content == before.content
    res = pip_install(tmp_path, index, "durable", target=tmp_path / "t2")
    assert res.ok, res
    assert (tmp_path / "t2" / "durable-1.0.dist-info").is_dir()
    assert "stale" in wharf.log_path.read_text()


def test_conditional_revalidation_after_the_ttl(wharf, fake):
    lm = "Mon, 01 Jan 2024 00:00:00 GMT"
    fake.project("cond", {"cond-1.0-py3-none-any.whl": artifacts.wheel_bytes("cond", "1.0")}, etag='"v1"',
                 last_modified=lm)
    repo = _proxy(wharf, fake, index_ttl=0.5)
    first = _page(wharf, repo, "cond", fake, headers=JSON)
    assert first.status_code == 200
    assert "if-none-match" not in fake.requests("/simple/cond/")[0]
    time.sleep(0.6)
    second = _page(wharf, repo, "cond", fake, headers=JSON)
    assert second.status_code == 200 and second.content == first.content
    assert fake.count("/simple/cond/") == 2
    sent = fake.requests("/simple/cond/")[1]
    assert sent.get("if-none-match") == '"v1"' and sent.get("if-modified-since") == lm
    # the 304 renewed the TTL: the next request is served without asking the upstream
    assert _page(wharf, repo, "cond", fake, headers=JSON).content == first.content
    assert fake.count("/simple/cond/") == 2


def test_links_are_rewritten_to_the_proxy(wharf, fake, tmp_path):
    fn = "linked-1.0-py3-none-any.whl"
    data = artifacts.wheel_bytes("linked", "1.0")
    fake.project("linked", {fn: data}, absolute=True)  # the upstream links its files by absolute URL
    repo = _proxy(wharf, fake)
    for accept in ("application/vnd.pypi.simple.v1+json", "application/vnd.pypi.simple.v1+html", "text/html"):
        r = _page(wharf, repo, "linked", fake, headers={"Accept": accept})
        assert r.status_code == 200 and "../../files/" in r.text  # (_page also checked host:port is absent)
    # non-canonical names redirect to the one cached page
    r = httpx.get(f"{wharf.url}/{repo}/simple/Linked/", timeout=30)
    assert r.status_code == 301 and r.headers["location"].endswith(f"/{repo}/simple/linked/")
    assert httpx.get(f"{wharf.url}/{repo}/simple/not..a..name/", timeout=30).status_code in (301, 404)
    assert fake.count("/simple/linked/") == 1
    res = pip_install(tmp_path, f"{wharf.url}/{repo}/simple/", "Linked", target=tmp_path / "t")
    assert res.ok, res
    assert fake.count(f"/files/{fn}") == 1


def test_upstream_auth_is_sent_and_its_secret_never_shown(wharf, fake):
    password, token = "pw-Sekr1t-4242", "tok-Sekr1t-9191"
    fn = "private-1.0-py3-none-any.whl"
    data = artifacts.wheel_bytes("private", "1.0")
    fake.project("private", {fn: data})

    fake.expect_auth = "Basic " + base64.b64encode(f"alice:{password}".encode()).decode()
    basic = _proxy(wharf, fake, auth={"type": "basic", "username": "alice", "password": password})
    assert _page(wharf, basic, "private", fake).status_code == 200
    assert _download(_file_url(wharf, basic, "private")) == (200, data)
    assert fake.requests(f"/files/{fn}")[-1]["authorization"] == fake.expect_auth
    # credentials written into the URL are moved out of it
    in_url = _proxy(wharf, fake, url=f"http://{'alice'}:{password}@{fake.host}/simple/")
    assert _page(wharf, in_url, "private", fake).status_code == 200
    # without credentials the upstream refuses: a clear 502, not a cached "not found"
    anonymous = _proxy(wharf, fake)
    assert "401" in _assert_upstream_error(_page(wharf, anonymous, "private", fake), fake)

    fake.expect_auth = f"Bearer {token}"
    bearer = _proxy(wharf, fake, auth={"type": "bearer", "token": token})
    assert _page(wharf, bearer, "private", fake).status_code == 200
    assert fake.requests("/simple/private/")[-1]["authorization"] == f"Bearer {token}"

    # the secrets never leave the server: API output, audit log, server log
    shown = [wharf.api("GET", f"/api/v1/repositories/{n}").text for n in (basic, in_url, bearer)]
    shown.append(wharf.api("GET", "/api/v1/repositories").text)
    shown.append(wharf.api("GET", "/api/v1/audit", params={"limit": 1000}).text)
    shown.append(wharf.log_path.read_text(errors="replace"))
    for text in shown:
        assert password not in text and token not in text
    doc = wharf.api("GET", f"/api/v1/repositories/{in_url}").json()
    assert doc["config"]["upstream"]["url"] == f"{fake.url}/simple/"
    assert doc["config"]["upstream"]["auth"]["type"] == "basic"
