"""SIGKILL the server in the middle of many concurrent uploads: nothing half-written becomes visible, nothing
recorded is lost, ``wharf check`` finds and repairs the leftovers, and a restarted server serves and accepts again.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from tests.support import artifacts
from tests.support.server import WHARF_BIN, WharfServer

N = 30
_MIB = 1024 * 1024
_CHUNK = 256 * 1024


def wharf_check(data: Path, database_url: str | None, *extra: str) -> tuple[int, dict[str, Any]]:
    args = [WHARF_BIN, "check", "--json", "--data", str(data), *extra]
    if database_url:
        args += ["--database-url", database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHARF_")}
    res = subprocess.run(args, capture_output=True, text=True, timeout=180, env=env)
    assert res.stdout.strip().startswith("{"), res.stdout + res.stderr
    return res.returncode, json.loads(res.stdout)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_MIB):
            h.update(chunk)
    return h.hexdigest()


class SlowBody:
    """A request body with a known length (so requests sends Content-Length, as twine does), trickled out."""

    def __init__(self, data: bytes, pause: float):
        self.data, self.pause = data, pause

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[bytes]:
        for i in range(0, len(self.data), _CHUNK):
            yield self.data[i:i + _CHUNK]
            time.sleep(self.pause)


def multipart(fields: dict[str, str], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = os.urandom(16).hex()
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def upload(url: str, token: str, wheel: Path, version: str, pause: float = 0.0) -> requests.Response:
    body, ctype = multipart(artifacts.upload_form(wheel, wheel.name, "crashy", version), wheel.name, wheel.read_bytes())
    with requests.Session() as s:
        return s.post(url, data=SlowBody(body, pause), headers={"Content-Type": ctype}, auth=("__token__", token),
                      timeout=120)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Thirty 2-4 MiB wheels of one project (incompressible payloads), version -> path."""
    d = tmp_path_factory.mktemp("dist")
    out = {}
    for i in range(N):
        rnd = random.Random(i)
        payload = rnd.randbytes(rnd.randint(2 * _MIB, 4 * _MIB))
        out[f"1.{i}"] = artifacts.make_wheel(d, "crashy", f"1.{i}", extra_files={"crashy/payload.bin": payload})
    return out


