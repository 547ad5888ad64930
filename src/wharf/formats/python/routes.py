"""The Python client protocol under ``/<repo>/``: simple index, files, legacy upload, JSON API."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio.to_thread
from packaging.utils import canonicalize_name

from ...asgi import HTTPError, Receive, Scope, Send, header, send_bytes, send_json, send_redirect, etag_matches, remember
from ...core.content import AddResult, NewArtifact
from ...core.errors import FileExists
from ...core.interfaces import RequestContext
from ...multipart import read_multipart
from ...storage import BlobTooLarge
from . import parse
from .advisories import vulnerabilities
from .index import (append_file, canonical_or_none, link_files, project_json_api, project_key, root_page,
                    send_published)

if TYPE_CHECKING:  # pragma: no cover
    from ...core.pages import Page
    from ...core.services import Core

__all__ = ["PythonRoutes", "negotiate"]

log = logging.getLogger("wharf.python")

JSON_TYPE = b"application/vnd.pypi.simple.v1+json"
HTML_TYPE = b"text/html; charset=utf-8"
_VARY = (b"vary", b"Accept")
_FOREVER = float("inf")
_INDEX_CACHE = (b"cache-control", b"max-age=60, public")

_OFFERS = {
    "application/vnd.pypi.simple.v1+json": "json",
    "application/vnd.pypi.simple.latest+json": "json",
    "application/vnd.pypi.simple.v1+html": "html",
    "application/vnd.pypi.simple.latest+html": "html",
    "text/html": "html",
    "*/*": "html",
    "text/*": "html",
    "application/*": "json",
}
_NEGOTIATED: dict[bytes, str | None] = {}


def negotiate(accept: bytes | None) -> str | None:
    """PEP 691 content negotiation -> "json" | "html" | None (406). Results are memoised per header value."""
    if not accept:
        return "html"
    hit = _NEGOTIATED.get(accept, "")
    if hit != "":
        return hit
    best: tuple[float, int, str] | None = None
    for i, item in enumerate(accept.decode("latin-1").split(",")):
        mtype, *params = [p.strip() for p in item.split(";")]
        q = 1.0
        for p in params:
            k, _, v = p.partition("=")
            if k.strip() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
        variant = _OFFERS.get(mtype.lower())
        if variant is None or q <= 0:
            continue
        cand = (q, -i, variant)
        if best is None or cand > best:
            best = cand
    result = best[2] if best else None
    if len(_NEGOTIATED) < 1024:
        _NEGOTIATED[accept] = result
    return result


class PythonRoutes:
    def __init__(self, core: "Core"):
        from .group import PythonGroup
        from .proxy import PythonProxy

        self.core = core
        self.proxy = PythonProxy(core)
        self.group = PythonGroup(core, self.proxy)

    async def __call__(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send, subpath: str) -> None:
        method = scope["method"]
        kind = ctx.repo.kind
        if kind != "hosted":
            if subpath in ("legacy", "legacy/"):
                return await self._upload_to_default_member(ctx, scope, receive, send)
            if subpath.startswith("files/"):
                ctx.require("read")
                self._only(method, ("GET", "HEAD"))
                sha, _, filename = subpath[6:].partition("/")
                handler = self.proxy if kind == "proxy" else self.group
                return await handler.serve_file(ctx.repo, sha, filename, scope, send)
        if subpath.startswith("simple"):
            ctx.require("read")
            self._only(method, ("GET", "HEAD"))
            return await self.simple(ctx, scope, send, subpath[6:])
        if subpath.startswith("files/"):
            ctx.require("read")
            self._only(method, ("GET", "HEAD"))
            return await self.download(ctx, scope, send, subpath[6:])
        if subpath in ("legacy", "legacy/"):
            ctx.require("write")
            self._only(method, ("POST",))
            return await self.upload(ctx, scope, receive, send)
        if subpath.startswith("pypi/"):
            ctx.require("read")
            self._only(method, ("GET", "HEAD"))
            return await self.json_api(ctx, scope, send, subpath[5:])
        if subpath == "":
            ctx.require("read")
            return await send_redirect(send, f"/ui/{ctx.repo.name}/", 302)
        raise HTTPError(404, f"not found in python repository '{ctx.repo.name}': /{subpath}")

    @staticmethod
    def _only(method: str, allowed: tuple[str, ...]) -> None:
        if method not in allowed:
            raise HTTPError(405, f"method {method} not allowed here", [(b"allow", ", ".join(allowed).encode())])

    # -- simple index (hot path) -------------------------------------------------------------------------
    async def simple(self, ctx: RequestContext, scope: Scope, send: Send, rest: str) -> None:
        """The simple index of any kind of repository: one URL per project (PEP 503 name), pages by kind."""
        repo = ctx.repo
        if rest == "":
            return await send_redirect(send, f"/{repo.name}/simple/")
        if rest == "/":
            page = await (self.group.root(repo) if repo.kind == "group" else root_page(self.core, repo))
            return await self.serve_page(scope, send, page, until=_FOREVER if repo.kind == "hosted" else None)
        name, slash, tail = rest[1:].partition("/")
        canonical = canonical_or_none(name)
        if tail or canonical is None:
            raise HTTPError(404, f"not found in repository '{repo.name}': /simple{rest}")
        if canonical != name or not slash:
            return await send_redirect(send, f"/{repo.name}/simple/{canonical}/")
        until: float | None
        if repo.kind == "proxy":
            page = await self.proxy.ensure_page(repo, name)
            where = f" nor on its upstream {repo.config['upstream']['url']}"
            until = page.meta.get("exp") if page is not None else None  # (due for revalidation then)
        elif repo.kind == "group":
            page = await self.group.page(repo, name)
            where = ""
            until = self.group.fresh_until(repo, name, page)
        else:
            page, where, until = self.core.pages.read(repo.name, project_key(name)), "", _FOREVER
        if page is None:
            raise HTTPError(404, f"project '{name}' not found in repository '{repo.name}'{where}")
        await self.serve_page(scope, send, page, until=until)

    async def serve_page(self, scope: Scope, send: Send, page: "Page", *, until: float | None = None) -> None:
        """An index page in the negotiated representation, with ETag/304 and Vary. ``until``: the answer depends on
        published state only and may be remembered (asgi.ResponseMemo) until then: for ever for a hosted page (a
        change of any page or setting ends it anyway), a proxy's page until it is due for revalidation, a group's
        merge until its first proxy member's page is."""
        variant = negotiate(header(scope, b"accept"))
        if variant is None:
            raise HTTPError(406, "no acceptable representation: this index serves "
                                 "application/vnd.pypi.simple.v1+json and text/html")
        etag, body = page.variants[variant]
        ctype = JSON_TYPE if variant == "json" else HTML_TYPE
        headers = [(b"etag", etag), _VARY, _INDEX_CACHE]
        if etag_matches(scope, etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        sent = await send_bytes(send, 200, body, ctype, headers, head=scope["method"] == "HEAD")
        if until is not None:  # (only a GET can have been found eligible)
            remember(scope, 200, sent, body, "python", until)

    # -- downloads (hot path) ----------------------------------------------------------------------------
    async def download(self, ctx: RequestContext, scope: Scope, send: Send, rest: str) -> None:
        sha, _, filename = rest.partition("/")
        if not await send_published(self.core, ctx.repo.name, sha, filename, scope, send):
            raise HTTPError(404, f"file not found in repository '{ctx.repo.name}': {filename}")

    # -- JSON API ------------------------------------------------------------------------------------------
    async def json_api(self, ctx: RequestContext, scope: Scope, send: Send, rest: str) -> None:
        parts = rest.strip("/").split("/")
        if not (2 <= len(parts) <= 3) or parts[-1] != "json":
            raise HTTPError(404, "use /<repo>/pypi/<project>/json or /<repo>/pypi/<project>/<version>/json")
        name = canonicalize_name(parts[0])
        version = parts[1] if len(parts) == 3 else None
        if name != parts[0]:
            suffix = f"{version}/json" if version else "json"
            return await send_redirect(send, f"/{ctx.repo.name}/pypi/{name}/{suffix}")

        def build() -> dict | None:
            files = self.core.content.files(ctx.repo, name)
            doc = project_json_api(files, ctx.repo_url, version, ctx.repo.pinned if ctx.repo.pinned is not None
                                   else self.core.repos.require(ctx.repo.name).version)
            if doc is not None:
                doc["vulnerabilities"] = vulnerabilities(self.core, name, doc["info"]["version"], ctx.base_url)
            return doc

        doc = await anyio.to_thread.run_sync(build)
        if doc is None:
            what = f"{name} {version}" if version else name
            raise HTTPError(404, f"'{what}' not found in repository '{ctx.repo.name}'")
        await send_json(send, 200, doc, [(b"cache-control", b"max-age=60, public")], head=scope["method"] == "HEAD")

    # -- upload (twine / uv publish) -----------------------------------------------------------------------
    async def _upload_to_default_member(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
        """Proxy and group repositories are read-only; a group may name a hosted member that takes its uploads."""
        target = ctx.repo.config.get("default_member") if ctx.repo.kind == "group" else None
        member = self.core.repos.get(target) if target else None
        if member is None:
            raise HTTPError(405, f"repository '{ctx.repo.name}' is a read-only {ctx.repo.kind} repository; upload to a "
                                 "hosted repository" + (" (or give the group a default_member)" if ctx.repo.kind == "group" else ""),
                            [(b"allow", b"GET, HEAD")])
        member_ctx = RequestContext(member, ctx.principal, ctx.base_url, ctx.remote_addr)
        member_ctx.require("write")
        self._only(scope["method"], ("POST",))
        await self.upload(member_ctx, scope, receive, send)

    async def upload(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send) -> None:
        limit = int(ctx.repo.setting("max_upload_size", self.core.settings.max_upload_size))
        shown = f"{limit // (1024 * 1024)} MiB ({limit} bytes)" if limit >= 1024 * 1024 else f"{limit} bytes"
        too_large = HTTPError(413, f"File too large. The limit for repository '{ctx.repo.name}' is {shown}.",
                              reason="too-large")
        length = header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > limit + 16 * 1024 * 1024:
            raise too_large
        ctype = header(scope, b"content-type") or b""
        writer = self.core.blobs.writer(algorithms=("md5", "blake2_256"), max_size=limit)
        try:
            try:
                form = await read_multipart(receive, ctype, "content", lambda _fn: writer.write)
            except BlobTooLarge:
                raise too_large
            action = form.get(":action")
            if action in ("submit", "doc_upload"):
                raise HTTPError(410, f"':action={action}' is no longer supported; only file_upload is", reason="gone")
            if form.filename is None:
                raise HTTPError(400, "no file was uploaded: the form needs the file in a field named 'content'",
                                reason="no-file")
            result = await anyio.to_thread.run_sync(self._ingest, ctx, form.filename, form.flat(), writer)
        finally:
            writer.abort()
        body = b"OK" if result.created else b"OK (identical file already present)"
        await send_bytes(send, 200, body, b"text/plain; charset=utf-8")

    def _ingest(self, ctx: RequestContext, filename: str, form: dict[str, str], writer) -> AddResult:  # type: ignore[no-untyped-def]
        """validate -> store -> record -> publish. Every failure leaves nothing behind."""
        core = self.core
        try:
            if writer.size == 0:
                raise parse.InvalidArtifact("empty-file", f"the uploaded file '{filename}' is empty")
            artifact = parse.parse_artifact(str(writer.temp_path()), filename)
            parse.check_form(artifact, form)
            parse.verify_digests(form, writer.digests())
        except parse.InvalidArtifact as exc:
            raise HTTPError(400, exc.message, reason=exc.reason)
        digests = writer.digests()
        allow_overwrite = bool(ctx.repo.setting("allow_overwrite", False))
        existing = core.content.live_sha256(ctx.repo.id, filename)
        if existing is not None and existing != digests["sha256"] and not allow_overwrite:
            raise FileExists(f"File already exists ('{filename}', with sha256 hash '{existing}'). "
                             "Files are immutable: upload a new version instead.")
        ref = writer.commit()
        meta_ref, meta_created = None, False
        try:
            if artifact.metadata_bytes:
                meta_writer = core.blobs.writer()
                try:
                    meta_writer.write(artifact.metadata_bytes)
                    meta_ref = meta_writer.commit()
                    meta_created = meta_writer.created
                finally:
                    meta_writer.abort()
            new = NewArtifact(
                format="python", name=artifact.name, version=artifact.version, filename=filename, blob=ref,
                kind=artifact.packagetype, metadata_blob=meta_ref,
                meta={
                    "display_name": artifact.display_name, "requires_python": artifact.requires_python,
                    "python_version": artifact.python_version, "summary": artifact.summary,
                    "metadata_version": artifact.metadata_version, "metadata": artifact.metadata,
                    "digests": {"md5": digests["md5"], "blake2_256": digests["blake2_256"]},
                },
            )
            result = core.ingest(ctx.repo, new, actor=ctx.actor, remote_addr=ctx.remote_addr,
                                 allow_overwrite=allow_overwrite)
        except Exception:
            # refused after all (a concurrent upload of the filename won): leave neither the file nor its metadata
            if writer.created:
                core.content.forget_blob_if_unreferenced(core.blobs, ref.sha256)
            if meta_created and meta_ref is not None:
                core.content.forget_blob_if_unreferenced(core.blobs, meta_ref.sha256)
            raise
        if result.created or core.pages.file_path(ctx.repo.name, result.file.sha256, filename) is None:
            # (an identical retry also repairs a publish that failed after the upload was recorded)
            link_files(core, ctx.repo, [result.file])
            if not (result.created and append_file(core, ctx.repo, result.file, result.version)):
                core.publish(ctx.repo, {artifact.name})
        return result
