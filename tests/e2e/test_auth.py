"""Who may call what, on SQLite and on PostgreSQL.

Every client-protocol route and every management-API route (the API side is read from the OpenAPI document, so a
new route without a row here fails) is called by: anonymous, tokens with read / write / admin on the repository,
an admin token of another repository, '*' read, '*' admin (server admin), and a revoked, an expired, a garbage and
a malformed credential, each token in one of three styles taking turns (Bearer, Basic ``__token__:<secret>``,
Basic ``anyuser:<secret>``), against hosted, group and proxy repositories, public and private. Then the token
properties: the secret is shown once, stored hashed, revocation is immediate, a token cannot mint more than it
administers, ``whoami``; a group admin cannot pull in a private repository; and last, no secret ever reaches the
server log.
"""

from __future__ import annotations

import base64
import itertools
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.conftest import unique
from tests.support import artifacts
from wharf.core.auth import hash_token

# -- callers --------------------------------------------------------------------------------------------------------
ANON, READ, WRITE, ADMIN, OTHER, STAR_READ, STAR_ADMIN = CALLERS = (
    "anonymous", "read", "write", "repo-admin", "other-repo-admin", "star-read", "server-admin")
BAD_CALLERS = ("revoked", "expired", "garbage", "malformed")  # always 401, even where anonymous access is allowed
STYLES = ("bearer", "basic:__token__", "basic:anyuser")
# a malformed Authorization header per style slot: unknown scheme, Basic that is not base64, Basic without a colon
MALFORMED = {"bearer": "Negotiate c2VjcmV0", "basic:__token__": "Basic !!!not-base64!!!",
             "basic:anyuser": "Basic " + base64.b64encode(b"anyuser-without-colon").decode()}
GARBAGE = "wharf_this-is-not-a-token-this-is-not-a-token-00"
REALM = 'Basic realm="wharf"'


def _rule(spec: str) -> tuple[str, ...]:
    """One expected status per caller, in CALLERS order; "ok" is the row's success status."""
    cols = tuple(spec.split())
    assert len(cols) == len(CALLERS), spec
    return cols


#                        anon read write admin other *read *admin
ANYONE = _rule(         "ok   ok   ok    ok    ok    ok    ok")
PRIVATE_READ = _rule(   "401  ok   ok    ok    403   ok    ok")
WRITE_ACCESS = _rule(   "401  403  ok    ok    403   403   ok")
REPO_ADMIN = _rule(     "401  403  403   ok    403   403   ok")
SERVER_ADMIN = _rule(   "401  403  403   403   403   403   ok")


@dataclass(frozen=True)
class Row:
    method: str
    path: str  # API rows: exactly the OpenAPI path template; protocol rows: the URL with {placeholders}
    ok: int  # the success status
    pub: tuple[str, ...] | None = None  # expectations against the public repository ...
    priv: tuple[str, ...] | None = None  # ... and the private one
    glob: tuple[str, ...] | None = None  # or: the route is not about one repository
    target: str = "sentinel"  # what a call that is allowed consumes (see World.prepare)
    body: str | None = None  # which JSON body to send (see World.prepare)
    query: str = ""
    name: str = "repo"  # API rows: which repository {name} is: "repo" (hosted), "group" or "proxy"

    @property
    def api(self) -> bool:  # the routes of the API app (its OpenAPI document): /api/... and /-/...
        return self.path.startswith(("/api/", "/-/"))

    def scopes(self) -> tuple[str, ...]:
        return ("pub", "priv") if self.glob is None else ("-",)

    def expected(self, vis: str, caller: str) -> int:
        if caller in BAD_CALLERS:
            return 401
        spec = {"pub": self.pub, "priv": self.priv, "-": self.glob}[vis]
        assert spec is not None
        cell = spec[CALLERS.index(caller)]
        return self.ok if cell == "ok" else int(cell)


R = dict(pub=ANYONE, priv=PRIVATE_READ)
W = dict(pub=WRITE_ACCESS, priv=WRITE_ACCESS)
A = dict(pub=REPO_ADMIN, priv=REPO_ADMIN)
V1 = "/api/v1"
FILE = "/{repo}/files/{sha}/{filename}"

