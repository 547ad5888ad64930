"""Entitlement tokens: a customer installs with pip using a download-only token; it cannot upload, cannot use the
management API beyond whoami, is limited to its packages, stops working when revoked or expired; admins see the
download counts (written in batches, not per download)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from urllib.parse import urljoin

from tests.conftest import unique
from tests.support import artifacts
from tests.support.net import with_credentials
from tests.support.clients import pip_install, twine_upload
from tests.support.server import WHARF_BIN

from .conftest import sqlite_only


def _wheel(tmp: Path, name: str, version: str) -> Path:
    (tmp / "dist").mkdir(parents=True, exist_ok=True)
    return artifacts.make_wheel(tmp / "dist", name, version)


def _with_token(url: str, secret: str) -> str:
    return with_credentials(url, "customer", secret)


def _downloads(srv, ent_id: int, at_least: int, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        row = srv.api("GET", f"/api/v1/entitlements/{ent_id}").json()
        if row["downloads"] >= at_least or time.monotonic() > deadline:
            return row["downloads"]  # type: ignore[no-any-return]
        time.sleep(0.1)


def test_customer_installs_with_pip_and_nothing_else(hooks_server, tmp_path):
    srv = hooks_server
    name = unique("cust")
    srv.create_repo(name, private=True)
    files = [_wheel(tmp_path, "acme-client", "1.0"), _wheel(tmp_path, "internal-tool", "2.0")]
    assert twine_upload(tmp_path, f"{srv.url}/{name}/legacy/", files, token=srv.token).ok

    env = {"WHARF_URL": srv.url, "WHARF_TOKEN": srv.token, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    res = subprocess.run([WHARF_BIN, "entitlement", "create", "ACME Corp", "--repo", name, "--package", "acme-*",
                          "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    import json

    created = json.loads(res.stdout)
    secret, ent_id = created["token"], created["id"]
    assert secret.startswith("wharf_ent_") and created["downloads"] == 0
    index = _with_token(f"{srv.url}/{name}/simple/", secret)

    # download: pip installs the package the entitlement covers
    res = pip_install(tmp_path, index, "acme-client==1.0")
    assert res.ok, res
    assert (tmp_path / "pip-target" / "acme_client-1.0.dist-info").is_dir()
    # ... but not another package of the same repository
    res = pip_install(tmp_path, index, "internal-tool", target=tmp_path / "other")
    assert not res.ok and "403" in res.stdout + res.stderr, res
    listed = srv.api("GET", f"/{name}/simple/internal-tool/", token=secret, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    file_url = listed.json()["files"][0]["url"]
    r = srv.api("GET", urljoin(f"{srv.url}/{name}/simple/internal-tool/", file_url), token=secret)
    assert r.status_code == 403 and "does not cover" in r.json()["error"]

    # never a write, never the management API (except whoami)
    res = twine_upload(tmp_path, f"{srv.url}/{name}/legacy/", [_wheel(tmp_path / "n", "acme-client", "1.1")],
                       token=secret)
    assert not res.ok and "403" in res.stdout + res.stderr, res
    for method, path in [("GET", "/api/v1/repositories"), ("GET", f"/api/v1/repositories/{name}/packages"),
                         ("GET", "/api/v1/entitlements"), ("POST", "/api/v1/tokens")]:
        r = srv.api(method, path, token=secret, json={})
        assert r.status_code == 403 and "entitlement" in r.json()["error"], (path, r.text)
    me = srv.api("GET", "/api/v1/whoami", token=secret).json()
    assert me["authenticated"] and me["name"] == "ACME Corp"

    # admins see the downloads (one wheel fetched by pip; the refused one is not counted)
    assert _downloads(srv, ent_id, 1) == 1
    page = srv.api("GET", f"/{name}/simple/acme-client/", token=secret,
                   headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
    wheel_url = urljoin(f"{srv.url}/{name}/simple/acme-client/", page["files"][0]["url"])
    assert srv.api("GET", wheel_url, token=secret).status_code == 200
    assert srv.api("HEAD", wheel_url, token=secret).status_code == 200  # not a download
    assert srv.api("GET", wheel_url + ".metadata", token=secret).status_code == 200  # nor is the metadata
    assert _downloads(srv, ent_id, 2) == 2
    res = subprocess.run([WHARF_BIN, "entitlement", "list", "--json"], env=env, capture_output=True, text=True, timeout=60)
    row = next(e for e in json.loads(res.stdout) if e["id"] == ent_id)
    assert row["downloads"] == 2 and "token" not in row and row["prefix"] == secret[:14]

    # revoked: the next request is refused
    res = subprocess.run([WHARF_BIN, "entitlement", "revoke", str(ent_id)], env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    r = srv.api("GET", f"/{name}/simple/acme-client/", token=secret)
    assert r.status_code == 401 and "revoked" in r.json()["error"]


@sqlite_only
def test_repository_scope_expiry_and_admin_rules(hooks_server, tmp_path):
    srv = hooks_server
    shop, other = unique("shop"), unique("priv")
    srv.create_repo(shop, private=True)
    srv.create_repo(other, private=True)
    wheel = _wheel(tmp_path, "shop-pkg", "1.0")
    assert twine_upload(tmp_path, f"{srv.url}/{shop}/legacy/", [wheel], token=srv.token).ok

    # a short-lived entitlement for the whole repository (every package)
    r = srv.api("POST", "/api/v1/entitlements", json={"name": "trial", "repositories": [shop],
                                                      "expires_in_days": 2 / 86400})
    assert r.status_code == 201, r.text
    secret = r.json()["token"]
    assert srv.api("GET", f"/{shop}/simple/shop-pkg/", token=secret).status_code == 200
    assert srv.api("GET", f"/{other}/simple/", token=secret).status_code == 403  # another repository
    deadline = time.monotonic() + 20
    while srv.api("GET", f"/{shop}/simple/", token=secret).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    r = srv.api("GET", f"/{shop}/simple/", token=secret)
    assert r.status_code == 401 and "expired" in r.json()["error"]

    # only an admin of every covered repository may create one; expiry in the past and unknown repositories refused
    writer = srv.create_token(unique("w"), {shop: "write"})
    r = srv.api("POST", "/api/v1/entitlements", token=writer, json={"name": "x", "repositories": [shop]})
    assert r.status_code == 403
    repo_admin = srv.create_token(unique("a"), {shop: "admin"})
    r = srv.api("POST", "/api/v1/entitlements", token=repo_admin, json={"name": "x", "repositories": [shop, other]})
    assert r.status_code == 403
    assert srv.api("POST", "/api/v1/entitlements", token=repo_admin,
                   json={"name": "x", "repositories": [shop]}).status_code == 201
    r = srv.api("POST", "/api/v1/entitlements", json={"name": "x", "repositories": ["nope-nope"]})
    assert r.status_code == 400 and "nope-nope" in r.json()["error"]
    r = srv.api("POST", "/api/v1/entitlements", json={"name": "x", "repositories": [shop],
                                                      "expires_at": "2020-01-01T00:00:00Z"})
    assert r.status_code == 400 and "future" in r.json()["error"]
    # the repository admin lists only what it administers; secrets never appear
    names = {e["name"] for e in srv.api("GET", "/api/v1/entitlements", token=repo_admin).json()}
    assert names == {"trial", "x"}
    assert all("token" not in e for e in srv.api("GET", "/api/v1/entitlements").json())
