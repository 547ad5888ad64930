"""The ASGI application: one dispatcher in front of the management API, the UI and every repository's protocol."""

from __future__ import annotations

import logging
import time
from typing import Any

import anyio

from .asgi import MEMO_SLOT, HTTPError, Receive, ResponseMemo, Scope, Send, header, send_bytes, send_error, send_json, send_redirect
from .config import Settings, load_settings
from .core.access import ClientAddress
from .core.auth import credentials_from_header
from .core.errors import WharfError
from .core.interfaces import RequestContext
from .core.quarantine import REQUEST_REPO
from .core.services import Core
from .observability import AccessLog, Metrics

__all__ = ["WharfApp", "create_app"]

log = logging.getLogger("wharf.app")


class WharfApp:
    def __init__(self, core: Core):
        self.core = core
        self.metrics = Metrics()
        # the management API (FastAPI) and the browser pages (Starlette) are built on their first request: a server
        # that only answers package clients never loads them
        self._api: Any = None
        self._web: Any = None
        self.handlers = {name: plugin.handler(core) for name, plugin in core.plugins.items()}
        self.client_address = ClientAddress(core.settings.trusted_proxies)
        self.access_log = AccessLog(flush_seconds=core.settings.access_log_flush) if core.settings.access_log else None
        self.worker: Any = None  # background tasks (started with the server, see _lifespan)
        self._base_urls: dict[tuple[str, bytes], str] = {}
        # whole answers to plain anonymous GETs of published pages, kept while nothing changed (asgi.ResponseMemo)
        self.memo = ResponseMemo()
        self._signals = (core.signal, core.pages)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            return
        if self.client_address.enabled:  # behind trusted proxies: every layer below sees the real client
            peer = scope.get("client") or (None, 0)
            scope["client"] = (self.client_address.resolve(peer[0], header(scope, b"x-forwarded-for")), peer[1])
        start = time.perf_counter()
        if scope["method"] == "GET":
            signal, pages = self._signals
            hit = self.memo.lookup(scope, (signal.current(), pages.generation()))
            if hit is not None:
                await send(hit[2])
                await send(hit[3])
                return self._finish(scope, hit[4], hit[1], start)
        status = [0]
        route = ["other"]

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._dispatch(scope, receive, send_wrapper, route)
        except Exception:  # pragma: no cover - last resort: never leave a client hanging
            log.exception("unhandled error", extra={"fields": {"path": scope.get("path")}})
            if status[0] == 0:
                await send_error(send_wrapper, 500, "internal server error (logged)")
        finally:
            self._finish(scope, route[0], status[0], start)

    def _finish(self, scope: Scope, route: str, status: int, start: float) -> None:
        elapsed = time.perf_counter() - start
        self.metrics.observe(route, scope["method"], status, elapsed)
        if self.access_log is not None:
            client = scope.get("client")
            self.access_log.write(scope["method"], scope["path"], status, elapsed * 1000, client[0] if client else None,
                                  (header(scope, b"user-agent") or b"").decode("latin-1")[:200], route)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send, route: list[str]) -> None:
        path: str = scope["path"]
        first, _, rest = path[1:].partition("/")
        core = self.core
        core.refresh()
        if first in ("api", "-"):  # "-": server-wide protocol APIs served by the API app (e.g. /-/osv/v1/query)
            route[0] = "api"
            if self._api is None:
                from .api import build_api

                self._api = build_api(core, self.metrics)
            return await self._api(scope, receive, send)
        if first == "health":
            route[0] = "health"
            return await send_json(send, 200, {"status": "ok"})
        if first == "metrics":
            route[0] = "metrics"
            return await send_bytes(send, 200, self.metrics.render(), b"text/plain; version=0.0.4")
        if first in ("ui", "static", "") or first == "favicon.ico":
            route[0] = "ui"
            if first == "":
                return await send_redirect(send, "/ui/", 302)
            if self._web is None:
                from .web import build_web

                self._web = build_web(core)
            return await self._web(scope, receive, send)
        repo = core.repos.get(first)
        if repo is None:
            route[0] = "unknown"
            return await send_error(send, 404, f"no repository named '{first}'")
        route[0] = repo.format
        REQUEST_REPO.set(repo)  # downloads through a group check quarantine in its members
        body = None if scope["method"] in ("GET", "HEAD") else _BodyState(scope, receive)  # (no body to track)
        try:
            principal = None
            secret = credentials_from_header(header(scope, b"authorization"))
            if secret is not None:
                principal = core.tokens.authenticate(secret)
            ctx = RequestContext(repo, principal, self._base_url(scope), (scope.get("client") or (None,))[0])
            if repo.access is not None or repo.kind == "group" or (principal is not None and principal.entitlement):
                self._guard(ctx, scope)
            if principal is not None or repo.access is not None or rest[:1] == "~":
                scope.pop(MEMO_SLOT, None)  # only what every anonymous client is given alike is remembered
            if rest[:1] == "~":  # a read-only view of a version or named snapshot: /<repo>/~<label>/...
                ctx.repo, rest = await core.snapshots.open_view(ctx, scope["method"], rest)
            await self.handlers[repo.format](ctx, scope, receive if body is None else body.receive, send, rest)
        except (WharfError, HTTPError) as exc:
            if exc.reason and scope["method"] in ("POST", "PUT") and exc.status < 500:  # a rejected upload
                self.metrics.uploads_failed.labels(exc.reason).inc()
            headers = list(getattr(exc, "headers", None) or []) + self._auth_headers(exc.status)
            if body is not None and not await body.drain():
                # the client is still sending a body we will not read: the connection cannot be reused
                headers.append((b"connection", b"close"))
            await send_error(send, exc.status, exc.message, headers)

    def _guard(self, ctx: RequestContext, scope: Scope) -> None:
        """Address allowlists before any route runs (reads through a group pass every member's read list too), and
        the download scope of an entitlement token (checked and counted where files are sent)."""
        addr, repo = ctx.remote_addr, ctx.repo
        read = scope["method"] in ("GET", "HEAD")
        if read and repo.access is not None:
            repo.access.check("read", addr, repo.name)
        members = self.core.members(repo) if repo.kind == "group" else ()
        if read:
            for member in members:
                if member.access is not None:
                    member.access.check("read", addr, member.name)
        if ctx.principal is not None and ctx.principal.entitlement:
            scope["wharf.entitlement"] = ctx.principal

    @staticmethod
    def _auth_headers(status: int) -> list[tuple[bytes, bytes]]:
        return [(b"www-authenticate", b'Basic realm="wharf"')] if status == 401 else []

    def _base_url(self, scope: Scope) -> str:
        public = self.core.settings.public_url
        if public:
            return public.rstrip("/")
        key = (scope.get("scheme", "http"), header(scope, b"host") or b"localhost")
        url = self._base_urls.get(key)
        if url is None:
            url = f"{key[0]}://{key[1].decode('latin-1')}"
            if len(self._base_urls) < 256:  # (Host is the client's to choose: remember a few)
                self._base_urls[key] = url
        return url

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.core.settings.worker:
                    from .tasks import Worker
                    from .tasks.helper import HelperProcess

                    settings = self.core.settings
                    self.worker = Worker(self.core, poll=settings.worker_poll,
                                         helper=HelperProcess(settings) if settings.task_helper else None)
                    self.worker.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.worker is not None:
                    await anyio.to_thread.run_sync(self.worker.stop)
                if self.access_log is not None:
                    self.access_log.flush()
                self.core.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(settings: Settings | None = None) -> WharfApp:
    """Application factory (used by ``wharf serve`` workers and by tests)."""
    from .observability import setup_logging

    settings = settings or load_settings()
    setup_logging(settings.log_level)
    return WharfApp(Core(settings))


class _BodyState:
    """Tracks whether a request body was read to its end, so an early error can leave the connection reusable."""

    _DRAIN_LIMIT = 1024 * 1024

    def __init__(self, scope: Scope, receive: Receive):
        self._receive = receive
        self.done = scope["method"] in ("GET", "HEAD")
        length = header(scope, b"content-length")
        self._declared = int(length) if length is not None and length.isdigit() else None

    async def receive(self) -> Any:
        message = await self._receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.done = True
        return message

    async def drain(self) -> bool:
        """Read and drop what is left of a small body, for at most a second; False if it is too big, too slow,
        or the client left."""
        if self.done:
            return True
        if self._declared is not None and self._declared > self._DRAIN_LIMIT:
            return False
        read = 0
        with anyio.move_on_after(1.0):
            while not self.done:
                message = await self.receive()
                if message["type"] != "http.request":
                    return False
                read += len(message.get("body", b""))
                if read > self._DRAIN_LIMIT:
                    return False
        return self.done