ROWS: tuple[Row, ...] = (
    # -- client protocol (python) ------------------------------------------------------------------------------
    Row("GET", "/{repo}/", 302, **R),
    Row("GET", "/{repo}/simple", 301, **R),
    Row("GET", "/{repo}/simple/", 200, **R),
    Row("GET", "/{repo}/simple/sentinel/", 200, **R),
    Row("GET", FILE, 200, **R),
    Row("HEAD", FILE, 200, **R),
    Row("GET", FILE + ".metadata", 200, **R),
    Row("GET", "/{repo}/pypi/sentinel/json", 200, **R),
    Row("GET", "/{repo}/pypi/sentinel/1.0/json", 200, **R),
    Row("POST", "/{repo}/legacy/", 200, target="upload", **W),
    # a group (over the hosted repository, which takes its uploads) and a proxy (of the hosted repository, over
    # loopback; the private one with a token of its own) have the same visibility as their hosted repository
    Row("GET", "/{group}/simple/", 200, **R),
    Row("GET", "/{group}/simple/sentinel/", 200, **R),
    Row("GET", "/{group}/files/{sha}/{filename}", 200, **R),
    Row("GET", "/{group}/files/{sha}/{filename}.metadata", 200, **R),
    Row("POST", "/{group}/legacy/", 200, target="upload", **W),
    Row("GET", "/{proxy}/simple/sentinel/", 200, **R),
    Row("GET", "/{proxy}/files/{sha}/{filename}", 200, **R),
    Row("POST", "/{proxy}/legacy/", 405, pub=ANYONE, priv=ANYONE),  # read-only: no upload, whoever asks
    # snapshot views (/<repo>/~<version or snapshot>/...) have their repository's visibility and are read-only
    Row("GET", "/{repo}/~1/simple/", 200, **R),
    Row("GET", "/{repo}/~sentinel-snap/simple/sentinel/", 200, **R),
    Row("GET", "/{repo}/~sentinel-snap/files/{sha}/{filename}", 200, **R),
    Row("POST", "/{repo}/~sentinel-snap/legacy/", 405, target="upload", **R),
    # -- management API: repositories --------------------------------------------------------------------------
    Row("GET", V1 + "/repositories", 200, glob=ANYONE),
    Row("POST", V1 + "/repositories", 201, glob=SERVER_ADMIN, target="new-repo", body="new-repo"),
    Row("GET", V1 + "/repositories/{name}", 200, **R),
    Row("PATCH", V1 + "/repositories/{name}", 200, body="patch", **A),
    Row("DELETE", V1 + "/repositories/{name}", 204, target="spare-repo", **A),
    Row("GET", V1 + "/repositories/{name}/packages", 200, **R),
    Row("GET", V1 + "/repositories/{name}/packages/{package}", 200, **R),
    Row("DELETE", V1 + "/repositories/{name}/packages/{package}", 200, target="fresh-package", **A),
    Row("DELETE", V1 + "/repositories/{name}/packages/{package}/versions/{version}", 200, target="fresh-package", **A),
    Row("DELETE", V1 + "/repositories/{name}/files/{filename}", 200, target="fresh-package", **A),
    Row("POST", V1 + "/repositories/{name}/packages/{package}/versions/{version}/yank", 200, target="fresh-package",
        body="yank", **W),
    Row("DELETE", V1 + "/repositories/{name}/packages/{package}/versions/{version}/yank", 200,
        target="fresh-yanked", **W),
    Row("GET", V1 + "/repositories/{name}/explain/{package}", 200, name="group", **R),
    # -- snapshots, versions, rollback, retention, gc -------------------------------------------------------------
    Row("GET", V1 + "/repositories/{name}/versions", 200, **R),
    Row("GET", V1 + "/repositories/{name}/diff", 200, query="?from=1&to=2", **R),
    Row("GET", V1 + "/repositories/{name}/snapshots", 200, **R),
    Row("GET", V1 + "/repositories/{name}/snapshots/{snapshot}", 200, **R),
    Row("POST", V1 + "/repositories/{name}/snapshots", 201, body="snapshot", **W),
    Row("DELETE", V1 + "/repositories/{name}/snapshots/{snapshot}", 200, target="fresh-snapshot", **A),
    Row("POST", V1 + "/repositories/{name}/rollback", 200, target="spare-rollback", body="rollback", **A),
    Row("POST", V1 + "/repositories/{name}/prune", 200, **A),  # a dry run
    Row("POST", V1 + "/gc", 200, glob=SERVER_ADMIN),  # a dry run
    # -- tokens ----------------------------------------------------------------------------------------------------
    Row("GET", V1 + "/tokens", 200, glob=SERVER_ADMIN),
    Row("POST", V1 + "/tokens", 201, body="token-on-repo", **A),  # granting read on one repository
    Row("POST", V1 + "/tokens", 201, glob=SERVER_ADMIN, body="token-on-star"),  # granting read on '*'
    Row("DELETE", V1 + "/tokens/{token_id}", 200, glob=SERVER_ADMIN, target="victim-token"),  # someone else's
    Row("GET", V1 + "/whoami", 200, glob=ANYONE),
    # -- audit -----------------------------------------------------------------------------------------------------
    Row("GET", V1 + "/audit", 200, glob=SERVER_ADMIN),
    Row("GET", V1 + "/audit", 200, query="?repository={repo}", **A),
    # -- events and background work --------------------------------------------------------------------------------
    Row("GET", V1 + "/events", 200, glob=SERVER_ADMIN),
    Row("GET", V1 + "/events", 200, query="?repository={repo}", **R),
    Row("GET", V1 + "/tasks", 200, glob=SERVER_ADMIN),
    Row("GET", V1 + "/tasks/summary", 200, glob=SERVER_ADMIN),
    # -- promotion: read on the (public) source, write on the destination; trails and jobs show what one may read --
    Row("POST", V1 + "/promotions", 200, body="promotion", **W),
    Row("GET", V1 + "/promotions", 200, glob=ANYONE),
    Row("GET", V1 + "/packages/{format}/{package}/trail", 200, glob=ANYONE),
    Row("GET", V1 + "/repositories/{name}/trail/{package}", 200, **R),
    Row("POST", V1 + "/repositories/{name}/resync", 202, name="proxy", body="resync", **W),
    Row("GET", V1 + "/resyncs", 200, glob=ANYONE),
    Row("GET", V1 + "/resyncs/{job_id}", 200, glob=ANYONE),
    # -- quarantine and policies -----------------------------------------------------------------------------------
    Row("GET", V1 + "/quarantine", 200, glob=SERVER_ADMIN),
    Row("GET", V1 + "/quarantine", 200, query="?repository={repo}", **A),
    Row("POST", V1 + "/quarantine", 201, target="fresh-package", body="quarantine", **A),
    Row("POST", V1 + "/quarantine/release", 200, target="fresh-quarantined", body="quarantine", **A),
    Row("GET", V1 + "/policies", 200, glob=SERVER_ADMIN),
    Row("POST", V1 + "/policies", 201, glob=SERVER_ADMIN, body="new-policy"),
    Row("POST", V1 + "/policies/dry-run", 200, glob=SERVER_ADMIN, body="policy-dry-run-unsaved"),
    Row("GET", V1 + "/policies/{name}", 200, glob=SERVER_ADMIN, name="policy"),
    Row("PATCH", V1 + "/policies/{name}", 200, glob=SERVER_ADMIN, name="policy", body="policy-patch"),
    Row("PUT", V1 + "/policies/{name}", 200, glob=SERVER_ADMIN, name="policy", body="policy-patch"),
    Row("DELETE", V1 + "/policies/{name}", 204, glob=SERVER_ADMIN, name="policy", target="fresh-policy"),
    Row("POST", V1 + "/policies/{name}/dry-run", 200, glob=SERVER_ADMIN, name="policy", body="policy-dry-run"),
    Row("GET", V1 + "/policy-decisions", 200, query="?repository={repo}", **R),
    # -- webhooks (server admins) and entitlements (admins of the repositories they cover) -------------------------
    Row("POST", V1 + "/webhooks", 201, glob=SERVER_ADMIN, body="webhook"),
    Row("GET", V1 + "/webhooks", 200, glob=SERVER_ADMIN),
    Row("GET", V1 + "/webhooks/{hook_id}", 200, glob=SERVER_ADMIN),
    Row("DELETE", V1 + "/webhooks/{hook_id}", 204, glob=SERVER_ADMIN, target="victim-webhook"),
    Row("POST", V1 + "/webhooks/{hook_id}/ping", 202, glob=SERVER_ADMIN),
    Row("GET", V1 + "/webhooks/{hook_id}/deliveries", 200, glob=SERVER_ADMIN),
    Row("GET", V1 + "/webhooks/deliveries/{delivery}", 200, glob=SERVER_ADMIN),
    Row("POST", V1 + "/entitlements", 201, body="entitlement", **A),
    Row("GET", V1 + "/entitlements", 200, glob=_rule("401 ok ok ok ok ok ok")),  # each sees what it administers
    Row("GET", V1 + "/entitlements/{ent_id}", 200, **A),
    Row("DELETE", V1 + "/entitlements/{ent_id}", 200, target="victim-entitlement", **A),
    # -- advisories (import: server admins; advisory data is public) and the OSV query API under /-/osv/ ----------
    Row("POST", V1 + "/advisories/import", 200, glob=SERVER_ADMIN, body="osv-record"),
    Row("GET", V1 + "/advisories", 200, glob=ANYONE),
    Row("GET", V1 + "/advisories/match", 200, query="?repository={repo}&name=sentinel&version=1.0", **R),
    Row("GET", V1 + "/advisories/{advisory_id}", 200, glob=ANYONE),
    Row("POST", "/-/osv/v1/query", 200, glob=ANYONE, body="osv-query"),
    Row("POST", "/-/osv/v1/querybatch", 200, glob=ANYONE, body="osv-batch"),
    Row("GET", "/-/osv/v1/vulns/{advisory_id}", 200, glob=ANYONE),
    # -- security overview (vetting) ---------------------------------------------------------------------------------
    Row("GET", V1 + "/security/overview", 200, glob=ANYONE),  # lists only the repositories the caller may read
    Row("GET", V1 + "/security/overview", 200, query="?repository={repo}", **R),
    Row("GET", V1 + "/security/packages/{name}/{package}", 200, **R),
    Row("POST", V1 + "/security/packages/{name}/{package}/{version}/scan", 200, **A),
)
ADVISORY = {"id": "WHARF-AUTH-1", "modified": "2026-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "PyPI", "name": "sentinel"}, "versions": ["1.0"]}]}


def _basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def _check(r: httpx.Response, want: int, method: str, secrets: list[str]) -> str | None:
    """What is wrong with this response, or None."""
    if r.status_code != want:
        return f"expected {want}, got {r.status_code}: {r.text[:300]}"
    leaked = [s[:12] for s in secrets if s in r.text]
    if leaked:
        return f"the response contains the secret of token(s) {leaked}"
    if want == 401 and r.headers.get("www-authenticate") != REALM:
        return f"401 without 'WWW-Authenticate: {REALM}' (got {r.headers.get('www-authenticate')!r})"
    if want in (401, 403) and method != "HEAD":
        try:
            doc = r.json()
        except ValueError:
            return f"{want} body is not JSON: {r.text[:200]!r}"
        if doc.get("status") != want or not doc.get("error"):
            return f"{want} body lacks a sentence: {doc!r}"
    if want == 200 and method == "HEAD" and r.content:
        return "HEAD response has a body"
    return None


# -- the world the matrix runs in -----------------------------------------------------------------------------------
class World:
    def __init__(self, server: Any, tmp: Path):
        self.server = server
        self.tmp = tmp
        self.base = unique("auth")
        self.repos = {"pub": f"{self.base}-pub", "priv": f"{self.base}-priv"}
        self.groups = {vis: f"{name}-group" for vis, name in self.repos.items()}
        self.proxies = {vis: f"{name}-proxy" for vis, name in self.repos.items()}
        self.other = f"{self.base}-other"
        self.spares = {vis: [f"{self.base}-{vis}-spare{i}" for i in range(2 * len(STYLES))] for vis in self.repos}
        self.secrets: dict[str, str] = {}  # caller -> secret
        self.ids: dict[str, int] = {}  # caller -> token id
        self.all_secrets: list[str] = []  # every secret the module ever saw (checked against disk and log)
        self.sentinel: dict[str, tuple[str, str]] = {}  # vis -> (filename, sha256)
        self._n = itertools.count()
        self.http = httpx.Client(base_url=server.url, timeout=30)

    # helpers ------------------------------------------------------------------------------------------------------
    def admin(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, path, headers={"Authorization": f"Bearer {self.server.token}"}, **kw)

    def mint(self, name: str, scopes: dict[str, str], **kw: Any) -> tuple[str, int]:
        body = {"name": name, "scopes": [{"repository": r, "actions": [a]} for r, a in scopes.items()], **kw}
        r = self.admin("POST", "/api/v1/tokens", json=body)
        assert r.status_code == 201, r.text
        doc = r.json()
        self.all_secrets.append(doc["token"])
        return doc["token"], doc["id"]

    def wheel(self, name: str, version: str = "1.0") -> Path:
        d = self.tmp / "wheels" / f"{name}-{version}"
        d.mkdir(parents=True, exist_ok=True)
        return artifacts.make_wheel(d, name, version)

    @staticmethod
    def upload_kw(path: Path, name: str, version: str = "1.0") -> dict[str, Any]:
        return {"data": artifacts.upload_form(path, path.name, name, version),
                "files": {"content": (path.name, path.read_bytes(), "application/octet-stream")}}

    def upload(self, repo: str, name: str, version: str = "1.0") -> Path:
        path = self.wheel(name, version)
        r = self.admin("POST", f"/{repo}/legacy/", **self.upload_kw(path, name, version))
        assert r.status_code == 200, r.text
        return path

    def yank(self, repo: str, package: str) -> None:
        r = self.admin("POST", f"/api/v1/repositories/{repo}/packages/{package}/versions/1.0/yank", json={})
        assert r.status_code == 200, r.text

    def webhook(self) -> int:
        r = self.admin("POST", "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/matrix", "repository": self.other,
                                                         "events": ["ping"], "max_attempts": 1, "timeout": 1})
        assert r.status_code == 201, r.text
        return r.json()["id"]  # type: ignore[no-any-return]

    def entitlement(self, repo: str) -> int:
        r = self.admin("POST", "/api/v1/entitlements", json={"name": "sentinel-entitlement", "repositories": [repo]})
        assert r.status_code == 201, r.text
        return r.json()["id"]  # type: ignore[no-any-return]

    def headers(self, caller: str, style: str) -> dict[str, str]:
        if caller == ANON:
            return {}
        if caller == "malformed":
            return {"Authorization": MALFORMED[style]}
        secret = GARBAGE if caller == "garbage" else self.secrets[caller]
        if style == "bearer":
            return {"Authorization": f"Bearer {secret}"}
        return {"Authorization": _basic(style.split(":", 1)[1], secret)}

    # setup -------------------------------------------------------------------------------------------------------
    def setup(self) -> None:
        # the expired token first, so that its 1.7 s lifetime runs out while the rest is set up
        expired, self.ids["expired"] = self.mint("expired", {"*": "admin"}, expires_in_days=0.00002)
        self.secrets["expired"] = expired
        assert self.http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {expired}"}).status_code == 200
        deadline = time.time() + 0.00002 * 86400 + 0.5

        for vis, repo in self.repos.items():
            self.server.create_repo(repo, private=vis == "priv")
            wheel = self.upload(repo, "sentinel")
            self.sentinel[vis] = (wheel.name, artifacts.digests(wheel)["sha256"])
            self.upload(repo, "yanked-sentinel")
            self.yank(repo, "yanked-sentinel")
            r = self.admin("POST", f"/api/v1/repositories/{repo}/snapshots", json={"name": "sentinel-snap"})
            assert r.status_code == 201, r.text
        self.server.create_repo(self.other)
        assert self.admin("POST", "/api/v1/advisories/import", json=ADVISORY).status_code == 200
        self.denied_wheel = self.wheel("denied-upload")
        self.policy = f"{self.base}-sentinel-policy"
        r = self.admin("POST", "/api/v1/policies", json={"name": self.policy, "events": ["scan"], "action": "allow",
                                                         "expression": "false"})
        assert r.status_code == 201, r.text

        # the proxies fetch from the hosted repositories over loopback; the private one with a read token
        self.upstream_secret, _ = self.mint("upstream", {self.repos["priv"]: "read"})
        for vis, repo in self.repos.items():
            private = vis == "priv"
            r = self.admin("POST", "/api/v1/repositories", json={
                "name": self.groups[vis], "format": "python", "kind": "group", "private": private,
                "config": {"members": [repo], "default_member": repo}})
            assert r.status_code == 201, r.text
            upstream: dict[str, Any] = {"url": f"{self.server.url}/{repo}/simple/"}
            if private:
                upstream["auth"] = {"type": "bearer", "token": self.upstream_secret}
            r = self.admin("POST", "/api/v1/repositories", json={
                "name": self.proxies[vis], "format": "python", "kind": "proxy", "private": private,
                "config": {"upstream": upstream}})
            assert r.status_code == 201, r.text
            assert self.upstream_secret not in r.text
            r = self.admin("GET", f"/{self.proxies[vis]}/simple/sentinel/")  # fetch once, so files are known
            assert r.status_code == 200 and self.sentinel[vis][0] in r.text, r.text
            filename, sha = self.sentinel[vis]  # and cache the file (a resync re-verifies cached files)
            assert self.admin("GET", f"/{self.proxies[vis]}/files/{sha}/{filename}").status_code == 200
        # promotion: a public source with a package to copy; a resync job to read
        self.promotion_source = f"{self.base}-src"
        self.server.create_repo(self.promotion_source)
        self.upload(self.promotion_source, "promoted")
        deadline_cached = time.time() + 30
        while self.admin("GET", f"/api/v1/repositories/{self.proxies['pub']}/packages/sentinel").status_code != 200:
            assert time.time() < deadline_cached, "the proxy never recorded the sentinel file"
            time.sleep(0.05)
        r = self.admin("POST", f"/api/v1/repositories/{self.proxies['pub']}/resync", json={"package": "sentinel"})
        assert r.status_code == 202, r.text
        self.resync_job = r.json()["id"]

        on_repos = [*self.repos.values(), *self.groups.values(), *self.proxies.values(),
                    *itertools.chain(*self.spares.values())]
        for caller, action in ((READ, "read"), (WRITE, "write"), (ADMIN, "admin")):
            self.secrets[caller], self.ids[caller] = self.mint(caller, {r: action for r in on_repos})
        self.secrets[OTHER], self.ids[OTHER] = self.mint(OTHER, {self.other: "admin"})
        self.secrets[STAR_READ], self.ids[STAR_READ] = self.mint(STAR_READ, {"*": "read"})
        self.secrets[STAR_ADMIN], self.ids[STAR_ADMIN] = self.mint(STAR_ADMIN, {"*": "admin"})
        self.victim, self.victim_id = self.mint("sentinel-victim", {self.repos["pub"]: "read"})
        # a webhook (of the spare repository, pings only: it never sees this module's uploads) with one delivery, and
        # an entitlement per repository
        self.hook_id = self.webhook()
        r = self.admin("POST", f"/api/v1/webhooks/{self.hook_id}/ping")
        assert r.status_code == 202, r.text
        self.delivery = r.json()["uuid"]
        self.ents = {vis: self.entitlement(repo) for vis, repo in self.repos.items()}

        revoked, self.ids["revoked"] = self.mint("revoked", {"*": "admin"})
        self.secrets["revoked"] = revoked
        assert self.http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {revoked}"}).status_code == 200
        assert self.admin("DELETE", f"/api/v1/tokens/{self.ids['revoked']}").status_code == 200

        time.sleep(max(0.0, deadline - time.time()))

    # one case ----------------------------------------------------------------------------------------------------
    def prepare(self, row: Row, vis: str, allowed: bool) -> tuple[str, dict[str, Any]]:
        """The URL and request arguments for one call. An allowed call to a route that changes something gets a
        fresh resource; a refused one aims at a sentinel that check_denied_calls_changed_nothing() inspects."""
        repo = self.repos.get(vis, self.repos["pub"])
        filename, sha = self.sentinel.get(vis, self.sentinel["pub"])
        group, proxy = self.groups.get(vis, ""), self.proxies.get(vis, "")
        p: dict[str, Any] = dict(repo=repo, group=group, proxy=proxy, package="sentinel", version="1.0",
                                 filename=filename, sha=sha, token_id=self.victim_id, snapshot="sentinel-snap",
                                 format="python", job_id=self.resync_job, policy=self.policy, hook_id=self.hook_id,
                                 delivery=self.delivery, ent_id=self.ents.get(vis, self.ents["pub"]),
                                 advisory_id=ADVISORY["id"])
        p["name"] = p[row.name]
        kw: dict[str, Any] = {}
        n = next(self._n)
        if row.target == "upload":
            kw = self.upload_kw(self.wheel(f"up{n}"), f"up{n}") if allowed else \
                self.upload_kw(self.denied_wheel, "denied-upload")
        elif row.target == "spare-repo" and allowed:
            p["name"] = self.spares[vis].pop()
            self.server.create_repo(p["name"], private=vis == "priv")
        elif row.target in ("fresh-package", "fresh-yanked"):
            if allowed:
                p["package"] = f"fresh{n}"
                p["filename"] = self.upload(repo, p["package"]).name
                if row.target == "fresh-yanked":
                    self.yank(repo, p["package"])
            elif row.target == "fresh-yanked":
                p["package"] = "yanked-sentinel"
        elif row.target == "fresh-snapshot" and allowed:
            p["snapshot"] = f"snap{n}"
            assert self.admin("POST", f"/api/v1/repositories/{repo}/snapshots",
                              json={"name": p["snapshot"]}).status_code == 201
        elif row.target == "spare-rollback" and allowed:
            p["name"] = self.spares[vis].pop()
            self.server.create_repo(p["name"], private=vis == "priv")
            self.upload(p["name"], f"first{n}")
            self.upload(p["name"], f"second{n}")
        elif row.target == "fresh-quarantined":
            p["package"] = f"fresh{n}"
            self.upload(repo, p["package"])
            r = self.admin("POST", "/api/v1/quarantine", json={"repository": repo, "package": p["package"],
                                                               "reason": "auth matrix"})
            assert r.status_code == 201, r.text
        elif row.target == "fresh-policy" and allowed:
            p["policy"] = f"fresh-policy-{n}"
            r = self.admin("POST", "/api/v1/policies", json={"name": p["policy"], "events": ["scan"], "action": "allow",
                                                             "expression": "false"})
            assert r.status_code == 201, r.text
        elif row.target == "victim-token" and allowed:
            _secret, p["token_id"] = self.mint(f"victim{n}", {repo: "read"})
        elif row.target == "victim-webhook" and allowed:
            p["hook_id"] = self.webhook()
        elif row.target == "victim-entitlement" and allowed:
            p["ent_id"] = self.entitlement(repo)
        if row.body == "new-repo":
            kw["json"] = {"name": f"{self.base}-new{n}" if allowed else f"{self.base}-never", "format": "python"}
        elif row.body == "patch":
            kw["json"] = {"config": {"description": f"patched {n}"}}
        elif row.body == "snapshot":
            kw["json"] = {"name": f"snap{n}" if allowed else "denied-snap"}
        elif row.body == "rollback":
            kw["json"] = {"to": "1"}
        elif row.body == "osv-record":
            kw["json"] = ADVISORY
        elif row.body == "osv-query":
            kw["json"] = {"package": {"ecosystem": "PyPI", "name": "sentinel"}, "version": "1.0"}
        elif row.body == "osv-batch":
            kw["json"] = {"queries": [{"package": {"purl": "pkg:pypi/sentinel@1.0"}}]}
        elif row.body == "yank":
            kw["json"] = {"reason": "auth matrix"}
        elif row.body == "promotion":
            kw["json"] = {"source": self.promotion_source, "destination": repo, "package": "promoted"}
        elif row.body == "resync":
            kw["json"] = {"package": "sentinel", "max_attempts": 1}
        elif row.body == "webhook":
            kw["json"] = {"url": "http://127.0.0.1:9/matrix", "repository": self.other, "events": ["ping"],
                          "description": "minted" if allowed else "denied-webhook"}
        elif row.body == "entitlement":
            kw["json"] = {"name": "minted" if allowed else "denied-entitlement", "repositories": [repo]}
        elif row.body in ("token-on-repo", "token-on-star"):
            kw["json"] = {"name": "minted" if allowed else "denied-mint",
                          "scopes": [{"repository": repo if row.body == "token-on-repo" else "*", "actions": ["read"]}]}
        elif row.body == "quarantine":
            kw["json"] = {"repository": repo, "package": p["package"], "reason": "auth matrix"}
        elif row.body == "new-policy":
            kw["json"] = {"name": f"new-policy-{n}" if allowed else "denied-policy", "events": ["scan"],
                          "action": "allow", "expression": "false"}
        elif row.body == "policy-patch":
            kw["json"] = {"description": f"patched {n}"} if allowed else {"enabled": False}
        elif row.body == "policy-dry-run":
            kw["json"] = {"repository": repo}
        elif row.body == "policy-dry-run-unsaved":
            kw["json"] = {"repository": repo, "events": ["scan"], "action": "allow", "expression": "true"}
        if row.name == "policy":  # (a fresh policy was made above)
            p["name"] = p["policy"]
        return (row.path + row.query).format(**p), kw

    def check_denied_calls_changed_nothing(self) -> list[str]:
        problems = []
        for vis, repo in self.repos.items():
            r = self.admin("GET", f"/api/v1/repositories/{repo}/packages/sentinel")
            if r.status_code != 200 or [f["yanked"] for f in r.json()["files"]] != [False]:
                problems.append(f"sentinel package in {repo} changed: {r.status_code} {r.text[:300]}")
            r = self.admin("GET", f"/api/v1/repositories/{repo}/packages/yanked-sentinel")
            if r.status_code != 200 or [f["yanked"] for f in r.json()["files"]] != [True]:
                problems.append(f"yanked sentinel in {repo} changed: {r.status_code} {r.text[:300]}")
            r = self.admin("GET", f"/api/v1/repositories/{repo}")
            if r.status_code != 200 or r.json()["private"] != (vis == "priv"):
                problems.append(f"repository {repo} changed: {r.status_code} {r.text[:300]}")
            if "denied-upload" in self.admin("GET", f"/api/v1/repositories/{repo}/packages").json():
                problems.append(f"a refused upload landed in {repo}")
            snaps = {x["name"] for x in self.admin("GET", f"/api/v1/repositories/{repo}/snapshots").json()}
            if "sentinel-snap" not in snaps or "denied-snap" in snaps:
                problems.append(f"snapshots of {repo} changed by a refused call: {sorted(snaps)}")
        if self.admin("GET", f"/api/v1/repositories/{self.base}-never").status_code != 404:
            problems.append("a refused repository creation happened")
        quarantined = {(q["repository"], q["package"]) for q in self.admin("GET", "/api/v1/quarantine").json()}
        if any(q[1] in ("sentinel", "yanked-sentinel") for q in quarantined):
            problems.append(f"a refused call quarantined a sentinel: {sorted(quarantined)}")
        policies = {p["name"]: p for p in self.admin("GET", "/api/v1/policies").json()}
        if "denied-policy" in policies or self.policy not in policies or not policies[self.policy]["enabled"]:
            problems.append("a refused call created, changed or deleted a policy")
        tokens = self.admin("GET", "/api/v1/tokens").json()
        if any(t["name"] == "denied-mint" for t in tokens):
            problems.append("a refused token creation happened")
        if self.http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {self.victim}"}).status_code != 200:
            problems.append("the sentinel token was revoked by a refused call")
        if self.admin("GET", f"/api/v1/webhooks/{self.hook_id}").status_code != 200:
            problems.append("the sentinel webhook was deleted by a refused call")
        if any(h["description"] == "denied-webhook" for h in self.admin("GET", "/api/v1/webhooks").json()):
            problems.append("a refused webhook creation happened")
        entitlements = self.admin("GET", "/api/v1/entitlements").json()
        if any(e["name"] == "denied-entitlement" for e in entitlements):
            problems.append("a refused entitlement creation happened")
        if any(e["revoked_at"] for e in entitlements if e["id"] in self.ents.values()):
            problems.append("a sentinel entitlement was revoked by a refused call")
        return problems


