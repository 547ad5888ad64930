"""Who may call which cargo route: anonymous, read, write, repository-admin and another repository's admin token,
against public and private hosted repositories, and the read routes of groups and proxies. Tokens are sent the way
cargo sends them (``Authorization: <raw token>``)."""

from __future__ import annotations

import itertools

import httpx
import pytest

from tests.conftest import unique
from tests.support.cargo_client import create_cargo_repo
from tests.support.cargo_crates import crate_bytes, metadata, publish_body

CALLERS = ("anonymous", "read", "write", "admin", "other-admin")
#              anon read write admin other
PUBLIC_READ = (200, 200, 200, 200, 200)
PRIVATE_READ = (401, 200, 200, 200, 403)
WRITE = (401, 403, 200, 200, 403)

_n = itertools.count()


def routes(crate: str):
    """(name, method, path, body factory, rule for public, rule for private). ``crate`` is owned by the caller."""
    fresh = lambda: f"fresh{next(_n)}x"  # noqa: E731
    return [
        ("config", "GET", "index/config.json", None, PUBLIC_READ, PRIVATE_READ),
        ("index-file", "GET", f"index/{crate[:2]}/{crate[2:4]}/{crate}", None, PUBLIC_READ, PRIVATE_READ),
        ("download", "GET", f"api/v1/crates/{crate}/1.0.0/download", None, PUBLIC_READ, PRIVATE_READ),
        ("search", "GET", "api/v1/crates?q=own&per_page=5", None, PUBLIC_READ, PRIVATE_READ),
        ("owners-list", "GET", f"api/v1/crates/{crate}/owners", None, PUBLIC_READ, PRIVATE_READ),
        ("publish", "PUT", "api/v1/crates/new",
         lambda: (lambda n: publish_body(metadata(n, "1.0.0"), crate_bytes(n, "1.0.0")))(fresh()), WRITE, WRITE),
        ("yank", "DELETE", f"api/v1/crates/{crate}/1.0.0/yank", None, WRITE, WRITE),
        ("unyank", "PUT", f"api/v1/crates/{crate}/1.0.0/unyank", None, WRITE, WRITE),
        ("owners-add", "PUT", f"api/v1/crates/{crate}/owners", lambda: b'{"users":["helper"]}', WRITE, WRITE),
        ("owners-remove", "DELETE", f"api/v1/crates/{crate}/owners", lambda: b'{"users":["helper"]}', WRITE, WRITE),
    ]


@pytest.fixture(scope="module")
def world(sqlite_server):
    server = sqlite_server
    out = {}
    for vis in ("public", "private"):
        repo = unique(f"auth{vis}")
        server.create_repo(repo, format="cargo", private=vis == "private")
        other = unique("other")
        server.create_repo(other, format="cargo")
        tokens = {
            "anonymous": None,
            "read": server.create_token(unique("reader"), {repo: "read"}),
            "write": server.create_token(unique("writer"), {repo: "write"}),
            "admin": server.create_token(unique("admin"), {repo: "admin"}),
            "other-admin": server.create_token(unique("otheradmin"), {other: "admin"}),
        }
        names = {}
        for caller in CALLERS:  # one crate per caller, owned by that caller's token (owners gate writes)
            crate = f"own{vis[:3]}{caller.replace('-', '')}"
            r = httpx.put(f"{server.url}/{repo}/api/v1/crates/new", headers={"Authorization": server.token},
                          content=publish_body(metadata(crate, "1.0.0"), crate_bytes(crate, "1.0.0")))
            assert r.status_code == 200, r.text
            if tokens[caller] is not None:
                login = server.api("GET", "/api/v1/whoami", token=tokens[caller]).json()["name"]
                r = httpx.put(f"{server.url}/{repo}/api/v1/crates/{crate}/owners",
                              headers={"Authorization": server.token}, json={"users": [login]})
                assert r.status_code == 200, r.text
            names[caller] = crate
        out[vis] = (repo, tokens, names)
    return out


@pytest.mark.parametrize("vis", ["public", "private"])
def test_cargo_routes_auth_matrix(sqlite_server, world, vis):
    repo, tokens, names = world[vis]
    wrong = []
    for caller, col in zip(CALLERS, range(len(CALLERS))):
        for name, method, path, body, pub, priv in routes(names[caller]):
            expected = (pub if vis == "public" else priv)[col]
            headers = {"Authorization": tokens[caller]} if tokens[caller] else {}
            r = httpx.request(method, f"{sqlite_server.url}/{repo}/{path}", headers=headers,
                              content=body() if body else None, timeout=30)
            if r.status_code != expected:
                wrong.append(f"{caller} {name}: {r.status_code} (expected {expected}) {r.text[:200]}")
            elif r.status_code >= 400:
                assert r.json()["errors"][0]["detail"], r.text
                if r.status_code == 401:
                    assert r.headers.get("www-authenticate", "").startswith("Cargo")
    assert not wrong, "\n".join(wrong)


def test_write_token_that_does_not_own_a_crate_cannot_change_it(sqlite_server, world):
    repo, tokens, names = world["public"]
    theirs = names["admin"]  # owned by the admin token's name
    for method, path, body in (("DELETE", f"api/v1/crates/{theirs}/1.0.0/yank", None),
                               ("PUT", f"api/v1/crates/{theirs}/owners", b'{"users":["me"]}'),
                               ("PUT", "api/v1/crates/new", publish_body(metadata(theirs, "2.0.0"),
                                                                         crate_bytes(theirs, "2.0.0")))):
        r = httpx.request(method, f"{sqlite_server.url}/{repo}/{path}", content=body,
                          headers={"Authorization": tokens["write"]})
        assert r.status_code == 403 and "not an owner" in r.json()["errors"][0]["detail"], r.text


def test_group_and_proxy_read_routes_follow_visibility(sqlite_server, world):
    server = sqlite_server
    hosted, _tokens, names = world["public"]
    crate = names["write"]
    proxy = unique("authproxy")
    create_cargo_repo(server, proxy, "proxy", upstream={"url": f"{server.url}/{hosted}/index/"})
    for vis in ("public", "private"):
        group = unique(f"authgroup{vis}")
        create_cargo_repo(server, group, "group", private=vis == "private", members=[proxy])
        reader = server.create_token(unique("greader"), {group: "read"})
        stranger = server.create_token(unique("stranger"), {hosted: "admin"})
        for path in ("index/config.json", f"index/{crate[:2]}/{crate[2:4]}/{crate}",
                     f"api/v1/crates/{crate}/1.0.0/download", "api/v1/crates?q=own"):
            anon = httpx.get(f"{server.url}/{group}/{path}")
            ok = httpx.get(f"{server.url}/{group}/{path}", headers={"Authorization": reader})
            other = httpx.get(f"{server.url}/{group}/{path}", headers={"Authorization": stranger})
            assert ok.status_code == 200, (path, ok.text)
            assert anon.status_code == (200 if vis == "public" else 401), (path, anon.text)
            assert other.status_code == (200 if vis == "public" else 403), (path, other.text)
        # writes to a group without a default member, and to a proxy, are refused
        for repo in (group, proxy):
            r = httpx.put(f"{server.url}/{repo}/api/v1/crates/new", headers={"Authorization": server.token},
                          content=publish_body(metadata("nope", "1.0.0"), crate_bytes("nope", "1.0.0")))
            assert r.status_code == 405 and "read-only" in r.json()["errors"][0]["detail"]