def crash_and_recover(tmp_path: Path, wheels: dict[str, Path], database_url: str | None) -> None:
    shas = {v: sha256_file(w) for v, w in wheels.items()}
    data = tmp_path / "data"
    server = WharfServer(data, database_url=database_url).start()
    try:
        server.create_repo("crash")
        url = f"{server.url}/crash/legacy/"
        results: dict[str, object] = {}
        done = threading.Event()
        lock = threading.Lock()

        def one(i: int, version: str) -> None:
            time.sleep(0.04 * i)  # staggered: at the kill some are done, some mid-body, some being recorded
            try:
                r: object = upload(url, server.token, wheels[version], version, pause=0.03)
            except requests.RequestException as exc:
                r = exc
            with lock:
                results[version] = r
                if sum(isinstance(x, requests.Response) and x.status_code == 200 for x in results.values()) >= N // 3:
                    done.set()

        with ThreadPoolExecutor(N) as pool:
            for i, version in enumerate(wheels):
                pool.submit(one, i, version)
            assert done.wait(120), f"uploads did not progress: {results}\n{server.log()}"
            server.kill()
        # every upload ended: fine before the kill, or cut off by it (never a 4xx/5xx from a healthy server)
        ok = {v for v, r in results.items() if isinstance(r, requests.Response) and r.status_code == 200}
        bad = {v: r for v, r in results.items() if isinstance(r, requests.Response) and r.status_code != 200}
        assert not bad, {v: (r.status_code, r.text[:300]) for v, r in bad.items()}  # type: ignore[union-attr]
        cut = set(wheels) - ok
        assert len(ok) >= N // 3 and cut, (sorted(ok), sorted(cut))  # the kill really happened mid-way
    finally:
        server.stop()

    # -- nothing half-written is visible: every stored blob is complete (hashes to its own name)
    blobs = data / "blobs"
    stored = {}
    for p in blobs.rglob("*"):
        rel = p.relative_to(blobs)
        if rel.parts[0] == ".tmp" or not p.is_file():
            continue
        assert len(rel.parts) == 3 and rel.parts[0] == p.name[:2] and rel.parts[1] == p.name[2:4], rel
        assert sha256_file(p) == p.name, f"partial or corrupt blob visible: {rel}"
        stored[p.name] = p
    leftovers = sorted(os.listdir(blobs / ".tmp"))
    for v in ok:  # durability: an upload that was answered 200 survived the kill
        assert shas[v] in stored, v

    # -- no row points at a missing blob; the check reports exactly the leftovers
    rc, report = wharf_check(data, database_url, "--verify")
    print(f"crash: {len(ok)} acknowledged, {len(cut)} cut off; orphans {len(report['orphan_blobs'])}, "
          f"temp files {len(leftovers)}, stale {report['stale_repositories']}")
    assert report["missing_blobs"] == [] and report["size_mismatch"] == [] and report["corrupt_blobs"] == [], report
    assert report["blobs_stored"] == len(stored) and set(report["orphan_blobs"]) <= set(stored), report
    assert report["temp_files"] == len(leftovers), (report, leftovers)
    if report["orphan_blobs"] or leftovers or report["stale_repositories"]:
        assert report["problems"] and rc == 1, report
    else:
        assert rc == 0, report

    # -- repair removes the leftovers, then the check is clean
    rc, repaired = wharf_check(data, database_url, "--repair", "--grace", "0")
    assert rc == 0, repaired
    assert repaired["repaired"]["orphans_deleted"] == len(report["orphan_blobs"]), repaired
    assert "unrepairable" not in repaired, repaired
    assert os.listdir(blobs / ".tmp") == []
    for sha in report["orphan_blobs"]:
        assert sha not in {p.name for p in blobs.rglob("*")}, sha
    rc, clean = wharf_check(data, database_url)
    assert rc == 0 and not clean["problems"], clean

    # -- restart on the same data: it serves every recorded file intact, and takes the missing ones again
    with WharfServer(data, database_url=database_url) as server:
        assert requests.get(f"{server.url}/health", timeout=10).status_code == 200
        page_url = f"{server.url}/crash/simple/crashy/"
        files = requests.get(page_url, headers={"Accept": "application/vnd.pypi.simple.v1+json"}, timeout=10).json()["files"]
        listed = {f["filename"]: f for f in files}
        by_name = {w.name: v for v, w in wheels.items()}
        assert set(listed) <= set(by_name)
        assert {wheels[v].name for v in ok} <= set(listed), "an acknowledged upload was lost"
        for name, f in listed.items():
            assert f["hashes"]["sha256"] == shas[by_name[name]]
            blob = requests.get(requests.compat.urljoin(page_url, f["url"]), timeout=60)
            assert blob.status_code == 200 and hashlib.sha256(blob.content).hexdigest() == f["hashes"]["sha256"], name
        missing = [v for v, w in wheels.items() if w.name not in listed]
        url = f"{server.url}/crash/legacy/"
        for v in missing:
            r = upload(url, server.token, wheels[v], v)
            assert r.status_code == 200 and r.text == "OK", (v, r.status_code, r.text)
        for v in list(wheels)[:3]:  # re-sending what is there is a harmless no-op
            assert upload(url, server.token, wheels[v], v).status_code == 200
        files = requests.get(page_url, headers={"Accept": "application/vnd.pypi.simple.v1+json"}, timeout=10).json()["files"]
        assert {f["filename"]: f["hashes"]["sha256"] for f in files} == {w.name: shas[v] for v, w in wheels.items()}
        rc, final = wharf_check(data, database_url)
        assert rc == 0 and not final["problems"], final


def test_sigkill_during_uploads_sqlite(tmp_path, wheels):
    crash_and_recover(tmp_path, wheels, None)


def test_sigkill_during_uploads_postgres(postgres, tmp_path, wheels):
    crash_and_recover(tmp_path, wheels, postgres.create_database())