@pytest.fixture(scope="module")
def world(server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(server, tmp_path_factory.mktemp("auth"))
    try:
        w.setup()
        yield w
    finally:
        w.http.close()


# -- the matrix -----------------------------------------------------------------------------------------------------
def _openapi_routes(server: Any) -> set[tuple[str, str]]:
    r = httpx.get(f"{server.url}/api/v1/openapi.json")
    assert r.status_code == 200
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {(m.upper(), path) for path, ops in r.json()["paths"].items() for m in ops if m in methods}


def test_every_api_route_has_matrix_rows(server):
    covered = {(row.method, row.path) for row in ROWS if row.api}
    documented = _openapi_routes(server)
    assert documented - covered == set(), "API routes without a row in the auth matrix of tests/e2e/test_auth.py"
    assert covered - documented == set(), "matrix rows for API routes that do not exist (any more)"


def test_access_matrix(server, world):
    assert {(row.method, row.path) for row in ROWS if row.api} == _openapi_routes(server)
    failures: list[str] = []
    calls = 0
    rotate = itertools.cycle(STYLES)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        for row in ROWS:
            for vis in row.scopes():
                for caller in CALLERS + BAD_CALLERS:
                    # each caller presents its token in one style, the styles taking turns: every route sees every
                    # style and every caller, and every caller uses every style (test_whoami does the full product)
                    style = "none" if caller == ANON else next(rotate)
                    want = row.expected(vis, caller)
                    url, kw = world.prepare(row, vis, allowed=200 <= want < 400)
                    r = c.request(row.method, url, headers=world.headers(caller, style), **kw)
                    calls += 1
                    problem = _check(r, want, row.method, world.all_secrets)
                    if problem:
                        failures.append(f"{row.method} {url} [{vis}] {caller} ({style}): {problem}")
                    elif want == 201 and row.body and row.body.startswith("token-"):
                        world.all_secrets.append(r.json()["token"])
    assert calls == sum(len(row.scopes()) for row in ROWS) * len(CALLERS + BAD_CALLERS)
    assert not failures, f"{len(failures)} of {calls} calls wrong:\n" + "\n".join(failures)
    problems = world.check_denied_calls_changed_nothing()
    assert not problems, "\n".join(problems)


def test_repository_list_shows_only_readable_repositories(server, world):
    pub, priv = world.repos["pub"], world.repos["priv"]
    for caller, sees_private in ((ANON, False), (READ, True), (WRITE, True), (ADMIN, True), (OTHER, False),
                                 (STAR_READ, True), (STAR_ADMIN, True)):
        names = {r["name"] for r in world.http.get("/api/v1/repositories",
                                                   headers=world.headers(caller, "bearer")).json()}
        assert pub in names and (priv in names) == sees_private, caller


# -- token properties -----------------------------------------------------------------------------------------------
def test_secret_is_returned_once_and_never_listed(server, world):
    r = world.admin("POST", "/api/v1/tokens",
                    json={"name": "once", "scopes": [{"repository": "*", "actions": ["read"]}]})
    assert r.status_code == 201
    created = r.json()
    secret = created["token"]
    world.all_secrets.append(secret)
    assert secret.startswith("wharf_") and len(secret) >= 40
    assert created["prefix"] == secret[:len(created["prefix"])] and len(created["prefix"]) < len(secret) // 2
    digest = hash_token(secret)
    listing = world.admin("GET", "/api/v1/tokens")
    assert listing.status_code == 200
    mine = [t for t in listing.json() if t["id"] == created["id"]]
    assert len(mine) == 1 and "token" not in mine[0] and mine[0]["name"] == "once"
    for other in world.all_secrets:  # no secret nor hash of any token, ever
        assert other not in listing.text and hash_token(other) not in listing.text
    assert secret not in world.http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"}).text
    audit = world.admin("GET", "/api/v1/audit", params={"limit": 1000})
    assert audit.status_code == 200 and secret not in audit.text and digest not in audit.text


def _database_text(server: Any) -> bytes:
    """Every byte the database holds: the SQLite files, or every row of every PostgreSQL table."""
    if server.backend == "sqlite":
        files = sorted(server.data.glob("wharf.db*"))
        assert files, list(server.data.iterdir())
        return b"".join(f.read_bytes() for f in files)
    import sqlalchemy as sa

    engine = sa.create_engine(server.database_url)
    try:
        with engine.connect() as conn:
            tables = conn.execute(sa.text(
                "select tablename from pg_tables where schemaname = 'public'")).scalars().all()
            out = [repr(conn.execute(sa.text(f'select * from "{t}"')).all()) for t in tables]
    finally:
        engine.dispose()
    return "\n".join(out).encode()


def _files_under(root: Path) -> Iterator[Path]:
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            yield Path(dirpath) / f


def test_tokens_are_stored_hashed(server, world):
    # (a proxy's upstream credential is an outgoing secret: the server must be able to send it, so it is stored)
    secrets = [s for s in world.all_secrets if s not in (server.token, world.upstream_secret)]
    assert len(secrets) > 10
    db = _database_text(server)
    for secret in secrets:
        assert secret.encode() not in db
    # sanity: this is the database the server uses, and it holds the sha256 of each secret instead
    assert all(hash_token(s).encode() in db for s in secrets)
    # and no secret was written anywhere else under the data directory (the bootstrap secret is, to admin-token;
    # the upstream credential only to the database)
    for path in _files_under(server.data):
        if path.name.startswith("wharf.db"):
            continue
        data = path.read_bytes()
        leaked = [s[:12] for s in [*secrets, world.upstream_secret] if s.encode() in data]
        assert not leaked, f"{path} holds token secrets starting {leaked}"


def _whoami(world: World, secret: str, style: str = "bearer") -> int:
    return world.http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"} if style == "bearer"
                          else {"Authorization": _basic("__token__", secret)}).status_code


