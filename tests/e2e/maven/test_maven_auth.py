"""Every Maven protocol route x caller (anonymous, read, write, admin, another repository's admin) x public/private,
on hosted, group and proxy repositories; 401s carry ``WWW-Authenticate: Basic realm=...``; mvn itself gets a 401
for an anonymous deploy to a private repository."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from tests.conftest import unique
from tests.support.maven_client import MavenClient

from .conftest import create_repo, lib_project

CALLERS = ("anonymous", "read", "write", "admin", "other")
POM = b"""<project><modelVersion>4.0.0</modelVersion><groupId>com.acme</groupId><artifactId>lib</artifactId>
<version>1.0</version></project>"""
METADATA = b"<metadata><groupId>com.acme</groupId><artifactId>lib</artifactId></metadata>"
BASE = "com/acme/lib"
#                                 anonymous read  write admin other
READ_PUBLIC = dict(zip(CALLERS, ("ok", "ok", "ok", "ok", "ok")))
READ_PRIVATE = dict(zip(CALLERS, ("401", "ok", "ok", "ok", "403")))
WRITE = dict(zip(CALLERS, ("401", "403", "ok", "ok", "403")))


@pytest.fixture(scope="module")
def setup(sqlite_server):
    srv = sqlite_server
    names = {}
    upstream = unique("mvnup")
    create_repo(srv, upstream)
    for private in (False, True):
        tag = "private" if private else "public"
        hosted, group, proxy = unique(f"h{tag}"), unique(f"g{tag}"), unique(f"p{tag}")
        create_repo(srv, hosted, private=private)
        create_repo(srv, proxy, "proxy", private=private, upstream={"url": f"{srv.url}/{upstream}/"})
        create_repo(srv, group, "group", private=private, members=[hosted, proxy], default_member=hosted)
        names[tag] = (hosted, group, proxy)
    every = [n for t in names.values() for n in t]
    tokens = {"anonymous": None, "other": srv.create_token(unique("other"), {upstream: "admin"})}
    for action in ("read", "write", "admin"):
        tokens[action if action != "admin" else "admin"] = srv.create_token(unique(action), {n: action for n in every})
    # content to read: the pom in every hosted repository and on the proxies' upstream
    for repo in [upstream] + [names[t][0] for t in names]:
        r = httpx.put(f"{srv.url}/{repo}/{BASE}/1.0/lib-1.0.pom", content=POM, auth=("x", srv.token))
        assert r.status_code == 201, r.text
    return srv, names, tokens


def _call(srv, method, path, token, body=None):
    auth = ("ci", token) if token else None
    return httpx.request(method, f"{srv.url}/{path}", content=body, auth=auth, timeout=30)


def _check(r, expected: str, ok=(200, 201)):
    if expected == "ok":
        assert r.status_code in ok, r.text
    else:
        assert r.status_code == int(expected), r.text
        if expected == "401":
            assert r.headers["www-authenticate"].startswith("Basic realm=")


READS = [f"{BASE}/1.0/lib-1.0.pom", f"{BASE}/1.0/lib-1.0.pom.sha1", f"{BASE}/1.0/lib-1.0.pom.md5",
         f"{BASE}/maven-metadata.xml", f"{BASE}/maven-metadata.xml.sha256"]


@pytest.mark.parametrize("tag", ["public", "private"])
@pytest.mark.parametrize("kind", [0, 1, 2], ids=["hosted", "group", "proxy"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_reads(setup, tag, kind, method):
    srv, names, tokens = setup
    repo = names[tag][kind]
    rule = READ_PRIVATE if tag == "private" else READ_PUBLIC
    for caller in CALLERS:
        for path in READS:
            _check(_call(srv, method, f"{repo}/{path}", tokens[caller]), rule[caller])


@pytest.mark.parametrize("tag", ["public", "private"])
@pytest.mark.parametrize("kind", [0, 1], ids=["hosted", "group-default-member"])
def test_writes(setup, tag, kind):
    srv, names, tokens = setup
    repo = names[tag][kind]
    for caller in CALLERS:
        v = unique("v").replace("-", ".")
        pom = POM.replace(b"<version>1.0", f"<version>{v}".encode())
        path = f"{BASE}/{v}/lib-{v}.pom"
        _check(_call(srv, "PUT", f"{repo}/{path}", tokens[caller], pom), WRITE[caller])
        if WRITE[caller] != "ok":  # nothing was stored by a refused caller
            assert _call(srv, "GET", f"{names[tag][0]}/{path}", srv.token).status_code == 404
            _call(srv, "PUT", f"{names[tag][0]}/{path}", srv.token, pom)
        _check(_call(srv, "PUT", f"{repo}/{path}.sha1", tokens[caller], hashlib.sha1(pom).hexdigest().encode()),
               WRITE[caller])
        _check(_call(srv, "PUT", f"{repo}/{BASE}/maven-metadata.xml", tokens[caller], METADATA), WRITE[caller])
        _check(_call(srv, "PUT", f"{repo}/{BASE}/maven-metadata.xml.md5", tokens[caller],
                     hashlib.md5(METADATA).hexdigest().encode()), WRITE[caller])


@pytest.mark.parametrize("tag", ["public", "private"])
def test_proxy_is_read_only(setup, tag):
    srv, names, tokens = setup
    for caller in CALLERS:
        r = _call(srv, "PUT", f"{names[tag][2]}/{BASE}/9.0/lib-9.0.pom", tokens[caller], POM)
        assert r.status_code in (401, 403, 405) and r.status_code != 201, r.text
        assert r.status_code == 405 or caller in ("anonymous", "read", "other")
    r = _call(srv, "DELETE", f"{names[tag][0]}/{BASE}/1.0/lib-1.0.pom", srv.token)
    assert r.status_code == 405


def test_mvn_anonymous_deploy_to_private_repository_is_refused(setup, tmp_path):
    srv, names, tokens = setup
    hosted = names["private"][0]
    client = MavenClient(tmp_path / "anon", f"{srv.url}/{hosted}/")  # no credentials in settings.xml
    lib = lib_project(tmp_path / "lib", "org.acme.anon", "lib", "1.0", f"{srv.url}/{hosted}/")
    res = client.run(lib, "deploy")
    assert not res.ok and "401" in res.output, res
    assert _call(srv, "GET", f"{hosted}/org/acme/anon/lib/1.0/lib-1.0.jar", srv.token).status_code == 404
    # with a write token it goes through
    client = MavenClient(tmp_path / "ci", f"{srv.url}/{hosted}/", username="ci", password=tokens["write"])
    assert (res := client.run(lib, "deploy")).ok, res
