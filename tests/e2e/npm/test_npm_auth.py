"""Who may call which npm route: every route of the npm protocol x anonymous / read / write / repository admin /
admin of another repository / an invalid token, against public and private hosted, group and proxy repositories.

Unpublish follows the repository's default rule (admin). Login takes the caller's token as the password (no
Authorization header), as `npm login` sends it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import unique
from tests.support.npm_clients import pack_tarball, publish_document

ANON, READ, WRITE, ADMIN, OTHER, GARBAGE = CALLERS = ("anonymous", "read", "write", "admin", "other-admin", "garbage")
BAD_SECRET = "wharf_this-is-not-a-token-this-is-not-a-token-00"

#                      anon read write admin other
ANYONE =              "ok   ok   ok    ok    ok"
PRIVATE_READ =        "401  ok   ok    ok    403"
WRITE_ACCESS =        "401  403  ok    ok    403"
ADMIN_ACCESS =        "401  403  403   ok    403"


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # {r} hosted, {g} group, {p} proxy; {new} a fresh package name; {victim} a prepared package
    ok: int
    pub: str
    priv: str
    body: str | None = None  # publish | deprecate | drop-version | tag | login | audit
    prepare: str | None = None  # victim: a package with versions 1.0.0 and 1.0.1 | tag: a dist-tag "t" to delete
    garbage: int = 401  # what an invalid token gets

    def expected(self, vis: str, caller: str) -> int:
        if caller == GARBAGE:
            return self.garbage
        cell = (self.pub if vis == "pub" else self.priv).split()[CALLERS.index(caller)]
        return self.ok if cell == "ok" else int(cell)


R = dict(pub=ANYONE, priv=PRIVATE_READ)
W = dict(pub=WRITE_ACCESS, priv=WRITE_ACCESS)
A = dict(pub=ADMIN_ACCESS, priv=ADMIN_ACCESS)
TGZ = "/-/sentinel-1.0.0.tgz"

ROWS = (
    # reads of a hosted repository
    Row("GET", "/{r}/", 200, **R),
    Row("GET", "/{r}/sentinel", 200, **R),
    Row("HEAD", "/{r}/sentinel", 200, **R),
    Row("GET", "/{r}/@acme%2fscoped", 200, **R),
    Row("GET", "/{r}/@acme/scoped", 200, **R),
    Row("GET", "/{r}/sentinel/1.0.0", 200, **R),
    Row("GET", "/{r}/sentinel/latest", 200, **R),
    Row("GET", "/{r}/sentinel" + TGZ, 200, **R),
    Row("HEAD", "/{r}/sentinel" + TGZ, 200, **R),
    Row("GET", "/{r}/@acme/scoped/-/scoped-1.0.0.tgz", 200, **R),
    Row("GET", "/{r}/-/package/sentinel/dist-tags", 200, **R),
    Row("GET", "/{r}/-/ping", 200, **R),
    Row("GET", "/{r}/-/v1/search", 200, **R),
    Row("POST", "/{r}/-/npm/v1/security/advisories/bulk", 200, body="audit", **R),
    Row("POST", "/{r}/-/npm/v1/security/audits/quick", 200, body="audit", **R),
    # identity and login
    Row("GET", "/{r}/-/whoami", 200, pub="401 ok ok ok ok", priv="401 ok ok ok 403"),
    Row("PUT", "/{r}/-/user/org.couchdb.user:someone", 201, body="login", pub="401 ok ok ok ok",
        priv="401 ok ok ok 403"),
    Row("POST", "/{r}/-/v1/login", 404, body="audit", pub="404 404 404 404 404", priv="404 404 404 404 404",
        garbage=401),
    Row("DELETE", "/{r}/-/user/token/whatever", 200, **R),
    # writes
    Row("PUT", "/{r}/{new}", 201, body="publish", **W),
    Row("PUT", "/{r}/-/package/sentinel/dist-tags/t", 201, body="tag", **W),
    Row("DELETE", "/{r}/-/package/sentinel/dist-tags/t", 200, prepare="tag", **W),
    Row("PUT", "/{r}/sentinel", 200, body="deprecate", **W),
    # unpublish: admin by default
    Row("PUT", "/{r}/{victim}/-rev/1-x", 200, body="drop-version", prepare="victim", **A),
    Row("DELETE", "/{r}/{victim}/-/{victim}-1.0.1.tgz/-rev/1-x", 200, prepare="victim", **A),
    Row("DELETE", "/{r}/{victim}/-rev/1-x", 200, prepare="victim", **A),
    # a group over the hosted repository (its default member takes publishes)
    Row("GET", "/{g}/sentinel", 200, **R),
    Row("GET", "/{g}/sentinel" + TGZ, 200, **R),
    Row("GET", "/{g}/-/package/sentinel/dist-tags", 200, **R),
    Row("PUT", "/{g}/{new}", 201, body="publish", **W),
    # a proxy of the hosted repository (over loopback, with a token of its own for the private one): read-only
    Row("GET", "/{p}/sentinel", 200, **R),
    Row("GET", "/{p}/sentinel" + TGZ, 200, **R),
    Row("PUT", "/{p}/{new}", 405, body="publish", pub="405 405 405 405 405", priv="401 405 405 405 403"),
)


class World:
    def __init__(self, server: Any):
        self.server = server
        self.names: dict[str, dict[str, str]] = {}
        self.tokens: dict[str, dict[str, str | None]] = {}
        for vis in ("pub", "priv"):
            base = unique(f"npma{vis}")
            r, g, p = base, base + "-g", base + "-p"
            self.names[vis] = {"r": r, "g": g, "p": p}
            self._create(r, "hosted", vis == "priv", {})
            self.publish(vis, "sentinel", "1.0.0")
            self.publish(vis, "@acme/scoped", "1.0.0")
            reader = server.create_token(f"up-{r}", {r: "read"})
            self._create(p, "proxy", vis == "priv",
                         {"upstream": {"url": f"{server.url}/{r}/", "auth": {"type": "bearer", "token": reader}}})
            self._create(g, "group", vis == "priv", {"members": [r], "default_member": r})
            scopes = lambda act: {r: act, g: act, p: act}  # noqa: E731
            other = unique("npma-other")
            self._create(other, "hosted", False, {})
            self.tokens[vis] = {
                ANON: None, GARBAGE: BAD_SECRET,
                READ: server.create_token(f"read-{r}", scopes("read")),
                WRITE: server.create_token(f"write-{r}", scopes("write")),
                ADMIN: server.create_token(f"admin-{r}", scopes("admin")),
                OTHER: server.create_token(f"other-{r}", {other: "admin"}),
            }

    def _create(self, name: str, kind: str, private: bool, config: dict[str, Any]) -> None:
        r = self.server.api("POST", "/api/v1/repositories",
                            json={"name": name, "format": "npm", "kind": kind, "private": private, "config": config})
        assert r.status_code == 201, r.text

    def publish(self, vis: str, name: str, version: str) -> None:
        r = httpx.put(f"{self.server.url}/{self.names[vis]['r']}/{name.replace('/', '%2f')}",
                      json=publish_document(name, version, pack_tarball({"name": name, "version": version})),
                      headers={"Authorization": f"Bearer {self.server.token}"}, timeout=30)
        assert r.status_code == 201, r.text

    def admin(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, url, headers={"Authorization": f"Bearer {self.server.token}"}, timeout=30, **kw)


@pytest.fixture(scope="module")
def world(sqlite_server) -> World:
    return World(sqlite_server)


def _body(kind: str | None, name: str, secret: str | None, vis: str, world: World) -> Any:
    if kind is None:
        return None
    if kind == "publish":
        return publish_document(name, "1.0.0", pack_tarball({"name": name, "version": "1.0.0"}))
    if kind == "tag":
        return "1.0.0"
    if kind == "login":
        return {"_id": "org.couchdb.user:someone", "name": "someone", "password": secret, "type": "user"}
    if kind == "audit":
        return {"sentinel": ["1.0.0"]}
    url = f"{world.server.url}/{world.names[vis]['r']}/{name}"
    doc = world.admin("GET", url + "?write=true").json()
    if kind == "deprecate":
        doc["versions"]["1.0.0"]["deprecated"] = "auth test"
    elif kind == "drop-version":
        doc["versions"].pop("1.0.1")
    return doc


@pytest.mark.parametrize("vis", ["pub", "priv"])
@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.method} {r.path}")
def test_npm_route_access(world, row, vis):
    srv = world.server
    names = world.names[vis]
    failures = []
    prepared = False  # a victim package / tag is prepared again only after a caller consumed it
    victim = ""
    for caller in CALLERS:
        secret = world.tokens[vis][caller]
        new = unique("fresh")
        if row.prepare == "victim" and not prepared:
            victim = unique("victim")
            world.publish(vis, victim, "1.0.0")
            world.publish(vis, victim, "1.0.1")
        if row.prepare == "tag" and not prepared:
            r = world.admin("PUT", f"{srv.url}/{names['r']}/-/package/sentinel/dist-tags/t", json="1.0.0")
            assert r.status_code == 201, r.text
        prepared = True
        path = row.path.format(r=names["r"], g=names["g"], p=names["p"], new=new, victim=victim)
        target = victim if row.prepare == "victim" else new if "{new}" in row.path else "sentinel"
        body = _body(row.body, target, secret, vis, world)
        headers = {}
        if secret is not None and row.body != "login":
            headers["Authorization"] = f"Bearer {secret}"
        resp = httpx.request(row.method, srv.url + path, headers=headers, timeout=30,
                             **({"json": body} if body is not None else {}))
        want = row.expected(vis, caller)
        if resp.status_code < 300:
            prepared = False
        if row.body == "login" and caller == GARBAGE:
            want = 401
        if resp.status_code != want:
            failures.append(f"{caller}: {resp.status_code} (want {want}) {resp.text[:200]}")
        if resp.status_code == 401:
            assert resp.headers.get("www-authenticate"), (caller, path)
        if resp.status_code >= 400 and row.method != "HEAD":
            assert resp.json()["error"], (caller, path)
    assert not failures, "\n".join(failures)


def test_no_secret_reaches_the_log(world):
    log = world.server.log_path.read_text(errors="replace")
    for vis, toks in world.tokens.items():
        for caller, secret in toks.items():
            if secret and caller != GARBAGE:
                assert secret not in log, caller