def test_revocation_takes_effect_immediately(server, world):
    priv = world.repos["priv"]
    secret, tid = world.mint("to-revoke", {priv: "write"})
    for style in ("bearer", "basic"):  # warm the server's token cache through both paths (API and protocol)
        assert _whoami(world, secret, style) == 200
    h = {"Authorization": _basic("__token__", secret)}
    assert world.http.get(f"/{priv}/simple/", headers=h).status_code == 200
    r = world.admin("DELETE", f"/api/v1/tokens/{tid}")
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert _whoami(world, secret) == 401 and _whoami(world, secret, "basic") == 401
    r = world.http.get(f"/{priv}/simple/", headers=h)
    assert r.status_code == 401 and r.headers["www-authenticate"] == REALM
    # a revoked token cannot do anything, not even revoke itself again
    assert world.http.delete(f"/api/v1/tokens/{tid}", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    listed = {t["id"]: t for t in world.admin("GET", "/api/v1/tokens").json()}
    assert listed[tid]["revoked_at"]

    # any token may revoke itself (and only itself) ...
    mine, mine_id = world.mint("self-revoke", {world.repos["pub"]: "read"})
    h = {"Authorization": f"Bearer {mine}"}
    assert _whoami(world, mine) == 200
    assert world.http.delete(f"/api/v1/tokens/{world.victim_id}", headers=h).status_code == 403
    assert world.http.delete(f"/api/v1/tokens/{mine_id}", headers=h).status_code == 200
    assert _whoami(world, mine) == 401
    assert world.admin("DELETE", "/api/v1/tokens/999999999").status_code == 404


def _revoke_behind_the_servers_back(server: Any, token_id: int) -> None:
    """Revoke in the database directly, as another server process (or replica) would."""
    from sqlalchemy import update

    from wharf.db import make_engine, make_sessionmaker
    from wharf.db.models import Token, utcnow

    url = server.database_url or f"sqlite:///{(server.data / 'wharf.db').resolve()}"
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine).begin() as s:
            s.execute(update(Token).where(Token.id == token_id).values(revoked_at=utcnow()))
    finally:
        engine.dispose()


