"""`wharf repo prefetch`: warm a proxy's cache from a requirements file, then install with the upstream gone.
The upstream is a real second Wharf (a hosted repository filled with twine)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.conftest import unique
from tests.support import artifacts
from tests.support.clients import clean_env, pip_install, twine_upload
from tests.support.server import WHARF_BIN, WharfServer

pytestmark = pytest.mark.timeout(180)


def _wharf(tmp: Path, srv: WharfServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(tmp, {"WHARF_CLIENT_CONFIG": str(tmp / "no-client-config.toml"), "COLUMNS": "200", "TERM": "dumb",
                          "WHARF_URL": srv.url, "WHARF_TOKEN": srv.token})
    return subprocess.run([WHARF_BIN, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfServer]:
    """A real Wharf with pf-* packages: pf-lib 1.0, 2.0 (wheel + sdist), 3.0 (yanked), 4.0b1 (pre-release)."""
    tmp = tmp_path_factory.mktemp("prefetch-up")
    with WharfServer(tmp / "data") as srv:
        srv.create_repo("up")
        d = tmp / "dist"
        d.mkdir()
        files = [
            artifacts.make_wheel(d, "pf-lib", "1.0"),
            artifacts.make_wheel(d, "pf-lib", "2.0"), artifacts.make_sdist(d, "pf-lib", "2.0"),
            artifacts.make_wheel(d, "pf-lib", "3.0"),
            artifacts.make_wheel(d, "pf-lib", "4.0b1"),
            artifacts.make_wheel(d, "pf-app", "1.0", requires_dist=["pf-lib>=1"]),
            artifacts.make_wheel(d, "pf-app", "1.1", requires_dist=["pf-lib>=1"]),
            artifacts.make_wheel(d, "pf-extra", "1.0"),
            artifacts.make_wheel(d, "pf-never", "1.0"),
        ]
        res = twine_upload(tmp, f"{srv.url}/up/legacy/", files, token=srv.token)
        assert res.ok, res
        r = srv.api("POST", "/api/v1/repositories/up/packages/pf-lib/versions/3.0/yank", json={"reason": "broken"})
        assert r.status_code == 200, r.text
        yield srv


def _proxy(server: WharfServer, upstream: WharfServer) -> str:
    name = unique("pf")
    r = server.api("POST", "/api/v1/repositories", json={
        "name": name, "format": "python", "kind": "proxy",
        "config": {"upstream": {"url": f"{upstream.url}/up/simple/", "index_ttl": 0, "connect_timeout": 2,
                                "read_timeout": 5}}})
    assert r.status_code == 201, r.text
    return name


def _cached_files(server: WharfServer, repo: str) -> set[str]:
    names = set()
    for pkg in server.api("GET", f"/api/v1/repositories/{repo}/packages").json():
        names.update(f["filename"] for f in server.api("GET", f"/api/v1/repositories/{repo}/packages/{pkg}").json()["files"])
    return names


def test_prefetch_then_install_with_the_upstream_gone(sqlite_server, upstream, tmp_path):
    proxy = _proxy(sqlite_server, upstream)
    (tmp_path / "more.txt").write_text("pf-extra  # from a nested file\n")
    req = tmp_path / "requirements.txt"
    req.write_text(
        "# pinned by hand\n"
        "--prefer-binary\n"
        "pf-app==1.0 \\\n"
        "    --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000\n"
        "PF_Lib >=1, <4   # newest non-yanked match: 2.0 (3.0 is yanked, 4.0b1 a pre-release)\n"
        'pf-never ; python_version < "3"\n'
        "\n"
        "-r more.txt\n"
    )
    r = _wharf(tmp_path, sqlite_server, "repo", "prefetch", proxy, "-r", str(req))
    assert r.returncode == 0, r.stderr
    assert "fetched 4 files" in r.stderr and "pf-never" in r.stderr  # skipped: its marker does not apply
    assert _cached_files(sqlite_server, proxy) == {
        "pf_app-1.0-py3-none-any.whl", "pf_lib-2.0-py3-none-any.whl", "pf_lib-2.0.tar.gz",
        "pf_extra-1.0-py3-none-any.whl"}

    upstream.stop()
    try:
        index = f"{sqlite_server.url}/{proxy}/simple/"
        res = pip_install(tmp_path, index, "pf-app==1.0", "pf-lib>=1,<4", "pf-extra", target=tmp_path / "t")
        assert res.ok, res
        for dist in ("pf_app-1.0", "pf_lib-2.0", "pf_extra-1.0"):
            assert (tmp_path / "t" / f"{dist}.dist-info").is_dir(), dist
        # with the upstream gone, what was not prefetched fails clearly
        r = _wharf(tmp_path, sqlite_server, "repo", "prefetch", proxy, "pf-extra", "pf-unknown")
        assert r.returncode == 1 and "fetched 1 file," in r.stderr
        assert "pf-unknown" in r.stderr and "upstream" in r.stderr
    finally:
        upstream.start()


def test_prefetch_reports_what_it_could_not_fetch(sqlite_server, upstream, tmp_path):
    proxy = _proxy(sqlite_server, upstream)
    r = _wharf(tmp_path, sqlite_server, "repo", "prefetch", proxy, "pf-lib>=9", "pf-missing", "pf-app", "pf-lib==3.0",
               "pf-lib>=4.0b1", "not a requirement!")
    assert r.returncode == 1, r.stderr
    out = " ".join(r.stderr.split())
    assert "fetched 3 files" in out  # pf-app 1.1, the pinned yanked pf-lib 3.0, the pre-release 4.0b1
    assert "4 failed" not in out and "3 failed" in out
    assert "pf-lib>=9" in out and "no version matches" in out and "2.0" in out
    assert "pf-missing" in out and "404" in out
    assert "not a requirement" in out
    assert _cached_files(sqlite_server, proxy) == {"pf_app-1.1-py3-none-any.whl", "pf_lib-3.0-py3-none-any.whl",
                                                   "pf_lib-4.0b1-py3-none-any.whl"}
    # no requirements at all is a usage error
    r = _wharf(tmp_path, sqlite_server, "repo", "prefetch", proxy)
    assert r.returncode == 2


def test_prefetch_works_on_hosted_repositories_too(sqlite_server, tmp_path):
    repo = unique("hosted")
    sqlite_server.create_repo(repo)
    wheel = artifacts.make_wheel(tmp_path, "pf-local", "1.0")
    res = twine_upload(tmp_path, f"{sqlite_server.url}/{repo}/legacy/", [wheel], token=sqlite_server.token)
    assert res.ok, res
    r = _wharf(tmp_path, sqlite_server, "repo", "prefetch", repo, "pf-local")
    assert r.returncode == 0 and f"fetched 1 file, {wheel.stat().st_size} bytes" in " ".join(r.stderr.split()), r.stderr
    assert httpx.get(f"{sqlite_server.url}/health").status_code == 200
