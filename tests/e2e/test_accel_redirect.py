"""Wharf behind a real nginx that sends downloads itself (X-Accel-Redirect): the server block is the one shipped in
contrib/nginx/wharf.conf, rendered as its header says; Wharf runs with ``accel_redirect``.

pip and twine talk to nginx only. What nginx sent is checked against the file, and that nginx (not Wharf) sent it
is checked from Wharf's side: the same request with the proxy's header straight to Wharf gets an empty body and the
redirect, and without the header (a client talking to Wharf's port) the whole file."""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.support import artifacts
from tests.support.clients import pip_install, twine_upload
from tests.support.generic_curl import Curl
from tests.support.net import free_port, wait_http, with_credentials
from tests.support.server import WharfServer

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "contrib" / "nginx" / "wharf.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"  # scripts/ensure-test-tools.sh installs it
PREFIX = "/-/accel/"
PROXY_HEADER = {"X-Sendfile-Type": "X-Accel-Redirect"}



class Nginx:
    def __init__(self, workdir: Path, upstream: str, pages: Path):
        self.dir = workdir
        self.port = free_port()
        server = (TEMPLATE.read_text().replace("@LISTEN@", f"127.0.0.1:{self.port}")
                  .replace("@UPSTREAM@", upstream).replace("@PAGES@", str(pages.resolve())))
        assert re.search(r"@[A-Z]+@", server) is None, "a placeholder of the template was not replaced"
        for d in ("logs", "tmp"):
            (workdir / d).mkdir(parents=True, exist_ok=True)
        tmp = workdir / "tmp"
        # as root, nginx's workers would run as nobody, who may not enter the test's temp dirs: run them as us
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
        (workdir / "nginx.conf").write_text(f"""
{user}
daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/logs/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {workdir}/logs/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
{server}
}}
""")
        self.proc = subprocess.Popen([NGINX, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-e",
                                      str(workdir / "logs" / "error.log")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        wait_http(f"{self.url}/health", timeout=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WharfServer, Nginx]]:
    base = tmp_path_factory.mktemp("accel")
    with WharfServer(base / "data", env={"WHARF_ACCEL_REDIRECT": PREFIX}) as srv:
        nginx = Nginx(base / "nginx", f"127.0.0.1:{srv.port}", srv.data / "pages")
        try:
            yield srv, nginx
        finally:
            nginx.stop()


def _file_link(srv: WharfServer, repo: str, project: str) -> str:
    with srv.client(None) as c:
        page = c.get(f"/{repo}/simple/{project}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    assert page.status_code == 200, page.text
    url = page.json()["files"][0]["url"]
    return f"/{repo}/simple/{project}/{url}" if not url.startswith(("/", "http")) else url


def test_pip_through_nginx_gets_files_nginx_sends(stack, tmp_path):
    srv, nginx = stack
    srv.create_repo("accel")
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel = artifacts.make_wheel(dist, "accel-demo", "1.0", extra_files={"accel_demo/blob.bin": os.urandom(300_000)})
    res = twine_upload(tmp_path, f"{nginx.url}/accel/legacy/", [wheel], token=srv.token)
    assert res.ok, res
    res = pip_install(tmp_path, f"{nginx.url}/accel/simple/", "accel-demo==1.0", target=tmp_path / "t",
                      extra_args=["--retries", "0", "--timeout", "20"])
    assert res.ok, res
    assert (tmp_path / "t" / "accel_demo" / "blob.bin").is_file()

    body = wheel.read_bytes()
    sha = hashlib.sha256(body).hexdigest()
    link = httpx.URL(f"{nginx.url}/accel/simple/accel-demo/").join(_file_link(srv, "accel", "accel-demo"))
    path = link.raw_path.decode().split("#")[0]
    # Wharf itself, asked the way nginx asks: no body, the redirect to the file under the internal location
    with srv.client(None) as c:
        direct = c.get(path, headers=PROXY_HEADER)
        assert direct.status_code == 200 and direct.content == b""
        assert direct.headers["x-accel-redirect"] == f"{PREFIX}accel/files/{sha}/{wheel.name}"
        # ... and a client on Wharf's own port (no such header) still gets the file from Wharf
        plain = c.get(path)
        assert plain.status_code == 200 and plain.content == body and "x-accel-redirect" not in plain.headers
    # through nginx: the whole file, with Wharf's validators, and a Range nginx cuts itself
    with httpx.Client(base_url=nginx.url, timeout=30) as c:
        r = c.get(path)
        assert r.status_code == 200 and r.content == body
        assert r.headers["etag"] == f'"{sha}"'
        assert r.headers["content-length"] == str(len(body))
        assert "x-accel-redirect" not in r.headers
        part = c.get(path, headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206 and part.content == body[100:1100]
        assert part.headers["content-range"] == f"bytes 100-1099/{len(body)}"
        tail = c.get(path, headers={"Range": f"bytes=-{len(body) + 10}"})
        assert tail.status_code in (200, 206) and tail.content == body
        # the validators are Wharf's: If-None-Match with its ETag is a 304 (answered by Wharf, no file sent)
        assert c.get(path, headers={"If-None-Match": f'"{sha}"'}).status_code == 304
        # If-Range is judged by Wharf (nginx would compare it with an ETag of its own): a matching one gets the range
        ok = c.get(path, headers={"Range": "bytes=0-9", "If-Range": f'"{sha}"'})
        assert ok.status_code == 206 and ok.content == body[:10]
        stale = c.get(path, headers={"Range": "bytes=0-9", "If-Range": '"something-else"'})
        assert stale.status_code == 200 and stale.content == body
        # HEAD: headers only, the real length
        head = c.head(path)
        assert head.status_code == 200 and head.headers["content-length"] == str(len(body))
        # the internal location cannot be asked for directly
        assert c.get(f"{PREFIX}accel/files/{sha}/{wheel.name}").status_code == 404
        assert c.get(f"{PREFIX}accel/simple.page").status_code == 404
        # a client cannot steer nginx elsewhere with a header of its own: nginx sets it
        r = c.get(path, headers={"X-Sendfile-Type": "none"})
        assert r.status_code == 200 and r.content == body


def test_private_repository_still_needs_a_token(stack, tmp_path):
    srv, nginx = stack
    srv.create_repo("accel-private", private=True)
    dist = tmp_path / "dist"
    dist.mkdir()
    wheel = artifacts.make_wheel(dist, "secret-demo", "1.0")
    assert twine_upload(tmp_path, f"{nginx.url}/accel-private/legacy/", [wheel], token=srv.token).ok
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    with srv.client() as c:  # admin, straight to Wharf: where the file is
        page = c.get("/accel-private/simple/secret-demo/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        url = page.json()["files"][0]["url"]
    path = httpx.URL("/accel-private/simple/secret-demo/").join(url).raw_path.decode().split("#")[0]
    with httpx.Client(base_url=nginx.url, timeout=30) as c:
        anon = c.get(path)
        assert anon.status_code == 401 and sha not in anon.text
        authed = c.get(path, auth=("__token__", srv.token))
        assert authed.status_code == 200 and authed.content == wheel.read_bytes()
    # pip through nginx with the token in the index URL
    index = with_credentials(f"{nginx.url}/accel-private/simple/", "__token__", srv.token)
    res = pip_install(tmp_path, index, "secret-demo==1.0", target=tmp_path / "t",
                      extra_args=["--retries", "0", "--timeout", "20"])
    assert res.ok, res


def test_generic_files_keep_their_headers_and_odd_names_are_served_by_wharf(stack, tmp_path):
    srv, nginx = stack
    srv.create_repo("accel-files", format="generic")
    curl = Curl(tmp_path)
    auth = ("-u", f"__token__:{srv.token}")
    data = os.urandom(70_000)
    src = tmp_path / "tool.tar.gz"
    src.write_bytes(data)
    odd = tmp_path / "odd name (1).bin"
    odd.write_bytes(data[:5000])
    assert curl(*auth, "-T", src, f"{nginx.url}/accel-files/tools/1.0/tool.tar.gz").status == 201
    assert curl(*auth, "-T", odd, f"{nginx.url}/accel-files/tools/1.0/odd%20name%20%281%29.bin").status == 201
    r = curl(f"{nginx.url}/accel-files/tools/1.0/tool.tar.gz")
    assert r.status == 200 and r.body == data
    assert r.headers["x-checksum-sha256"] == hashlib.sha256(data).hexdigest()
    assert r.headers["x-checksum-sha1"] == hashlib.sha1(data).hexdigest()
    assert r.headers["x-content-type-options"] == "nosniff"
    with srv.client(None) as c:
        direct = c.get("/accel-files/tools/1.0/tool.tar.gz", headers=PROXY_HEADER)
        assert direct.content == b"" and direct.headers["x-accel-redirect"].startswith(PREFIX + "accel-files/files/")
        # a name with a space and parentheses is not handed to nginx (which would read the URI its own way)
        odd_direct = c.get("/accel-files/tools/1.0/odd%20name%20%281%29.bin", headers=PROXY_HEADER)
        assert odd_direct.content == data[:5000] and "x-accel-redirect" not in odd_direct.headers
    r = curl(f"{nginx.url}/accel-files/tools/1.0/odd%20name%20%281%29.bin")
    assert r.status == 200 and r.body == data[:5000]
