"""Who may call which generic route: anonymous, read, write, admin tokens of the repository, an admin token of
another repository, '*' read and '*' admin, against public and private hosted and proxy repositories; Bearer and
Basic (``__token__:<secret>``) credentials take turns. Reads: public -> anyone, private -> read scope. PUT needs
write; DELETE needs admin (as Artifactory/Nexus keep deletion apart from deploy)."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest

from tests.conftest import unique

CALLERS = ("anonymous", "read", "write", "admin", "other-admin", "star-read", "star-admin")
#                 anon  read  write admin other *read *admin
PUBLIC_READ = ("ok", "ok", "ok", "ok", "ok", "ok", "ok")
PRIVATE_READ = (401, "ok", "ok", "ok", 403, "ok", "ok")
WRITE = (401, 403, "ok", "ok", 403, 403, "ok")
ADMIN = (401, 403, 403, "ok", 403, 403, "ok")
READ_ONLY = (405,) * 7  # writes to a proxy: refused whoever asks

ROUTES = [  # method, path template, success status, rule on a public repo, rule on a private repo
    ("GET", "/{repo}/dir/file.bin", 200, PUBLIC_READ, PRIVATE_READ),
    ("HEAD", "/{repo}/dir/file.bin", 200, PUBLIC_READ, PRIVATE_READ),
    ("GET", "/{repo}/", 200, PUBLIC_READ, PRIVATE_READ),
    ("GET", "/{repo}/dir/", 200, PUBLIC_READ, PRIVATE_READ),
    ("GET", "/{repo}/dir?list", 200, PUBLIC_READ, PRIVATE_READ),
    ("PUT", "/{repo}/new/{unique}.bin", 201, WRITE, WRITE),
    ("DELETE", "/{repo}/doomed/{unique}.bin", 200, ADMIN, ADMIN),
    ("DELETE", "/{repo}/doomed-dir-{unique}/", 200, ADMIN, ADMIN),
    ("GET", "/{proxy}/dir/file.bin", 200, PUBLIC_READ, PRIVATE_READ),
    ("GET", "/{proxy}/", 200, PUBLIC_READ, PRIVATE_READ),
    ("PUT", "/{proxy}/new/{unique}.bin", 405, READ_ONLY, READ_ONLY),
    ("DELETE", "/{proxy}/dir/file.bin", 405, READ_ONLY, READ_ONLY),
]


@pytest.fixture(scope="module")
def world(server: Any) -> dict[str, Any]:
    w: dict[str, Any] = {"server": server}
    source = unique("gsrc")
    server.create_repo(source, format="generic")
    with server.client() as c:
        assert c.put(f"/{source}/dir/file.bin", content=b"proxied").status_code == 201
    for vis in ("pub", "priv"):
        repo = unique(f"gauth{vis}")
        server.create_repo(repo, format="generic", private=vis == "priv")
        proxy = unique(f"gauthp{vis}")
        r = server.api("POST", "/api/v1/repositories", json={
            "name": proxy, "format": "generic", "kind": "proxy", "private": vis == "priv",
            "config": {"upstream": {"url": f"{server.url}/{source}/"}}})
        assert r.status_code == 201, r.text
        with server.client() as c:
            assert c.put(f"/{repo}/dir/file.bin", content=b"bytes").status_code == 201
        other = unique("gother")
        server.create_repo(other, format="generic")
        w[vis] = {"repo": repo, "proxy": proxy, "tokens": {
            "anonymous": None,
            "read": server.create_token(f"r-{repo}", {repo: "read", proxy: "read"}),
            "write": server.create_token(f"w-{repo}", {repo: "write", proxy: "write"}),
            "admin": server.create_token(f"a-{repo}", {repo: "admin", proxy: "admin"}),
            "other-admin": server.create_token(f"o-{repo}", {other: "admin"}),
            "star-read": server.create_token(f"sr-{repo}", {"*": "read"}),
            "star-admin": server.token,
        }}
    return w


_styles = itertools.cycle(["bearer", "basic"])
_n = itertools.count()


@pytest.mark.parametrize("vis", ["pub", "priv"])
@pytest.mark.parametrize("method, template, ok, pub, priv", ROUTES,
                         ids=[f"{m} {t}" for m, t, *_ in ROUTES])
def test_generic_route_access(world: dict[str, Any], vis: str, method: str, template: str, ok: int,
                              pub: tuple[Any, ...], priv: tuple[Any, ...]) -> None:
    server = world["server"]
    w = world[vis]
    rule = pub if vis == "pub" else priv
    got, want = {}, {}
    for caller, expected in zip(CALLERS, rule):
        n = next(_n)
        path = template.format(repo=w["repo"], proxy=w["proxy"], unique=f"f{n}")
        if method == "DELETE" and "doomed" in path:  # something to delete, put there by the server admin
            target = path + "x.bin" if path.endswith("/") else path
            with server.client() as c:
                assert c.put(target, content=f"doomed {n}".encode()).status_code == 201
        token = w["tokens"][caller]
        headers = {}
        if token is not None:
            if next(_styles) == "bearer":
                headers["Authorization"] = f"Bearer {token}"
            else:
                headers["Authorization"] = httpx.BasicAuth("__token__", token)._auth_header
        with httpx.Client(base_url=server.url, timeout=60) as c:
            r = c.request(method, path, headers=headers, content=b"payload" if method == "PUT" else None)
        got[caller] = r.status_code
        want[caller] = ok if expected == "ok" else expected
        if r.status_code == 401:
            assert r.headers["www-authenticate"].startswith("Basic")
    assert got == want
