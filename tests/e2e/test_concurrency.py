"""Concurrent uploads racing for one filename: one winner, clear refusals, no orphan blobs (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from tests.conftest import unique
from tests.support import artifacts
from tests.support.server import WHARF_BIN

N = 20


def wharf_check(server: Any, *extra: str) -> tuple[int, dict[str, Any]]:
    """``wharf check --json`` against the running server's data directory and database."""
    args = [WHARF_BIN, "check", "--json", "--data", str(server.data), *extra]
    if server.database_url:
        args += ["--database-url", server.database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
    res = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    assert res.stdout.strip().startswith("{"), res.stdout + res.stderr
    return res.returncode, json.loads(res.stdout)


def upload_all(server: Any, jobs: list[tuple[str, Path, str, str]]) -> list[requests.Response]:
    """POST every (repo, file, name, version) at the same moment, each on its own connection."""
    barrier = threading.Barrier(len(jobs))

    def one(job: tuple[str, Path, str, str]) -> requests.Response:
        repo, path, name, version = job
        data = artifacts.upload_form(path, path.name, name, version)
        content = path.read_bytes()
        barrier.wait(timeout=30)
        with requests.Session() as s:  # a fresh connection per upload
            return s.post(f"{server.url}/{repo}/legacy/", data=data, files={"content": (path.name, content)},
                          auth=("__token__", server.token), timeout=120)

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(one, jobs))


def index_files(server: Any, repo: str, project: str) -> list[dict[str, Any]]:
    r = requests.get(f"{server.url}/{repo}/simple/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"},
                     timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["files"]  # type: ignore[no-any-return]


def assert_store_clean(server: Any) -> None:
    _rc, report = wharf_check(server)
    assert report["orphan_blobs"] == [], report
    assert report["missing_blobs"] == [] and report["size_mismatch"] == [], report
    assert report["temp_files"] == 0, report
    assert sorted(os.listdir(server.data / "blobs" / ".tmp")) == []


def test_same_filename_different_contents(server, repo_name, tmp_path):
    server.create_repo(repo_name)
    wheels = []
    for i in range(N):
        # different METADATA (summary) and different payload: no two uploads share a blob
        (tmp_path / f"w{i}").mkdir()
        wheels.append(artifacts.make_wheel(tmp_path / f"w{i}", "race", "1.0", summary=f"contender {i}",
                                           extra_files={"race/data.bin": random.Random(i).randbytes(64 * 1024)}))
    assert len({w.name for w in wheels}) == 1 and len({w.read_bytes() for w in wheels}) == N
    responses = upload_all(server, [(repo_name, w, "race", "1.0") for w in wheels])
    codes = [r.status_code for r in responses]
    assert codes.count(200) == 1, [(r.status_code, r.text[:200]) for r in responses]
    assert codes.count(400) == N - 1, codes
    for r in responses:
        if r.status_code == 400:
            assert "File already exists" in r.json()["error"], r.text
    winner = wheels[codes.index(200)]
    files = index_files(server, repo_name, "race")
    assert len(files) == 1
    assert files[0]["hashes"]["sha256"] == hashlib.sha256(winner.read_bytes()).hexdigest()
    blob = requests.get(requests.compat.urljoin(f"{server.url}/{repo_name}/simple/race/", files[0]["url"]), timeout=10)
    assert blob.content == winner.read_bytes()
    repo = server.api("GET", f"/api/v1/repositories/{repo_name}").json()
    assert repo["stats"]["files"] == 1 and repo["version"] == 1, repo
    assert_store_clean(server)


def test_same_file_identical_contents(server, repo_name, tmp_path):
    server.create_repo(repo_name)
    wheel = artifacts.make_wheel(tmp_path, "twin", "1.0", extra_files={"twin/data.bin": os.urandom(64 * 1024)})
    responses = upload_all(server, [(repo_name, wheel, "twin", "1.0")] * N)
    assert [r.status_code for r in responses] == [200] * N, [(r.status_code, r.text[:200]) for r in responses]
    assert sum(r.text == "OK" for r in responses) == 1, [r.text for r in responses]  # one created it, the rest no-ops
    files = index_files(server, repo_name, "twin")
    assert [f["hashes"]["sha256"] for f in files] == [hashlib.sha256(wheel.read_bytes()).hexdigest()]
    repo = server.api("GET", f"/api/v1/repositories/{repo_name}").json()
    assert repo["stats"]["files"] == 1 and repo["version"] == 1, repo
    assert_store_clean(server)


def test_same_file_into_many_repositories(server, tmp_path):
    """One file uploaded to ten repositories at once: every upload succeeds and they share one blob."""
    repos = [unique("fan") for _ in range(10)]
    for repo in repos:
        server.create_repo(repo)
    wheel = artifacts.make_wheel(tmp_path, "fanout", "1.0", extra_files={"fanout/data.bin": os.urandom(64 * 1024)})
    jobs = [(repo, wheel, "fanout", "1.0") for repo in repos for _ in range(2)]
    responses = upload_all(server, jobs)
    assert [r.status_code for r in responses] == [200] * len(jobs), [(r.status_code, r.text[:200]) for r in responses]
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    for repo in repos:
        assert [f["hashes"]["sha256"] for f in index_files(server, repo, "fanout")] == [sha]
    assert (server.data / "blobs" / sha[:2] / sha[2:4] / sha).is_file()
    assert_store_clean(server)


def test_different_files_at_once(server, repo_name, tmp_path):
    """Twenty different releases of one project at once: all land, and the index lists every one."""
    server.create_repo(repo_name)
    wheels = [artifacts.make_wheel(tmp_path, "many", f"1.{i}") for i in range(N)]
    responses = upload_all(server, [(repo_name, w, "many", f"1.{i}") for i, w in enumerate(wheels)])
    assert [r.status_code for r in responses] == [200] * N, [(r.status_code, r.text[:200]) for r in responses]
    assert {f["filename"] for f in index_files(server, repo_name, "many")} == {w.name for w in wheels}
    repo = server.api("GET", f"/api/v1/repositories/{repo_name}").json()
    assert repo["stats"]["files"] == N and repo["version"] == N, repo
    assert_store_clean(server)