def test_token_cache_is_short_lived_and_follows_the_change_signal(server, world):
    # a revocation by another process reaches this one through the change signal (data/state/epoch) ...
    a, a_id = world.mint("cache-a", {"*": "read"})
    assert _whoami(world, a) == 200
    _revoke_behind_the_servers_back(server, a_id)
    assert _whoami(world, a) == 200, "expected the per-process token cache to answer (it has a TTL)"
    from wharf.core.signal import ChangeSignal

    ChangeSignal(server.data / "state" / "epoch").bump()
    assert _whoami(world, a) == 401
    # ... and without any signal, within the cache TTL (token_cache_ttl, 5 s by default)
    b, b_id = world.mint("cache-b", {"*": "read"})
    assert _whoami(world, b) == 200
    _revoke_behind_the_servers_back(server, b_id)
    start = time.monotonic()
    while _whoami(world, b) == 200:
        assert time.monotonic() - start < 7, "a revoked token still worked 7 s later"
        time.sleep(0.2)


def test_expiry(server, world):
    exp = world.secrets["expired"]
    for style in ("bearer", "basic"):
        assert _whoami(world, exp, style) == 401
    r = world.http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {exp}"})
    assert r.headers["www-authenticate"] == REALM and "expired" in r.json()["error"]
    listed = {t["id"]: t for t in world.admin("GET", "/api/v1/tokens").json()}
    assert listed[world.ids["expired"]]["expires_at"] and listed[world.ids["expired"]]["revoked_at"] is None
    # an expiry must lie in the future
    past = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    scopes = [{"repository": "*", "actions": ["read"]}]
    r = world.admin("POST", "/api/v1/tokens", json={"name": "x", "scopes": scopes, "expires_at": past})
    assert r.status_code == 400
    for days in (0, -1):
        r = world.admin("POST", "/api/v1/tokens", json={"name": "x", "scopes": scopes, "expires_in_days": days})
        assert r.status_code == 422
    future = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    r = world.admin("POST", "/api/v1/tokens", json={"name": "tomorrow", "scopes": scopes, "expires_at": future})
    assert r.status_code == 201
    world.all_secrets.append(r.json()["token"])
    assert _whoami(world, r.json()["token"]) == 200


