"""Per-repository IP allowlists, enforced for every format's protocol routes and for management API routes acting
on the repository; X-Forwarded-For believed only from the trusted proxy (127.0.0.1 here), right-most untrusted hop.
pip and twine are the clients of the Python flow."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import unique
from tests.support import artifacts
from tests.support.clients import pip_install, twine_upload

from .conftest import from_addr, sqlite_only

CI_NET = "10.20.0.0/16"


def _wheel(tmp: Path, name: str, version: str) -> Path:
    (tmp / "dist").mkdir(parents=True, exist_ok=True)
    return artifacts.make_wheel(tmp / "dist", name, version)


def test_python_repository_allowlists_with_pip_and_twine(hooks_server, tmp_path):
    srv = hooks_server
    name = unique("stage")
    srv.create_repo(name, allow_read=[CI_NET, "127.0.0.1"], allow_write=[CI_NET])
    index = f"{srv.url}/{name}/simple/"
    upload = f"{srv.url}/{name}/legacy/"
    wheel = _wheel(tmp_path, "stagepkg", "1.0")

    # writes from 127.0.0.1 (not in allow_write) are refused, with a sentence saying why
    res = twine_upload(tmp_path, upload, [wheel], token=srv.token)
    assert not res.ok and "403" in res.stderr + res.stdout, res
    r = srv.api("POST", f"/{name}/legacy/", files={"content": (wheel.name, wheel.read_bytes())},
                data=artifacts.upload_form(wheel, wheel.name, "stagepkg", "1.0"))
    assert r.status_code == 403
    assert "not allowed from address 127.0.0.1" in r.json()["error"] and "allow_write" in r.json()["error"]

    # the same upload arriving through the trusted proxy from the CI network is accepted
    r = srv.api("POST", f"/{name}/legacy/", files={"content": (wheel.name, wheel.read_bytes())},
                data=artifacts.upload_form(wheel, wheel.name, "stagepkg", "1.0"), headers=from_addr("10.20.3.4"))
    assert r.status_code == 200, r.text

    # reads: pip from 127.0.0.1 (listed) installs
    res = pip_install(tmp_path, index, "stagepkg==1.0")
    assert res.ok, res
    # an address outside allow_read gets 403 on pages and files, anonymous or with an admin token
    for token in (None, "admin"):
        r = srv.api("GET", f"/{name}/simple/stagepkg/", token=token, headers=from_addr("192.0.2.7"))
        assert r.status_code == 403 and "read access" in r.json()["error"], r.text
    # the client cannot spoof: entries left of the right-most untrusted hop are ignored
    assert srv.api("GET", f"/{name}/simple/", headers=from_addr("10.20.9.9, 192.0.2.7")).status_code == 403
    assert srv.api("GET", f"/{name}/simple/", headers=from_addr("192.0.2.7, 10.20.9.9")).status_code == 200
    # a trusted hop on the right is skipped (proxy chain through 127.0.0.1)
    assert srv.api("GET", f"/{name}/simple/", headers=from_addr("10.20.9.9, 127.0.0.1")).status_code == 200

    # narrowing the read list through the CLI locks pip out; the repository settings stay reachable for admins
    srv.api("PATCH", f"/api/v1/repositories/{name}", json={"config": {"allow_read": [CI_NET]}}).raise_for_status()
    res = pip_install(tmp_path, index, "stagepkg==1.0", target=tmp_path / "again")
    assert not res.ok, res  # (pip reports a refused page as "no matching distribution")
    # management API routes acting on the repository follow the lists too
    r = srv.api("GET", f"/api/v1/repositories/{name}/packages")
    assert r.status_code == 403 and "allow_read" in r.json()["error"]
    assert srv.api("GET", f"/api/v1/repositories/{name}/packages", headers=from_addr("10.20.1.1")).status_code == 200
    r = srv.api("DELETE", f"/api/v1/repositories/{name}/packages/stagepkg", headers=from_addr("10.99.1.1"))
    assert r.status_code == 403 and "allow_write" in r.json()["error"]
    assert srv.api("GET", f"/api/v1/repositories/{name}").status_code == 200  # settings: exempt (no lock-out)
    # clearing the list opens it again
    srv.api("PATCH", f"/api/v1/repositories/{name}", json={"config": {"allow_read": None}}).raise_for_status()
    assert srv.api("GET", f"/{name}/simple/", headers=from_addr("192.0.2.7")).status_code == 200


@sqlite_only
@pytest.mark.parametrize("fmt,path,write", [
    ("npm", "left-pad", "left-pad"), ("maven", "com/acme/x/1.0/x-1.0.pom", "com/acme/x/1.0/x-1.0.pom"),
    ("cargo", "index/config.json", "api/v1/crates/new"), ("generic", "tools/a.txt", "tools/a.txt")])
def test_every_format_refuses_addresses_outside_the_lists(hooks_server, fmt, path, write):
    srv = hooks_server
    name = unique(fmt)
    srv.create_repo(name, format=fmt, allow_read=[CI_NET], allow_write=["10.30.0.0/16"])
    r = srv.api("GET", f"/{name}/{path}", headers=from_addr("192.0.2.1"))
    assert r.status_code == 403 and f"repository '{name}'" in r.text
    assert srv.api("GET", f"/{name}/{path}", headers=from_addr("10.20.0.1")).status_code != 403
    # a write from a reader's address: refused before any body is looked at
    r = srv.api("PUT", f"/{name}/{write}", content=b"x", headers=from_addr("10.20.0.1"))
    assert r.status_code == 403 and "allow_write" in r.text  # (cargo words errors its own way)


@sqlite_only
def test_generic_write_list_and_group_reads_pass_member_lists(hooks_server):
    srv = hooks_server
    inner = unique("inner")
    srv.create_repo(inner, format="python", allow_read=[CI_NET])
    open_repo = unique("open")
    srv.create_repo(open_repo, format="python")
    group = unique("grp")
    r = srv.api("POST", "/api/v1/repositories", json={"name": group, "format": "python", "kind": "group",
                                                      "config": {"members": [open_repo, inner]}})
    assert r.status_code == 201, r.text
    # reading through the group needs the restricted member's list too
    r = srv.api("GET", f"/{group}/simple/", headers=from_addr("192.0.2.1"))
    assert r.status_code == 403 and f"'{inner}'" in r.json()["error"]
    assert srv.api("GET", f"/{group}/simple/", headers=from_addr("10.20.5.5")).status_code == 200

    gen = unique("gen")
    srv.create_repo(gen, format="generic", allow_write=["10.30.0.0/16"])
    url = f"/{gen}/tools/1.0/a.txt"
    assert srv.api("PUT", url, content=b"hello", headers=from_addr("10.31.0.1")).status_code == 403
    r = srv.api("PUT", url, content=b"hello", headers=from_addr("10.30.0.1"))
    assert r.status_code in (200, 201), r.text
    assert srv.api("GET", url, token=None).content == b"hello"  # no read list: anyone reads


@sqlite_only
def test_invalid_lists_are_refused_with_the_bad_entry(hooks_server):
    srv = hooks_server
    r = srv.api("POST", "/api/v1/repositories", json={"name": unique("bad"), "format": "python",
                                                      "config": {"allow_read": ["10.0.0.0/8", "10.0.0.300/24"]}})
    assert r.status_code == 400 and "'10.0.0.300/24'" in r.json()["error"]
    r = srv.api("POST", "/api/v1/repositories", json={"name": unique("bad"), "format": "python",
                                                      "config": {"allow_write": "everyone"}})
    assert r.status_code == 400 and "allow_write" in r.json()["error"]
    # normalised on the way in; an empty list means nobody
    name = unique("norm")
    cfg = srv.create_repo(name, allow_read=["10.1.2.3/8", "2001:db8::1"], allow_write=[])["config"]
    assert cfg["allow_read"] == ["10.0.0.0/8", "2001:db8::1/128"] and cfg["allow_write"] == []
    r = httpx.put(f"{srv.url}/{name}/legacy/", headers={"Authorization": f"Bearer {srv.token}"})
    assert r.status_code == 403


@sqlite_only
def test_cli_access_set_show_clear(hooks_server, tmp_path):
    import subprocess

    from tests.support.server import WHARF_BIN

    srv = hooks_server
    name = unique("cli")
    srv.create_repo(name)
    env = {"WHARF_URL": srv.url, "WHARF_TOKEN": srv.token, "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def wharf(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([WHARF_BIN, *args], env=env, capture_output=True, text=True, timeout=60)

    res = wharf("access", "set", name, "--read", "10.20.0.0/16,127.0.0.1", "--write", "", "--json")
    assert res.returncode == 0, res.stderr
    assert '"127.0.0.1/32"' in res.stdout and '"allow_write": []' in res.stdout
    assert srv.api("GET", f"/{name}/simple/", headers=from_addr("192.0.2.1")).status_code == 403
    res = wharf("access", "set", name, "--read", "300.1.1.1")
    assert res.returncode == 1 and "300.1.1.1" in res.stderr
    res = wharf("access", "set", name, "--clear-read", "--clear-write", "--json")
    assert res.returncode == 0 and '"allow_read": null' in res.stdout, res.stderr
    assert srv.api("GET", f"/{name}/simple/", headers=from_addr("192.0.2.1")).status_code == 200
