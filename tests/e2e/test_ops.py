"""Operating the server: first start, settings sources, several workers, health and metrics, logs, web pages, defaults."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import stat
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.conftest import unique
from tests.support import artifacts
from tests.support.clients import twine_upload
from tests.support.net import free_port, wait_http
from tests.support.server import WHARF_BIN, WharfServer

BANNER = "Wharf admin token (shown once"


def _wheel(d: Path, name: str, version: str, **kw) -> Path:  # noqa: ANN003
    d.mkdir(parents=True, exist_ok=True)
    return artifacts.make_wheel(d, name, version, **kw)


def _basic(secret: str, user: str = "__token__") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def _counter(metrics_text: str, **labels: str) -> float:
    """Sum of wharf_http_requests_total samples whose labels include ``labels``."""
    total = 0.0
    for line in metrics_text.splitlines():
        m = re.match(r"^wharf_http_requests_total\{(.*)\} ([0-9.e+]+)$", line)
        if m:
            got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            if all(got.get(k) == v for k, v in labels.items()):
                total += float(m.group(2))
    return total


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


# -- first start -----------------------------------------------------------------------------------------------------
def test_first_start_prints_and_stores_an_admin_token_once(tmp_path):
    data = tmp_path / "data"
    srv = WharfServer(data, env={"WHARF_BOOTSTRAP_TOKEN": ""})  # as a user would start it: no preset token
    with srv:
        token_file = data / "admin-token"
        secret = token_file.read_text().strip()
        assert secret.startswith("wharf_") and len(secret) > 30
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        log = srv.log()
        assert log.count(BANNER) == 1 and secret in log
        r = httpx.get(f"{srv.url}/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"})
        assert r.json()["authenticated"] and r.json()["scopes"] == [{"repository": "*", "action": "admin"}]
    # a second start (even with a bootstrap token now set) creates nothing new and prints nothing secret
    srv2 = WharfServer(data, env={"WHARF_BOOTSTRAP_TOKEN": "wharf_too_late_for_this_one"})
    with srv2:
        log = srv2.log()  # the same log file, appended
        assert log.count(BANNER) == 1
        assert token_file.read_text().strip() == secret
        assert httpx.get(f"{srv2.url}/api/v1/whoami", headers={"Authorization": f"Bearer {secret}"}).json()["authenticated"]
        r = httpx.get(f"{srv2.url}/api/v1/whoami", headers={"Authorization": "Bearer wharf_too_late_for_this_one"})
        assert r.status_code == 401
        r = httpx.get(f"{srv2.url}/api/v1/tokens", headers={"Authorization": f"Bearer {secret}"})
        assert [t["name"] for t in r.json()] == ["admin"]


def test_bootstrap_token_from_environment(tmp_path):
    data = tmp_path / "data"
    with WharfServer(data, token="wharf_chosen_by_the_operator") as srv:
        assert (data / "admin-token").read_text().strip() == "wharf_chosen_by_the_operator"
        assert stat.S_IMODE((data / "admin-token").stat().st_mode) == 0o600
        assert srv.api("GET", "/api/v1/whoami").json()["name"] == "admin"
        assert BANNER not in srv.log() and "wharf_chosen_by_the_operator" not in srv.log()


# -- settings sources ------------------------------------------------------------------------------------------------
def _base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WHARF_", "PROMETHEUS_"))}
    env["WHARF_BOOTSTRAP_TOKEN"] = "wharf_ops_admin"
    env.update(extra)
    return env


@contextmanager
def serving(args: list[str], *, port: int, env: dict[str, str], cwd: Path, log: Path) -> Iterator[subprocess.Popen]:
    """``wharf serve ARGS`` exactly as given (no flags added); waits for /health on ``port``."""
    with open(log, "ab") as fh:
        proc = subprocess.Popen([WHARF_BIN, "serve", *args], env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                wait_http(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except TimeoutError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not come up on port {port}:\n{log.read_text()[-4000:]}")
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def test_relative_data_directory_serves_downloads(tmp_path):
    """``make run`` uses ``./data``: with a relative data directory, uploaded files must still download (download
    links are symlinks to blobs, so they are made from an absolute path)."""
    port = free_port()
    (tmp_path / "wd").mkdir()
    with serving(["--data", "rel/data", "--port", str(port)], port=port, env=_base_env(), cwd=tmp_path / "wd",
                 log=tmp_path / "serve.log"):
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": "Bearer wharf_ops_admin"}
        assert httpx.post(f"{base}/api/v1/repositories", json={"name": "rel", "format": "python"},
                          headers=auth).status_code == 201
        wheel = _wheel(tmp_path / "dist", "relpkg", "1.0")
        assert twine_upload(tmp_path, f"{base}/rel/legacy/", [wheel], token="wharf_ops_admin").ok
        page = httpx.get(f"{base}/rel/simple/relpkg/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}).json()
        url = httpx.URL(f"{base}/rel/simple/relpkg/").join(page["files"][0]["url"])
        got = httpx.get(url)
        assert got.status_code == 200 and got.content == wheel.read_bytes()
    assert (tmp_path / "wd" / "rel" / "data" / "wharf.db").is_file()


def test_settings_from_toml_file(tmp_path):
    port, data = free_port(), tmp_path / "toml-data"
    cfg = tmp_path / "wharf.toml"
    cfg.write_text(f'[server]\nhost = "127.0.0.1"\nport = {port}\ndata = "{data}"\naccess-log = false\n')
    log = tmp_path / "serve.log"
    with serving(["--config", str(cfg)], port=port, env=_base_env(), cwd=tmp_path, log=log):
        assert (data / "wharf.db").is_file() and (data / "admin-token").is_file()
        assert not (tmp_path / "data").exists()  # not the default
        httpx.get(f"http://127.0.0.1:{port}/ui/")
    assert f"Wharf listening on http://127.0.0.1:{port}/" in log.read_text()
    assert '"path": "/ui/"' not in log.read_text() and '"path":"/ui/"' not in log.read_text()  # access-log = false


def test_environment_overrides_toml_and_flags_override_environment(tmp_path):
    p_toml, p_env, p_flag = free_port(), free_port(), free_port()
    d_toml, d_env = tmp_path / "d-toml", tmp_path / "d-env"
    cfg = tmp_path / "top-level.toml"  # keys at the top level this time, and found through WHARF_CONFIG
    cfg.write_text(f'port = {p_toml}\ndata = "{d_toml}"\nmax_upload_size = 1000\n')
    env = _base_env(WHARF_CONFIG=str(cfg), WHARF_PORT=str(p_env), WHARF_DATA=str(d_env))
    log = tmp_path / "serve.log"
    with serving(["--port", str(p_flag)], port=p_flag, env=env, cwd=tmp_path, log=log):
        assert _refused(p_toml) and _refused(p_env)
        assert (d_env / "wharf.db").is_file() and not d_toml.exists()
        # the TOML value nobody overrode still applies: the 1000-byte default upload limit
        hdr = {"Authorization": "Bearer wharf_ops_admin"}
        base = f"http://127.0.0.1:{p_flag}"
        assert httpx.post(f"{base}/api/v1/repositories", json={"name": "lim", "format": "python"},
                          headers=hdr).status_code == 201
        big = _wheel(tmp_path / "dist", "biggish", "1.0", summary="x" * 3000)
        assert big.stat().st_size > 1000
        res = twine_upload(tmp_path, f"{base}/lim/legacy/", [big], token="wharf_ops_admin", extra_args=["--verbose"])
        assert not res.ok and ("too large" in res.output.lower() or "413" in res.output), res


def test_unknown_setting_in_toml_is_a_clear_error(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("prot = 8081\n")
    r = subprocess.run([WHARF_BIN, "serve", "--config", str(cfg)], env=_base_env(COLUMNS="250"), cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "unknown setting 'prot'" in r.stderr and "Traceback" not in r.stderr, r.stderr[-3000:]


def test_defaults_data_in_cwd_and_port_8080(tmp_path):
    def port_free(p: int) -> bool:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return True
            except OSError:
                return False

    check_8080 = port_free(8080)
    port = 8080 if check_8080 else free_port()
    args = [] if check_8080 else ["--port", str(port)]
    log = tmp_path / "serve.log"
    with serving(args, port=port, env=_base_env(), cwd=tmp_path, log=log):
        assert (tmp_path / "data" / "wharf.db").is_file()
        assert (tmp_path / "data" / "admin-token").is_file()
    assert f"Wharf listening on http://127.0.0.1:{port}/" in log.read_text()
    if not check_8080:
        pytest.skip("port 8080 is taken on this machine: the default data directory was checked, the default port not")


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as fh:
                if entry.isdigit() and fh.read().rsplit(")", 1)[1].split()[1] == str(pid):
                    found.append(int(entry))
        except OSError:  # not a process, or it ended meanwhile
            pass
    return found


def test_one_worker_serves_in_one_process_and_stops_cleanly(tmp_path):
    """With one worker the server process serves requests itself (no supervisor beside a forked worker), and
    SIGTERM stops it with status 0."""
    port = free_port()
    with serving(["--data", str(tmp_path / "data"), "--port", str(port)], port=port, env=_base_env(), cwd=tmp_path,
                 log=tmp_path / "serve.log") as proc:
        assert httpx.get(f"http://127.0.0.1:{port}/health").json() == {"status": "ok"}
        assert _children(proc.pid) == []
        os.killpg(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    assert _refused(port)


# -- several workers -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def multi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfServer]:
    with WharfServer(tmp_path_factory.mktemp("wharf-multi") / "data", workers=2) as srv:
        yield srv


def _many(url: str, n: int, headers: dict[str, str] | None = None) -> list[httpx.Response]:
    """``n`` GETs, 8 at a time, each on a new connection (so they spread over the workers)."""
    def one(_i: int) -> httpx.Response:
        return httpx.get(url, headers=headers, timeout=30)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def _worker_pids(srv: WharfServer) -> set[int]:
    assert srv.proc is not None
    kids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == srv.proc.pid:
                kids.add(int(entry))
    return kids


def _served_by(srv: WharfServer) -> set[str]:
    """Worker pids that have counted a request (prometheus multiprocess files)."""
    prom = srv.data / "state" / "prometheus"
    return {f.split("_", 1)[1].split(".")[0] for f in os.listdir(prom) if f.startswith("counter_")}


def test_two_workers_serve_a_consistent_index(multi, tmp_path):
    if Path("/proc/self/stat").exists():
        assert len(_worker_pids(multi)) == 2
    repo = unique("multi")
    multi.create_repo(repo)  # one worker creates it; whichever gets the upload must know it at once
    wheel = _wheel(tmp_path / "dist", "spread", "1.0")
    assert twine_upload(tmp_path, f"{multi.url}/{repo}/legacy/", [wheel], token=multi.token).ok
    for r in _many(f"{multi.url}/{repo}/simple/spread/", 50):
        assert r.status_code == 200 and wheel.name in r.text
    # a second version: no worker serves the old page afterwards
    wheel2 = _wheel(tmp_path / "dist", "spread", "2.0")
    assert twine_upload(tmp_path, f"{multi.url}/{repo}/legacy/", [wheel2], token=multi.token).ok
    for r in _many(f"{multi.url}/{repo}/simple/spread/", 50):
        assert r.status_code == 200 and wheel2.name in r.text
    # a settings change (public -> private) holds on every worker at once
    assert multi.api("PATCH", f"/api/v1/repositories/{repo}", json={"private": True}).status_code == 200
    assert {r.status_code for r in _many(f"{multi.url}/{repo}/simple/spread/", 50)} == {401}
    deadline = time.monotonic() + 10
    while len(_served_by(multi)) < 2 and time.monotonic() < deadline:
        _many(f"{multi.url}/health", 16)
    assert len(_served_by(multi)) == 2, "both workers should have served requests"


def test_token_revocation_reaches_every_worker(multi):
    repo = unique("multi")
    multi.create_repo(repo, private=True)
    secret = multi.create_token("short-lived", {repo: "read"})
    url = f"{multi.url}/{repo}/simple/"
    # every worker has verified (and cached) the token
    assert {r.status_code for r in _many(url, 40, _basic(secret))} == {200}
    tok_id = multi.api("GET", "/api/v1/whoami", token=secret).json()["token_id"]
    assert multi.api("DELETE", f"/api/v1/tokens/{tok_id}").status_code == 200
    revoked_at = time.monotonic()
    # promised: effective on every worker within 6 s (the change signal makes it immediate in practice)
    while True:
        codes = {r.status_code for r in _many(url, 24, _basic(secret))}
        elapsed = time.monotonic() - revoked_at
        if codes == {401}:
            break
        assert elapsed < 6, f"revoked token still accepted after {elapsed:.1f}s: {codes}"
    for r in _many(url, 40, _basic(secret)):
        assert r.status_code == 401
    assert multi.api("GET", "/api/v1/whoami", token=secret).status_code == 401


def test_metrics_are_aggregated_across_workers(multi):
    before = _counter(httpx.get(f"{multi.url}/metrics").text, route="health", status="200")
    _many(f"{multi.url}/health", 60)
    text = httpx.get(f"{multi.url}/metrics").text
    assert _counter(text, route="health", status="200") - before == 60
    assert len(_served_by(multi)) == 2


# -- one worker: health, metrics, web pages, logs ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfServer]:
    with WharfServer(tmp_path_factory.mktemp("wharf-ops") / "data") as s:
        yield s


def test_health_and_metrics(srv):
    r = httpx.get(f"{srv.url}/health")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json()["status"] == "ok"
    m = httpx.get(f"{srv.url}/metrics")
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    assert "# TYPE wharf_http_requests_total counter" in m.text
    assert "wharf_http_request_duration_seconds_bucket" in m.text
    before = _counter(m.text, route="health", method="GET", status="200")
    for _ in range(3):
        httpx.get(f"{srv.url}/health")
    httpx.get(f"{srv.url}/no-such-repo/simple/")
    after = httpx.get(f"{srv.url}/metrics").text
    assert _counter(after, route="health", method="GET", status="200") == before + 3
    assert _counter(after, route="unknown", status="404") >= 1


def test_web_pages(srv, tmp_path):
    pub, priv = unique("webpub"), unique("webpriv")
    srv.create_repo(pub)
    srv.create_repo(priv, private=True)
    dist = tmp_path / "dist"
    w1, w2 = _wheel(dist, "Web.Pkg", "1.0", summary="A web test"), _wheel(dist, "Web.Pkg", "1.1")
    sd = dist / "x"
    sd.mkdir()
    s1 = artifacts.make_sdist(sd, "Web.Pkg", "1.1")
    assert twine_upload(tmp_path, f"{srv.url}/{pub}/legacy/", [w1, w2, s1], token=srv.token).ok
    secret_wheel = _wheel(tmp_path / "p", "hidden-pkg", "0.1")
    assert twine_upload(tmp_path, f"{srv.url}/{priv}/legacy/", [secret_wheel], token=srv.token).ok
    with httpx.Client(base_url=srv.url) as anon:
        home = anon.get("/ui/")
        assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
        assert f"/ui/{pub}/" in home.text and priv not in home.text
        assert anon.get("/", follow_redirects=False).headers["location"] == "/ui/"
        page = anon.get(f"/ui/{pub}/")
        assert page.status_code == 200 and "/ui/%s/web-pkg/" % pub in page.text
        pkg = anon.get(f"/ui/{pub}/web-pkg/")
        assert pkg.status_code == 200
        for f in (w1, w2, s1):
            assert f.name in pkg.text
            assert "sha256:" + artifacts.digests(f)["sha256"] in pkg.text
        assert "<h2>1.0</h2>" in pkg.text and "<h2>1.1</h2>" in pkg.text and "A web test" in pkg.text
        assert pkg.text.index("<h2>1.1</h2>") < pkg.text.index("<h2>1.0</h2>")  # newest first
        # a file link from the page downloads the file
        href = re.search(r"href='([^']*%s)'" % re.escape(w1.name), pkg.text).group(1)
        assert anon.get(href).content == w1.read_bytes()
        r = anon.get(f"/ui/{pub}/Web_Pkg/", follow_redirects=False)
        assert r.status_code == 301 and r.headers["location"] == f"/ui/{pub}/web-pkg/"
        assert anon.get(f"/ui/{pub}/nope/").status_code == 404
        assert anon.get(f"/ui/{unique('nosuch')}/").status_code == 404
        # private: authentication required, Basic auth works (as in a browser)
        for path in (f"/ui/{priv}/", f"/ui/{priv}/hidden-pkg/"):
            r = anon.get(path)
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")
            assert "hidden-pkg" not in r.text
            r = anon.get(path, headers=_basic(srv.token, user="alice"))
            assert r.status_code == 200 and "hidden-pkg" in r.text
        assert priv in anon.get("/ui/", headers=_basic(srv.token)).text
        # a token for another repository does not open it; a wrong password is refused
        other = srv.create_token("other-reader", {pub: "read"})
        assert anon.get(f"/ui/{priv}/", headers=_basic(other)).status_code == 401
        assert priv not in anon.get("/ui/", headers=_basic(other)).text
        r = anon.get(f"/ui/{priv}/", headers=_basic("wharf_wrong"))
        assert r.status_code == 401 and "www-authenticate" in r.headers


def test_logs_are_json_and_carry_no_secrets(srv, tmp_path):
    repo = unique("logs")
    srv.create_repo(repo, private=True)
    # secrets travel in every way a client sends them: Basic (twine), Bearer (API), a query string
    created = srv.api("POST", "/api/v1/tokens", json={"name": "log-check", "scopes": [{"repository": repo,
                                                                                        "actions": ["write"]}]})
    assert created.status_code == 201
    secret = created.json()["token"]
    wheel = _wheel(tmp_path / "dist", "logpkg", "1.0")
    assert twine_upload(tmp_path, f"{srv.url}/{repo}/legacy/", [wheel], token=secret).ok
    bad = _wheel(tmp_path / "bad", "logpkg", "1.0", summary="other")
    assert not twine_upload(tmp_path, f"{srv.url}/{repo}/legacy/", [bad], token=secret).ok  # a logged failure
    assert twine_upload(tmp_path, f"{srv.url}/{repo}/legacy/", [wheel], token="wharf_wrong_password").output
    httpx.get(f"{srv.url}/{repo}/simple/?token={secret}", headers=_basic(secret))
    httpx.get(f"{srv.url}/ui/{repo}/", headers=_basic(secret, user="bob"))
    httpx.get(f"{srv.url}/api/v1/whoami", headers={"Authorization": "Bearer wharf_wrong_bearer"})
    httpx.get(f"{srv.url}/api/v1/whoami", headers={"Authorization": "Basic !!not-base64"})
    srv.api("DELETE", f"/api/v1/tokens/{created.json()['id']}")
    time.sleep(0.3)  # let the last access-log lines reach the file
    text = srv.log_path.read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) > 10
    docs = []
    for line in lines:
        try:
            docs.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON log line: {line!r}")
    for d in docs:
        assert {"ts", "level", "logger", "msg"} <= set(d), d
    assert any(d["logger"] == "wharf.access" and d["path"] == f"/{repo}/legacy/" for d in docs)
    assert any(d["logger"].startswith("_granian") for d in docs)  # granian's own lines, as JSON
    for s in (secret, srv.token, "wharf_wrong_password", "wharf_wrong_bearer",
              base64.b64encode(f"__token__:{secret}".encode()).decode(),
              base64.b64encode(f"bob:{secret}".encode()).decode()):
        assert s not in text, f"secret {s[:10]}... found in the server log"


def _access_paths(srv: WharfServer) -> list[str]:
    out = []
    for line in srv.log_path.read_text(errors="replace").splitlines():
        if '"logger":"wharf.access"' in line:
            out.append(json.loads(line)["path"])
    return out


def test_access_log_is_written_in_batches_and_flushed(tmp_path):
    """By default access lines are batched (one write for many requests): they reach the log within the flush
    interval without further traffic, a full buffer is written at once, and a clean shutdown writes the rest."""
    with WharfServer(tmp_path / "data", env={"WHARF_ACCESS_LOG_FLUSH": "1.5"}) as srv:
        for i in range(5):
            httpx.get(f"{srv.url}/batch-{i}/")
        assert [p for p in _access_paths(srv) if p.startswith("/batch-")] == []  # still waiting together
        deadline = time.monotonic() + 10
        while len([p for p in _access_paths(srv) if p.startswith("/batch-")]) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sorted(p for p in _access_paths(srv) if p.startswith("/batch-")) == [f"/batch-{i}/" for i in range(5)]
        long = "x" * 900
        with httpx.Client() as client:
            for i in range(100):  # ~100 KiB of lines: more than the 64 KiB buffer, written before the timer fires
                client.get(f"{srv.url}/full-{i}-{long}/")
        assert len([p for p in _access_paths(srv) if p.startswith("/full-")]) >= 50  # 64 KiB of ~1.1 KB lines
        for i in range(3):
            httpx.get(f"{srv.url}/last-{i}/")
        srv.stop()  # SIGTERM: the worker's shutdown writes what is pending
    assert len([p for p in _access_paths(srv) if p.startswith("/full-")]) == 100
    assert sorted(p for p in _access_paths(srv) if p.startswith("/last-")) == [f"/last-{i}/" for i in range(3)]