def test_a_token_cannot_grant_more_than_it_administers(server, world):
    pub, priv = world.repos["pub"], world.repos["priv"]

    def mint_as(caller: str, scopes: list[tuple[str, str]], name: str = "child") -> httpx.Response:
        body = {"name": name, "scopes": [{"repository": r, "actions": [a]} for r, a in scopes]}
        r = world.http.post("/api/v1/tokens", json=body, headers=world.headers(caller, "bearer"))
        if r.status_code == 201:
            world.all_secrets.append(r.json()["token"])
        return r

    before = len(world.admin("GET", "/api/v1/tokens").json())
    for caller, scopes in [
        (ADMIN, [("*", "read")]), (ADMIN, [("*", "admin")]), (ADMIN, [(world.other, "read")]),
        (ADMIN, [(pub, "read"), (world.other, "read")]),  # one scope beyond -> nothing is created
        (OTHER, [(pub, "read")]), (WRITE, [(pub, "read")]), (READ, [(pub, "read")]), (STAR_READ, [(pub, "read")]),
    ]:
        r = mint_as(caller, scopes, name="refused")
        assert r.status_code == 403, (caller, scopes, r.text)
        assert "beyond" in r.json()["error"] or "admin" in r.json()["error"]
    assert len(world.admin("GET", "/api/v1/tokens").json()) == before

    # within its own admin scope a repository admin may mint anything, the child can do exactly that
    r = mint_as(ADMIN, [(pub, "write"), (priv, "admin")])
    assert r.status_code == 201, r.text
    child = r.json()
    assert child["created_by"] == f"token:{ADMIN}#{world.ids[ADMIN]}"
    me = world.http.get("/api/v1/whoami", headers={"Authorization": f"Bearer {child['token']}"}).json()
    assert me["scopes"] == [{"repository": pub, "action": "write"}, {"repository": priv, "action": "admin"}]
    h = {"Authorization": _basic("__token__", child["token"])}
    assert world.http.get(f"/api/v1/repositories/{priv}", headers=h).status_code == 200
    assert world.http.get(f"/api/v1/repositories/{world.other}", headers=h).status_code == 200  # public
    assert world.http.patch(f"/api/v1/repositories/{world.other}", json={}, headers=h).status_code == 403
    assert world.http.get("/api/v1/tokens", headers=h).status_code == 403
    # a server admin may mint a server admin
    assert mint_as(STAR_ADMIN, [("*", "admin")]).status_code == 201


