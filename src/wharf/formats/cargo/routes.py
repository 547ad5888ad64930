"""The cargo protocol under ``/<repo>/``: sparse index (``index/``) and the registry web API (``api/v1/crates``).

Errors are answered in cargo's shape ``{"errors":[{"detail": "..."}]}`` (cargo prints the detail).
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import anyio
import anyio.to_thread

from ...asgi import HTTPError, Receive, Scope, Send, etag_matches, header, send_bytes, send_json
from ...core.content import NewArtifact
from ...core.errors import FileExists, FileWasDeleted, Forbidden, NotFound, WharfError
from ...core.interfaces import RequestContext
from ...storage import BlobTooLarge
from . import parse
from .index import crate_filename, lookup_version, page_key
from .parse import InvalidCrate, normalize_name, parse_semver, semver_key

if TYPE_CHECKING:  # pragma: no cover
    from ...core.pages import Page
    from ...core.services import Core

__all__ = ["CargoRoutes", "cargo_error"]

log = logging.getLogger("wharf.cargo")

TEXT = b"text/plain; charset=utf-8"
_INDEX_CACHE = (b"cache-control", b"no-cache")
_WARNINGS = {"warnings": {"invalid_categories": [], "invalid_badges": [], "other": []}}
_LOGIN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,99}")
_MAX_OWNER_BODY = 64 * 1024
_DRAIN_LIMIT = 1024 * 1024


async def cargo_error(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send_json(send, status, {"errors": [{"detail": detail}]}, headers)


class _Body:
    """The request body as it is read, so an error answered early can drain it (or close the connection)."""

    def __init__(self, scope: Scope, receive: Receive):
        self._receive = receive
        self.done = scope["method"] in ("GET", "HEAD")
        length = header(scope, b"content-length")
        self.declared = int(length) if length is not None and length.isdigit() else None

    async def chunks(self):  # type: ignore[no-untyped-def]
        while not self.done:
            message = await self._receive()
            if message["type"] != "http.request":
                self.done = True
                raise HTTPError(400, "the client went away before the request body ended")
            if not message.get("more_body", False):
                self.done = True
            yield message.get("body", b"")

    async def read(self, limit: int) -> bytes:
        out = bytearray()
        async for chunk in self.chunks():
            out += chunk
            if len(out) > limit:
                raise HTTPError(413, f"the request body is larger than {limit} bytes")
        return bytes(out)

    async def drain(self) -> bool:
        if self.done:
            return True
        if self.declared is not None and self.declared > _DRAIN_LIMIT:
            return False
        read = 0
        with anyio.move_on_after(1.0):
            async for chunk in self.chunks():
                read += len(chunk)
                if read > _DRAIN_LIMIT:
                    return False
        return self.done


class CargoRoutes:
    def __init__(self, core: "Core"):
        from .group import CargoGroup
        from .proxy import CargoProxy

        self.core = core
        self.proxy = CargoProxy(core)
        self.group = CargoGroup(core, self.proxy)
        self._configs: dict[tuple[str, bool], bytes] = {}

    async def __call__(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send, subpath: str) -> None:
        if subpath.startswith("index/") and scope["method"] in ("GET", "HEAD"):
            # hot path: index files and config.json answer with one send_bytes after every check, no body to read
            try:
                ctx.require("read")
                if subpath == "index/config.json":
                    return await self.config(ctx, scope, send)
                return await self.index_file(ctx, scope, send, subpath[6:])
            except (WharfError, HTTPError) as exc:
                return await cargo_error(send, exc.status, exc.message, _auth_header(ctx, exc.status))
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        body = _Body(scope, receive)
        try:
            await self._route(ctx, scope, body, tracking_send, subpath)
        except (WharfError, HTTPError, InvalidCrate) as exc:
            if started:  # pragma: no cover - an error after the response began: nothing sensible to add
                raise
            status = getattr(exc, "status", 400)
            headers = list(getattr(exc, "headers", None) or []) + _auth_header(ctx, status)
            if not await body.drain():
                headers.append((b"connection", b"close"))
            await cargo_error(send, status, exc.message, headers)

    async def _route(self, ctx: RequestContext, scope: Scope, body: _Body, send: Send, subpath: str) -> None:
        method = scope["method"]
        if subpath.startswith("index/"):
            ctx.require("read")
            _only(method, ("GET", "HEAD"))
            rest = subpath[6:]
            if rest == "config.json":
                return await self.config(ctx, scope, send)
            return await self.index_file(ctx, scope, send, rest)
        if subpath == "api/v1/crates/new":
            _only(method, ("PUT",))
            return await self.publish(self._writable(ctx), scope, body, send)
        if subpath == "api/v1/crates":
            ctx.require("read")
            _only(method, ("GET", "HEAD"))
            return await self.search(ctx, scope, send)
        if subpath.startswith("api/v1/crates/"):
            parts = subpath[len("api/v1/crates/"):].split("/")
            if len(parts) == 2 and parts[1] == "owners":
                return await self.owners(ctx, scope, body, send, parts[0])
            if len(parts) == 3 and parts[2] == "download":
                ctx.require("read")
                _only(method, ("GET", "HEAD"))
                return await self.download(ctx, scope, send, parts[0], parts[1])
            if len(parts) == 3 and parts[2] in ("yank", "unyank"):
                _only(method, ("DELETE",) if parts[2] == "yank" else ("PUT",))
                return await self.yank(self._writable(ctx), send, parts[0], parts[1], parts[2] == "yank")
        if subpath == "":
            ctx.require("read")
            return await send_bytes(send, 200, f"Cargo registry '{ctx.repo.name}': index at {ctx.repo_url}/index/\n"
                                    .encode(), TEXT)
        raise HTTPError(404, f"not found in cargo repository '{ctx.repo.name}': /{subpath}")

    def _writable(self, ctx: RequestContext) -> RequestContext:
        """The hosted repository a write goes to: this one, or a group's default_member. Checks write access."""
        repo = ctx.repo
        if repo.kind != "hosted":
            target = repo.config.get("default_member") if repo.kind == "group" else None
            member = self.core.repos.get(target) if target else None
            if member is None:
                raise HTTPError(405, f"repository '{repo.name}' is a read-only {repo.kind} repository; publish to a "
                                     "hosted repository" + (" (or give the group a default_member)"
                                                            if repo.kind == "group" else ""))
            ctx = RequestContext(member, ctx.principal, ctx.base_url, ctx.remote_addr)
        ctx.require("write")
        return ctx

    # -- index (hot path) ----------------------------------------------------------------------------------------
    async def config(self, ctx: RequestContext, scope: Scope, send: Send) -> None:
        key = (ctx.repo_url, ctx.repo.private)
        body = self._configs.get(key)
        if body is None:
            doc: dict[str, Any] = {"dl": f"{ctx.repo_url}/api/v1/crates", "api": ctx.repo_url}
            if ctx.repo.private:
                doc["auth-required"] = True
            body = json.dumps(doc, separators=(",", ":")).encode()
            if len(self._configs) > 256:
                self._configs.clear()
            self._configs[key] = body
        await send_bytes(send, 200, body, b"application/json", [_INDEX_CACHE], head=scope["method"] == "HEAD")

    async def index_file(self, ctx: RequestContext, scope: Scope, send: Send, rest: str) -> None:
        name = rest.rsplit("/", 1)[-1]
        if not name or parse.index_path(name) != rest or not _valid_name(name):
            raise HTTPError(404, f"no index file /{rest} in repository '{ctx.repo.name}'")
        repo = ctx.repo
        if repo.kind == "proxy":
            page = await self.proxy.index_page(repo, name)
        elif repo.kind == "group":
            page = await self.group.index_page(repo, name)
        else:
            page = self.core.pages.read(repo.name, page_key(name))
        if page is None or str(page.meta.get("name", name)).lower() != name:
            raise HTTPError(404, f"crate `{name}` not found in repository '{repo.name}'")
        await serve_index(scope, send, page)

    # -- downloads (hot path) ------------------------------------------------------------------------------------
    async def download(self, ctx: RequestContext, scope: Scope, send: Send, name: str, version: str) -> None:
        repo = ctx.repo
        if not _valid_name(name):
            raise HTTPError(404, f"`{name}` is not a crate name")
        if repo.kind == "proxy":
            return await self.proxy.serve_crate(repo, name, version, scope, send)
        if repo.kind == "group":
            return await self.group.serve_crate(repo, name, version, scope, send)
        from ...core.published import refuse_withheld, send_published

        page = self.core.pages.read(repo.name, page_key(name))
        entry = lookup_version(page, repo.name, version) if page is not None else None
        if entry is None:  # a quarantined version is not in the index: 403 with the reason
            refuse_withheld(self.core, repo, normalize_name(name), version)
        if entry is None or not await send_published(self.core, repo.name, entry["cksum"],
                                                     crate_filename(entry["name"], version), scope, send,
                                                     content_type=b"application/x-tar"):
            raise HTTPError(404, f"crate `{name}` version `{version}` not found in repository '{repo.name}'")

    # -- publish -------------------------------------------------------------------------------------------------
    async def publish(self, ctx: RequestContext, scope: Scope, body: _Body, send: Send) -> None:
        core = self.core
        limit = int(ctx.repo.setting("max_upload_size", core.settings.max_upload_size))
        limits = parse.Limits()
        if body.declared is not None and body.declared > limit + limits.max_json + 8:
            raise HTTPError(413, f"the publish body is {body.declared} bytes; the limit of repository "
                                 f"'{ctx.repo.name}' is {limit} bytes for the .crate file")
        writer = core.blobs.writer(max_size=limit)
        try:
            frame = parse.PublishFrame(writer.write, max_json=limits.max_json, max_crate=limit,
                                       declared=body.declared)
            try:
                async for chunk in body.chunks():
                    frame.feed(chunk)
                frame.finish()
            except BlobTooLarge:
                raise HTTPError(413, f"the .crate file is larger than the limit of repository '{ctx.repo.name}' "
                                     f"({limit} bytes)")
            await anyio.to_thread.run_sync(self._ingest, ctx, frame, writer)
        finally:
            writer.abort()
        await send_json(send, 200, _WARNINGS)

    def _ingest(self, ctx: RequestContext, frame: parse.PublishFrame, writer: Any) -> None:
        """validate -> store -> record -> render the index file (before answering: cargo polls it right after)."""
        core, repo = self.core, ctx.repo
        meta = parse.check_metadata(frame.json_bytes)
        name, vers = meta["name"], meta["vers"]
        semver = parse_semver(vers)
        norm = normalize_name(name)
        parse.check_crate_file(str(writer.temp_path()), name, vers)
        existing = core.content.files(repo, norm, meta_keys=("crate",))
        allow_overwrite = bool(repo.setting("allow_overwrite", False))
        if existing:
            published_as = existing[-1].meta.get("crate") or norm
            if published_as != name:
                raise InvalidCrate("name-spelling", f"crate was previously named `{published_as}`")
            self._require_owner(ctx, norm, name)
            same = [f.version for f in existing if parse_semver(f.version).without_build == semver.without_build]
            if same and not allow_overwrite:
                raise InvalidCrate("exists", f"crate version `{same[0]}` is already uploaded")
        sha256 = writer.digests()["sha256"]
        entry = parse.index_entry(meta, sha256)
        ref = writer.commit()
        new = NewArtifact(
            format="cargo", name=norm, version=vers, filename=crate_filename(name, vers), blob=ref, kind="crate",
            key=f"{norm}/{semver.without_build}",
            meta={"index": json.dumps(entry, separators=(",", ":")), "crate": name,
                  "description": meta.get("description"), "license": meta.get("license"),
                  "keywords": meta.get("keywords") or [], "repository": meta.get("repository")},
        )
        try:
            core.ingest(repo, new, actor=ctx.actor, remote_addr=ctx.remote_addr, allow_overwrite=allow_overwrite)
        except FileWasDeleted:
            self._forget(writer, ref.sha256)
            raise InvalidCrate("exists", f"crate version `{vers}` was uploaded before and deleted; a version cannot "
                                         "be reused, publish a new one")
        except FileExists:
            self._forget(writer, ref.sha256)
            raise InvalidCrate("exists", f"crate version `{vers}` is already uploaded")
        except Exception:
            self._forget(writer, ref.sha256)
            raise
        if not existing and ctx.principal is not None and core.set_attributes(
                repo, norm, {"owners": [ctx.principal.name]}, actor=ctx.actor, remote_addr=ctx.remote_addr):
            return  # the first publisher owns the crate; set_attributes re-rendered its index file
        core.publish(repo, {norm})

    def _forget(self, writer: Any, sha256: str) -> None:
        if getattr(writer, "created", False):
            self.core.content.forget_blob_if_unreferenced(self.core.blobs, sha256)

    def _require_owner(self, ctx: RequestContext, norm: str, name: str) -> list[str]:
        """Owners (token names) may publish new versions, yank and change owners; so may repository admins."""
        owners = list(self.core.content.attributes(ctx.repo, norm).get("owners") or [])
        principal = ctx.principal
        if principal is None:  # pragma: no cover - callers require write first
            raise Forbidden("authentication required")
        if owners and principal.name not in owners and not principal.can("admin", ctx.repo.name):
            raise Forbidden(f"this token ('{principal.name}') is not an owner of crate `{name}` "
                            f"(owners: {', '.join(owners)}); an owner or a repository admin can add it with "
                            "`cargo owner --add`")
        return owners

    # -- yank ----------------------------------------------------------------------------------------------------
    async def yank(self, ctx: RequestContext, send: Send, name: str, version: str, yanked: bool) -> None:
        def run() -> None:
            norm = normalize_name(name)
            self._require_existing(ctx, norm, name)
            self._require_owner(ctx, norm, name)
            try:
                self.core.set_yanked(ctx.repo, name=norm, version=version, yanked=yanked, reason=None,
                                     actor=ctx.actor)
            except NotFound:
                raise NotFound(f"crate `{name}` has no version `{version}` in repository '{ctx.repo.name}'")

        await anyio.to_thread.run_sync(run)
        await send_json(send, 200, {"ok": True})

    def _require_existing(self, ctx: RequestContext, norm: str, name: str) -> list[Any]:
        files = self.core.content.files(ctx.repo, norm, meta_keys=("crate",))
        if not files:
            raise NotFound(f"crate `{name}` does not exist in repository '{ctx.repo.name}'")
        return files

    # -- owners --------------------------------------------------------------------------------------------------
    async def owners(self, ctx: RequestContext, scope: Scope, body: _Body, send: Send, name: str) -> None:
        method = scope["method"]
        _only(method, ("GET", "HEAD", "PUT", "DELETE"))
        norm = normalize_name(name)
        if method in ("GET", "HEAD"):
            ctx.require("read")
            repo = ctx.repo
            if repo.kind == "group":  # the owners of the hosted member that has the crate
                repo = next((m for m in self.core.members(repo) if m.kind == "hosted"
                             and self.core.content.files(m.id, norm, meta_keys=())), repo)
            owners = await anyio.to_thread.run_sync(self._owners_of, repo, norm, name)
            users = [{"id": i + 1, "login": login, "name": None} for i, login in enumerate(owners)]
            return await send_json(send, 200, {"users": users}, head=method == "HEAD")
        ctx = self._writable(ctx)
        raw = await body.read(_MAX_OWNER_BODY)
        try:
            doc = json.loads(raw)
        except ValueError:
            raise HTTPError(400, "the owners request body must be JSON like {\"users\": [\"login\"]}")
        logins = doc.get("users") if isinstance(doc, dict) else None
        if not isinstance(logins, list) or not logins or not all(isinstance(u, str) for u in logins):
            raise HTTPError(400, "the owners request body must be JSON like {\"users\": [\"login\"]}")
        bad = [u for u in logins if not _LOGIN_RE.fullmatch(u)]
        if bad:
            raise HTTPError(400, f"invalid owner login {bad[0][:100]!r}: owners are token names "
                                 "(letters, digits, '_', '.', ':', '@', '+', '-')")

        def change() -> str:
            self._require_existing(ctx, norm, name)
            owners = self._require_owner(ctx, norm, name)
            if method == "PUT":
                new = owners + [u for u in logins if u not in owners]
                msg = f"user(s) {', '.join(logins)} added as owner(s) of crate `{name}`"
            else:
                new = [u for u in owners if u not in logins]
                if not new:
                    raise HTTPError(400, "cannot remove all individual owners of a crate")
                msg = f"user(s) {', '.join(logins)} removed as owner(s) of crate `{name}`"
            if new != owners:
                self.core.set_attributes(ctx.repo, norm, {"owners": new}, actor=ctx.actor,
                                         remote_addr=ctx.remote_addr)
            return msg

        msg = await anyio.to_thread.run_sync(change)
        await send_json(send, 200, {"ok": True, "msg": msg})

    def _owners_of(self, repo: Any, norm: str, name: str) -> list[str]:
        if not self.core.content.files(repo, norm, meta_keys=()):
            raise NotFound(f"crate `{name}` does not exist in repository '{repo.name}'")
        return list(self.core.content.attributes(repo, norm).get("owners") or [])

    # -- search --------------------------------------------------------------------------------------------------
    async def search(self, ctx: RequestContext, scope: Scope, send: Send) -> None:
        qs = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
        query = (qs.get("q") or [""])[0].strip()
        try:
            per_page = max(1, min(100, int((qs.get("per_page") or ["10"])[0])))
        except ValueError:
            raise HTTPError(400, "per_page must be a number between 1 and 100")
        repos = [ctx.repo] if ctx.repo.kind != "group" else self.core.members(ctx.repo)
        result = await anyio.to_thread.run_sync(self._search, repos, query, per_page)
        await send_json(send, 200, result, head=scope["method"] == "HEAD")

    def _search(self, repos: list[Any], query: str, per_page: int) -> dict[str, Any]:
        """Crates whose name or description contains the query (case-insensitive; '-' and '_' alike), exact name
        first; ``max_version`` is the highest version that is not yanked. Proxies offer what they have cached."""
        needle = query.lower()
        norm_needle = normalize_name(query) if query else ""
        found: dict[str, dict[str, Any]] = {}
        for repo in repos:
            by_name: dict[str, list[Any]] = {}
            for f in self.core.content.files(repo, meta_keys=("crate", "description")):
                by_name.setdefault(f.name, []).append(f)
            for norm, files in by_name.items():
                if norm in found:
                    continue
                description = files[-1].meta.get("description") or ""
                if needle and norm_needle not in norm and needle not in description.lower():
                    continue
                live = [f.version for f in files if not f.yanked] or [f.version for f in files]
                found[norm] = {"name": files[-1].meta.get("crate") or norm,
                               "max_version": max(live, key=semver_key), "description": description}
        ranked = sorted(found.items(), key=lambda kv: (kv[0] != norm_needle, kv[0]))
        return {"crates": [c for _n, c in ranked[:per_page]], "meta": {"total": len(ranked)}}


def _auth_header(ctx: RequestContext, status: int) -> list[tuple[bytes, bytes]]:
    return [(b"www-authenticate", b'Cargo login_url="%s/ui/"' % ctx.base_url.encode())] if status == 401 else []


def _only(method: str, allowed: tuple[str, ...]) -> None:
    if method not in allowed:
        raise HTTPError(405, f"method {method} not allowed here", [(b"allow", ", ".join(allowed).encode())])


def _valid_name(name: str) -> bool:
    try:
        parse.validate_name(name)
    except InvalidCrate:
        return False
    return True


async def serve_index(scope: Scope, send: Send, page: "Page") -> None:
    """An index file with ETag/304 (cargo revalidates with If-None-Match)."""
    etag, body = page.variants["text"]
    headers = [(b"etag", etag), _INDEX_CACHE]
    if etag_matches(scope, etag):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    await send_bytes(send, 200, body, TEXT, headers, head=scope["method"] == "HEAD")
