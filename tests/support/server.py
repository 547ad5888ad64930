"""A real Wharf server process for tests (``wharf serve`` on a free loopback port)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx

from .net import free_port, wait_http

__all__ = ["WharfServer", "WHARF_BIN", "backend_server"]

WHARF_BIN = str(Path(sys.executable).with_name("wharf"))


class WharfServer:
    """Starts ``wharf serve`` with a bootstrap admin token. Use as a context manager or call start()/stop()."""

    def __init__(self, data: Path, *, database_url: str | None = None, token: str = "wharf_test_admin_token",
                 workers: int = 1, extra_args: list[str] | None = None, env: dict[str, str] | None = None,
                 tls: tuple[Path, Path] | None = None, ca_bundle: Path | None = None):
        self.data = Path(data)
        self.database_url = database_url
        self.token = token
        self.workers = workers
        self.extra_args = extra_args or []
        self.extra_env = env or {}
        self.tls = tls
        self.ca_bundle = ca_bundle
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data.parent / f"{self.data.name}-server.log"

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        host = "localhost" if self.tls else "127.0.0.1"
        return f"{scheme}://{host}:{self.port}"

    def start(self) -> "WharfServer":
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WHARF_", "PIP_", "UV_"))}
        # tests read the access log right after their requests: one write per line unless a test asks otherwise
        env.update({"WHARF_BOOTSTRAP_TOKEN": self.token, "WHARF_ACCESS_LOG_FLUSH": "0", **self.extra_env})
        if self.database_url:
            env["WHARF_DATABASE_URL"] = self.database_url
        args = [WHARF_BIN, "serve", "--data", str(self.data), "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(self.workers), *self.extra_args]
        if self.tls:
            args += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            ctx = None
            if self.tls:
                import ssl
                ctx = ssl.create_default_context(cafile=str(self.ca_bundle)) if self.ca_bundle else None
            wait_http(self.url + "/health", timeout=60, ssl_context=ctx)
        except Exception:
            self.stop()
            raise RuntimeError(f"server did not start; log:\n{self.log()}")
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except FileNotFoundError:
            return ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the whole process group (server and workers), as a crash would."""
        self.stop(signal.SIGKILL)

    def __enter__(self) -> "WharfServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- API helpers ---------------------------------------------------------------------------------------------
    def client(self, token: str | None = "admin", **kw: Any) -> httpx.Client:
        secret = self.token if token == "admin" else token
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        import ssl

        verify: Any = ssl.create_default_context(cafile=str(self.ca_bundle)) if self.ca_bundle else True
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, verify=verify, **kw)

    def api(self, method: str, path: str, token: str | None = "admin", **kw: Any) -> httpx.Response:
        with self.client(token) as c:
            return c.request(method, path, **kw)

    def create_repo(self, name: str, *, format: str = "python", private: bool = False, **config: Any) -> dict[str, Any]:
        r = self.api("POST", "/api/v1/repositories", json={"name": name, "format": format, "private": private,
                                                          "config": config})
        assert r.status_code == 201, f"{r.text}\nserver log:\n{self.log()[-3000:] if r.status_code >= 500 else ''}"
        return r.json()  # type: ignore[no-any-return]

    def create_token(self, name: str, scopes: dict[str, list[str] | str], **kw: Any) -> str:
        body = {"name": name, "scopes": [{"repository": r, "actions": [a] if isinstance(a, str) else a}
                                         for r, a in scopes.items()], **kw}
        r = self.api("POST", "/api/v1/tokens", json=body)
        assert r.status_code == 201, f"{r.text}\nserver log:\n{self.log()[-3000:] if r.status_code >= 500 else ''}"
        return r.json()["token"]  # type: ignore[no-any-return]


@contextmanager
def backend_server(request: Any, tmp_path_factory: Any, label: str, **kw: Any) -> Iterator[WharfServer]:
    """A running server on the database backend a fixture's ``request.param`` names: "sqlite" (in its data
    directory) or "postgres" (a new database of the session's PostgreSQL, fixture ``postgres``); ``backend`` tells
    which. ``kw`` goes to WharfServer (e.g. ``env``)."""
    url = request.getfixturevalue("postgres").create_database() if request.param == "postgres" else None
    data = tmp_path_factory.mktemp(f"{label}-{request.param}") / "data"
    with WharfServer(data, database_url=url, **kw) as srv:
        srv.backend = request.param  # type: ignore[attr-defined]
        yield srv
