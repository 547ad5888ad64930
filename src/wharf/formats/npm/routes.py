"""The npm registry protocol under ``/<repo>/``: packuments, tarballs, publish, dist-tags, deprecate, unpublish,
whoami, login, audit.

Errors are answered as npm shows them: JSON ``{"error": "..."}`` with the status (core's error shape).
"""

from __future__ import annotations

import gzip
import json
import logging
from typing import TYPE_CHECKING

import anyio.to_thread

from ...asgi import HTTPError, Receive, Scope, Send, etag_matches, header, send_bytes, send_json
from ...core.errors import Forbidden, Unauthorized, WharfError
from ...core.interfaces import RequestContext
from . import parse
from .index import localize, packument_key, page_files

if TYPE_CHECKING:  # pragma: no cover
    from ...core.pages import Page
    from ...core.services import Core

__all__ = ["NpmRoutes", "wants_abbreviated", "read_body", "split_package_path"]

log = logging.getLogger("wharf.npm")

ABBR_TYPE = b"application/vnd.npm.install-v1+json"
JSON_TYPE = b"application/json"
_VARY = (b"vary", b"Accept, Accept-Encoding")
_PACKUMENT_CACHE = (b"cache-control", b"max-age=60, public")
_JSON_BODY_LIMIT = 1024 * 1024  # non-publish request bodies (dist-tags, deprecate, login, audit)
_EMPTY_QUICK_AUDIT = {
    "actions": [], "advisories": {}, "muted": [],
    "metadata": {"vulnerabilities": {"info": 0, "low": 0, "moderate": 0, "high": 0, "critical": 0},
                 "dependencies": 0, "devDependencies": 0, "optionalDependencies": 0, "totalDependencies": 0},
}


def wants_abbreviated(accept: bytes | None) -> bool:
    return bool(accept) and ABBR_TYPE in accept  # type: ignore[operator]


def split_package_path(subpath: str) -> tuple[str, list[str]]:
    """``@acme/pkg/-/pkg-1.0.0.tgz`` -> ("@acme/pkg", ["-", "pkg-1.0.0.tgz"]) (the path is already %-decoded)."""
    parts = subpath.split("/")
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    n = 2 if parts[0].startswith("@") and len(parts) >= 2 else 1
    return "/".join(parts[:n]), parts[n:]