def test_whoami(server, world):
    r = world.http.get("/api/v1/whoami")
    assert r.status_code == 200 and r.json() == {"authenticated": False}
    pub = world.repos["pub"]
    for caller, scope in ((READ, (pub, "read")), (WRITE, (pub, "write")), (ADMIN, (pub, "admin")),
                          (OTHER, (world.other, "admin")), (STAR_READ, ("*", "read")), (STAR_ADMIN, ("*", "admin"))):
        for style in STYLES:
            r = world.http.get("/api/v1/whoami", headers=world.headers(caller, style))
            assert r.status_code == 200, (caller, style, r.text)
            doc = r.json()
            assert doc["authenticated"] is True and doc["name"] == caller and doc["token_id"] == world.ids[caller]
            assert {"repository": scope[0], "action": scope[1]} in doc["scopes"]
            assert world.secrets[caller] not in r.text
    for caller in BAD_CALLERS:
        for style in STYLES:
            r = world.http.get("/api/v1/whoami", headers=world.headers(caller, style))
            assert r.status_code == 401 and r.headers["www-authenticate"] == REALM, (caller, style)


def test_a_group_admin_cannot_pull_in_a_repository_it_cannot_read(server, world):
    """A group serves its members' content to the group's readers; a group admin who could add any private
    repository as a member could publish it (this was a privilege escalation)."""
    pub, priv = world.repos["pub"], world.repos["priv"]
    group = f"{world.base}-g2"
    r = world.admin("POST", "/api/v1/repositories", json={"name": group, "format": "python", "kind": "group",
                                                          "config": {"members": [pub]}})
    assert r.status_code == 201, r.text
    world.upload(priv, "private-only")
    group_admin, _ = world.mint("group-admin", {group: "admin"})
    both_admin, _ = world.mint("group-and-member-admin", {group: "admin", priv: "admin"})
    reader_admin, _ = world.mint("group-admin-member-reader", {group: "admin", priv: "read"})
    patch = {"config": {"members": [pub, priv]}}
    for secret in (group_admin, reader_admin, world.secrets[READ]):
        r = world.http.patch(f"/api/v1/repositories/{group}", json=patch, headers={"Authorization": f"Bearer {secret}"})
        assert r.status_code == 403, r.text
    assert world.admin("GET", f"/api/v1/repositories/{group}").json()["config"]["members"] == [pub]
    assert world.http.get(f"/{group}/simple/private-only/").status_code == 404
    # reordering or adding public members stays with the group's admin
    h = {"Authorization": f"Bearer {group_admin}"}
    r = world.http.patch(f"/api/v1/repositories/{group}", json={"config": {"members": [pub, world.other]}}, headers=h)
    assert r.status_code == 200, r.text
    # even an admin of both may not put a private repository into a public group (anyone could read it there)
    hb = {"Authorization": f"Bearer {both_admin}"}
    r = world.http.patch(f"/api/v1/repositories/{group}", json=patch, headers=hb)
    assert r.status_code == 400 and "private" in r.json()["error"], r.text
    # a private group may hold it: its readers need a token, and they see the member through it
    r = world.http.patch(f"/api/v1/repositories/{group}", json={"private": True, **patch}, headers=hb)
    assert r.status_code == 200, r.text
    assert world.http.get(f"/{group}/simple/private-only/").status_code == 401
    assert world.http.get(f"/{group}/simple/private-only/", headers=hb).status_code == 200
    # and while it is a member, the group cannot go public again
    r = world.http.patch(f"/api/v1/repositories/{group}", json={"private": False}, headers=hb)
    assert r.status_code == 400, r.text
    # once it is a member, the group's admin may keep it while reordering
    r = world.http.patch(f"/api/v1/repositories/{group}", json={"config": {"members": [priv, pub]}}, headers=h)
    assert r.status_code == 200, r.text


# -- last: nothing above put a secret into the server's log ---------------------------------------------------------
def test_no_secret_in_the_server_log(server, world):
    log = server.log_path.read_text(errors="replace")  # the whole log (server.log() is its tail)
    assert '"path"' in log, "expected an access log to look through"
    secrets = set(world.all_secrets) | {s for s in world.secrets.values()} | {server.token}
    assert len(secrets) > 20
    for secret in secrets:
        forms = [secret, hash_token(secret), *(base64.b64encode(f"{u}:{secret}".encode()).decode()
                                               for u in ("__token__", "anyuser"))]
        found = [f for f in forms if f in log]
        assert not found, f"token {secret[:12]}... appears in the server log ({len(found)} forms)"