class NpmRoutes:
    def __init__(self, core: "Core"):
        from .group import NpmGroup
        from .proxy import NpmProxy

        self.core = core
        self.proxy = NpmProxy(core)
        self.group = NpmGroup(core, self.proxy)

    async def __call__(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send, subpath: str) -> None:
        method = scope["method"]
        if subpath.startswith("-/"):
            return await self.special(ctx, scope, receive, send, subpath[2:])
        if subpath == "":
            ctx.require("read")
            return await send_json(send, 200, {"db_name": ctx.repo.name, "format": "npm", "kind": ctx.repo.kind})
        name, rest = split_package_path(subpath)
        if not rest:
            if method in ("GET", "HEAD"):
                ctx.require("read")
                return await self.packument(ctx, scope, send, name)
            if method == "PUT":
                return await self.put_package(ctx, scope, receive, send, name)
            raise _method(method, "GET, HEAD, PUT")
        if rest[0] == "-rev" and len(rest) == 2:
            if method == "PUT":
                return await self.put_package(ctx, scope, receive, send, name)
            if method == "DELETE":
                return await self.unpublish_all(ctx, send, name)
            raise _method(method, "PUT, DELETE")
        if rest[0] == "-" and len(rest) == 2:
            if method not in ("GET", "HEAD"):
                raise _method(method, "GET, HEAD")
            ctx.require("read")
            return await self.tarball(ctx, scope, send, name, rest[1])
        if rest[0] == "-" and len(rest) == 4 and rest[2] == "-rev":
            if method != "DELETE":
                raise _method(method, "DELETE")
            return await self.delete_tarball(ctx, send, name, rest[1])
        if len(rest) == 1 and method in ("GET", "HEAD"):
            ctx.require("read")
            return await self.version_document(ctx, scope, send, name, rest[0])
        raise HTTPError(404, f"not found in npm repository '{ctx.repo.name}': /{subpath}")

    # -- packuments (hot path) --------------------------------------------------------------------------------
    async def find_packument(self, ctx: RequestContext, name: str) -> "Page | None":
        repo = ctx.repo
        if repo.kind == "proxy":
            return await self.proxy.packument(repo, name)
        if repo.kind == "group":
            return await self.group.packument(repo, name)
        return self.core.pages.read(repo.name, packument_key(name))

    async def packument(self, ctx: RequestContext, scope: Scope, send: Send, name: str) -> None:
        page = await self.find_packument(ctx, name)
        if page is None:
            raise HTTPError(404, f"package '{name}' not found in repository '{ctx.repo.name}'"
                            + (" nor on its upstream" if ctx.repo.kind == "proxy" else ""))
        abbr = wants_abbreviated(header(scope, b"accept")) and "abbr" in page.variants
        etag, body = page.variants["abbr" if abbr else "full"]
        etag, body = localize(etag, body, ctx.repo_url.encode())
        headers = [(b"etag", etag), _VARY, _PACKUMENT_CACHE]
        if etag_matches(scope, etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send_bytes(send, 200, body, ABBR_TYPE if abbr else JSON_TYPE, headers, head=scope["method"] == "HEAD")

    async def version_document(self, ctx: RequestContext, scope: Scope, send: Send, name: str, spec: str) -> None:
        """``GET /<name>/<version|tag>``: one version object (what `npm view name@1.0.0` style tools read)."""
        page = await self.find_packument(ctx, name)
        if page is None:
            raise HTTPError(404, f"package '{name}' not found in repository '{ctx.repo.name}'")
        _etag, body = localize(*page.variants["full"], ctx.repo_url.encode())
        doc = json.loads(body)
        version = doc.get("dist-tags", {}).get(spec, spec)
        obj = doc.get("versions", {}).get(version)
        if obj is None:
            raise HTTPError(404, f"version or tag '{spec}' of '{name}' not found in repository '{ctx.repo.name}'")
        await send_json(send, 200, obj, [_PACKUMENT_CACHE], head=scope["method"] == "HEAD")

    # -- tarballs (hot path) ----------------------------------------------------------------------------------
    async def tarball(self, ctx: RequestContext, scope: Scope, send: Send, name: str, filename: str) -> None:
        from ...core.published import send_published

        repo = ctx.repo
        if repo.kind == "proxy":
            return await self.proxy.tarball(repo, name, filename, scope, send)
        if repo.kind == "group":
            return await self.group.tarball(repo, name, filename, scope, send)
        sha = page_files(self.core.pages.read(repo.name, packument_key(name))).get(filename)
        if sha is None:  # not listed (deleted, or withheld: then the miss path answers 403 with the reason)
            sha = await anyio.to_thread.run_sync(self.core.content.live_sha256, repo.id, f"{name}/-/{filename}")
        if sha is None or not await send_published(self.core, repo.name, sha, filename, scope, send,
                                                   content_type=b"application/octet-stream"):
            raise HTTPError(404, f"tarball '{filename}' of '{name}' not found in repository '{repo.name}'")

    # -- writes -----------------------------------------------------------------------------------------------
    def write_target(self, ctx: RequestContext) -> RequestContext:
        """Where a write goes: a hosted repository itself, or a group's default_member; proxies are read-only."""
        repo = ctx.repo
        if repo.kind == "hosted":
            ctx.require("write")
            return ctx
        target = repo.config.get("default_member") if repo.kind == "group" else None
        member = self.core.repos.get(target) if target else None
        if member is None:
            ctx.require("read")
            raise HTTPError(405, f"repository '{repo.name}' is a read-only {repo.kind} repository; publish to a "
                                 "hosted repository" + (" (or give the group a default_member)" if repo.kind == "group" else ""),
                            [(b"allow", b"GET, HEAD")])
        member_ctx = RequestContext(member, ctx.principal, ctx.base_url, ctx.remote_addr)
        member_ctx.require("write")
        return member_ctx

    def require_unpublish(self, ctx: RequestContext) -> None:
        """The repository's unpublish rule (setting ``unpublish``): "admin" (default), "write" or "never"."""
        rule = ctx.repo.config.get("unpublish", "admin")
        if rule == "never":
            raise Forbidden(f"repository '{ctx.repo.name}' does not allow unpublishing (its 'unpublish' setting "
                            "is 'never'); deprecate the version instead")
        ctx.require(rule)

    async def put_package(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        target = self.write_target(ctx)
        valid_name(name)
        limit = int(target.repo.setting("max_upload_size", self.core.settings.max_upload_size))
        # base64 makes the tarball 4/3 larger; the rest of the document is small
        body = await read_body(scope, receive, limit * 4 // 3 + 4 * 1024 * 1024, limit)
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise HTTPError(400, "the request body is not valid JSON", reason="bad-json")
        del body
        if not isinstance(doc, dict):
            raise HTTPError(400, "the request body must be a JSON object (a package document)", reason="bad-json")
        if doc.get("_attachments"):
            from .publish import publish_version

            result = await anyio.to_thread.run_sync(publish_version, self.core, target, name, doc, limit)
            return await send_json(send, 201, result)
        from .publish import update_metadata

        result = await anyio.to_thread.run_sync(update_metadata, self.core, target, name, doc,
                                                lambda: self.require_unpublish(target))
        await send_json(send, 200, result)

    async def unpublish_all(self, ctx: RequestContext, send: Send, name: str) -> None:
        target = self.write_target(ctx)
        valid_name(name)
        self.require_unpublish(target)
        from .publish import unpublish_package

        await anyio.to_thread.run_sync(unpublish_package, self.core, target, name)
        await send_json(send, 200, {"ok": True, "id": name})

    async def delete_tarball(self, ctx: RequestContext, send: Send, name: str, filename: str) -> None:
        target = self.write_target(ctx)
        self.require_unpublish(target)
        from .publish import delete_tarball

        await anyio.to_thread.run_sync(delete_tarball, self.core, target, name, filename)
        await send_json(send, 200, {"ok": True})

    # -- /-/ endpoints -----------------------------------------------------------------------------------------
    async def special(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send, rest: str) -> None:
        method = scope["method"]
        if rest == "whoami":
            if ctx.principal is None:
                raise Unauthorized("not logged in: npm needs a Wharf token (npm login, or _authToken in .npmrc)")
            ctx.require("read")
            return await send_json(send, 200, {"username": ctx.principal.name})
        if rest == "ping":
            ctx.require("read")
            return await send_json(send, 200, {})
        if rest.startswith("package/"):
            name, tail = split_package_path(rest[len("package/"):])
            if tail[:1] == ["dist-tags"] and len(tail) <= 2:
                return await self.dist_tags(ctx, scope, receive, send, name, tail[1] if len(tail) == 2 else None)
            raise HTTPError(404, f"not found: /-/{rest}")
        if rest == "v1/login" and method == "POST":
            await read_body(scope, receive, _JSON_BODY_LIMIT)
            # no browser flow here: npm then falls back to the username/password prompt (couchdb login)
            raise HTTPError(404, "web login is not offered by Wharf: log in with your Wharf token as the password "
                                 "(npm login --auth-type=legacy), or put it in .npmrc as _authToken")
        if rest.startswith("user/org.couchdb.user:"):
            if method != "PUT":
                raise _method(method, "PUT")
            return await self.couch_login(ctx, scope, receive, send, rest[len("user/org.couchdb.user:"):])
        if rest.startswith("user/token/") and method == "DELETE":
            # npm logout: Wharf tokens are revoked through the management API, not by a client logging out
            ctx.require("read")
            return await send_json(send, 200, {"ok": True})
        if rest in ("npm/v1/security/advisories/bulk", "npm/v1/security/audits/quick", "npm/v1/security/audits"):
            if method != "POST":
                raise _method(method, "POST")
            ctx.require("read")
            body = await read_body(scope, receive, 64 * 1024 * 1024)
            if not rest.endswith("bulk"):  # the old quick-audit shape: npm uses it only when bulk fails
                return await send_json(send, 200, _EMPTY_QUICK_AUDIT)
            try:
                if body[:2] == b"\x1f\x8b":  # npm gzips the bulk request (with or without Content-Encoding)
                    body = gzip.decompress(body)
                request = json.loads(body or b"{}")
            except (OSError, ValueError, EOFError):
                raise HTTPError(400, "the audit request is not (gzipped) JSON")
            from .audit import bulk_advisories

            answer = await anyio.to_thread.run_sync(lambda: bulk_advisories(self.core, ctx.base_url, request))
            return await send_json(send, 200, answer)
        if rest == "v1/search":
            ctx.require("read")
            return await send_json(send, 200, {"objects": [], "total": 0, "time": ""})
        raise HTTPError(404, f"not found in npm repository '{ctx.repo.name}': /-/{rest}")

    async def couch_login(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send, user: str) -> None:
        """``npm login`` (legacy/couchdb flow): the password must be a Wharf token; it is returned as the token."""
        body = await read_body(scope, receive, _JSON_BODY_LIMIT)
        try:
            doc = json.loads(body)
            password = doc.get("password") if isinstance(doc, dict) else None
        except (ValueError, UnicodeDecodeError):
            password = None
        if not isinstance(password, str) or not password:
            raise Unauthorized("log in with a Wharf token as the password")
        try:
            principal = self.core.tokens.authenticate(password)
        except WharfError:
            raise Unauthorized("the password is not a valid Wharf token (create one with `wharf token create`)")
        login_ctx = RequestContext(ctx.repo, principal, ctx.base_url, ctx.remote_addr)
        if ctx.repo.private or not principal.can("read", ctx.repo.base):
            login_ctx.require("read")
        await send_json(send, 201, {"ok": True, "id": f"org.couchdb.user:{user}", "token": password,
                                    "username": principal.name})

    async def dist_tags(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send, name: str,
                        tag: str | None) -> None:
        method = scope["method"]
        if method in ("GET", "HEAD"):
            ctx.require("read")
            page = await self.find_packument(ctx, name)
            if page is None:
                raise HTTPError(404, f"package '{name}' not found in repository '{ctx.repo.name}'")
            doc = json.loads(page.variants["abbr"][1])
            tags = doc.get("dist-tags", {})
            if tag is not None:
                if tag not in tags:
                    raise HTTPError(404, f"'{name}' has no dist-tag '{tag}'")
                return await send_json(send, 200, tags[tag])
            return await send_json(send, 200, tags)
        if method not in ("PUT", "POST", "DELETE") or (tag is None and method != "POST"):
            raise _method(method, "GET, PUT, DELETE")
        target = self.write_target(ctx)
        valid_name(name)
        body = await read_body(scope, receive, _JSON_BODY_LIMIT)
        from .publish import set_dist_tags

        if method == "DELETE":
            changes: dict[str, str | None] = {tag: None}  # type: ignore[dict-item]
        else:
            try:
                value = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise HTTPError(400, "the body must be a JSON string (the version) or an object of tags")
            if tag is not None:
                changes = {tag: value}
            elif isinstance(value, dict):
                changes = value
            else:
                raise HTTPError(400, "POST /-/package/<name>/dist-tags takes an object {tag: version}")
        tags = await anyio.to_thread.run_sync(set_dist_tags, self.core, target, name, changes)
        await send_json(send, 200 if method != "PUT" else 201, tags)


def valid_name(name: str) -> str:
    """A package name from a write's URL, or 400 (reads of an invalid name are simply 404)."""
    try:
        return parse.check_name(name, new=False)
    except parse.InvalidPackage as exc:
        raise HTTPError(400, exc.message, reason=exc.reason)


def _method(method: str, allowed: str) -> HTTPError:
    return HTTPError(405, f"method {method} not allowed here", [(b"allow", allowed.encode())])


async def read_body(scope: Scope, receive: Receive, limit: int, shown_limit: int | None = None) -> bytes:
    """The whole request body, or 413 past ``limit`` bytes (checked on Content-Length first)."""
    shown = shown_limit if shown_limit is not None else limit
    too_large = HTTPError(413, f"request too large: the limit is {_size(shown)}"
                               + (" for the tarball" if shown_limit is not None else ""), reason="too-large")
    length = header(scope, b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise HTTPError(400, "the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    if header(scope, b"content-encoding") == b"gzip":
        import gzip
        import zlib

        try:
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            body = d.decompress(body, limit + 1)
            if len(body) > limit or d.unconsumed_tail:
                raise too_large
        except (zlib.error, gzip.BadGzipFile):
            raise HTTPError(400, "the request body is not valid gzip")
    return body


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB ({n} bytes)" if n >= 1024 * 1024 else f"{n} bytes"

