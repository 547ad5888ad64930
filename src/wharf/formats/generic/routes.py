"""The generic-files protocol under ``/<repo>/``: ``PUT|GET|HEAD|DELETE /<repo>/<path>``, directory listings.

Every response a client gets for a bad request is a 4xx with a sentence; nothing is stored unless the whole body
arrived, matched every checksum header the client sent, and fits the repository's size limit.
"""

from __future__ import annotations

import mimetypes
import re
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from ...asgi import HTTPError, Receive, Scope, Send, etag_matches, header, send_bytes, send_json
from ...core.content import AddResult, NewArtifact
from ...core.errors import FileExists, FileWasDeleted
from ...core.interfaces import RequestContext
from ...core.published import link_file, refuse_withheld, send_published
from ...storage import BlobTooLarge
from . import listing
from .parse import CHECKSUM_HEADERS, ArtifactPath, InvalidChecksum, InvalidPath, parse_checksum, parse_dir, parse_path

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core

__all__ = ["GenericRoutes", "content_type"]

_ENCODED_SEPARATOR = re.compile(rb"%(2f|5c|00)", re.IGNORECASE)
_LISTING_CACHE = (b"cache-control", b"max-age=0, must-revalidate")
# types a browser would render or run from this server's origin are served as plain bytes
_ACTIVE_TYPES = {"text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/xml",
                 "text/javascript", "application/javascript", "application/x-javascript", "text/css"}
_TYPES: dict[str, bytes] = {}


def content_type(filename: str) -> bytes:
    ext = filename.rpartition(".")[2].lower() if "." in filename else ""
    hit = _TYPES.get(ext)
    if hit is None:
        guessed, encoding = mimetypes.guess_type("x." + ext) if ext else (None, None)
        if encoding == "gzip":
            guessed = "application/gzip"
        elif encoding is not None:
            guessed = None
        if guessed is None or guessed in _ACTIVE_TYPES or guessed.startswith("text/html"):
            guessed = "application/octet-stream"
        hit = guessed.encode()
        if len(_TYPES) < 4096:
            _TYPES[ext] = hit
    return hit


def _only(method: str, allowed: tuple[str, ...]) -> None:
    if method not in allowed:
        raise HTTPError(405, f"method {method} not allowed here; use {', '.join(allowed)}",
                        [(b"allow", ", ".join(allowed).encode())])


def _wants_listing(scope: Scope, subpath: str) -> bool:
    if subpath == "" or subpath.endswith("/"):
        return True
    qs: bytes = scope.get("query_string") or b""
    return qs == b"list" or qs.startswith(b"list&") or qs.startswith(b"list=") or b"&list" in qs


def _checksum_headers(scope: Scope) -> dict[str, str]:
    """The digests the client says its body has (Artifactory's header names), validated before the body is read."""
    expected: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name in CHECKSUM_HEADERS:
            try:
                algorithm, digest = parse_checksum(name, value)
            except InvalidChecksum as exc:
                raise HTTPError(400, exc.message, reason="bad-checksum-header")
            if expected.get(algorithm, digest) != digest:
                raise HTTPError(400, f"two checksum headers give different {algorithm} digests",
                                reason="bad-checksum-header")
            expected[algorithm] = digest
    return expected


def _checksum_response_headers(info: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    out = [(b"x-checksum-sha256", info["sha256"].encode()), (b"x-content-type-options", b"nosniff")]
    if info.get("sha1"):
        out.append((b"x-checksum-sha1", info["sha1"].encode()))
    if info.get("md5"):
        out.append((b"x-checksum-md5", info["md5"].encode()))
    return out


class GenericRoutes:
    def __init__(self, core: "Core"):
        from .proxy import GenericProxy

        self.core = core
        self.proxy = GenericProxy(core, self)

    async def __call__(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send, subpath: str) -> None:
        method = scope["method"]
        raw: bytes = scope.get("raw_path") or b""
        m = _ENCODED_SEPARATOR.search(raw)
        if m:
            raise HTTPError(400, f"path contains an encoded '{m.group(0).decode()}' ({'slash' if m.group(1).lower() == b'2f' else 'backslash' if m.group(1).lower() == b'5c' else 'NUL byte'}); "
                                 "send '/' between directories and no escaped separators", reason="encoded-separator")
        if method in ("GET", "HEAD"):
            ctx.require("read")
            if _wants_listing(scope, subpath):
                return await self.serve_listing(ctx, scope, send, subpath)
            path = self._path(subpath)
            if ctx.repo.kind == "proxy":
                return await self.proxy.serve(ctx, path, scope, send)
            return await self.download(ctx, path, scope, send)
        if ctx.repo.kind != "hosted":
            raise HTTPError(405, f"repository '{ctx.repo.name}' is a read-only {ctx.repo.kind} repository (it caches "
                                 "its upstream); upload to and delete from a hosted repository",
                            [(b"allow", b"GET, HEAD")], reason="read-only")
        if method == "PUT":
            ctx.require("write")
            return await self.upload(ctx, scope, receive, send, subpath)
        if method == "DELETE":
            ctx.require("admin")
            return await self.delete(ctx, scope, send, subpath)
        _only(method, ("GET", "HEAD", "PUT", "DELETE"))

    @staticmethod
    def _path(subpath: str) -> ArtifactPath:
        try:
            return parse_path(subpath)
        except InvalidPath as exc:
            raise HTTPError(400, exc.message, reason=exc.reason)

    # -- listings -----------------------------------------------------------------------------------------------
    async def serve_listing(self, ctx: RequestContext, scope: Scope, send: Send, subpath: str) -> None:
        try:
            directory = parse_dir(subpath)
        except InvalidPath as exc:
            raise HTTPError(400, exc.message, reason=exc.reason)
        page = listing.read_dir(self.core, ctx.repo.name, directory)
        if page is None:
            if directory == "":
                body = listing.empty_listing(ctx.repo.name, ctx.repo.version)
                return await send_bytes(send, 200, body, listing.JSON_TYPE, [_LISTING_CACHE],
                                        head=scope["method"] == "HEAD")
            raise HTTPError(404, f"no directory '/{directory}/' in repository '{ctx.repo.name}'")
        etag, body = page.variants["json"]
        headers = [(b"etag", etag), _LISTING_CACHE]
        if etag_matches(scope, etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send_bytes(send, 200, body, listing.JSON_TYPE, headers, head=scope["method"] == "HEAD")

    # -- downloads (hot path) -----------------------------------------------------------------------------------
    async def send_local(self, ctx: RequestContext, path: ArtifactPath, scope: Scope, send: Send) -> bool:
        """Send a stored file if this repository has it; False if not."""
        info = listing.lookup(self.core, ctx.repo.name, path.directory, path.filename)
        if info is None:  # withheld (quarantine): 403 with the reason, and a proxy does not fetch it
            refuse_withheld(self.core, ctx.repo, path.package, "")
            return False
        sha = info["sha256"]
        extra = _checksum_response_headers(info)
        ctype = content_type(path.filename)
        if await send_published(self.core, ctx.repo.name, sha, path.filename, scope, send, content_type=ctype,
                                headers=extra):
            return True
        # the same bytes under the same file name in two directories share one download link; deleting one path
        # removed the link the other still needs: restore it from the blob store
        if not self.core.blobs.exists(sha):
            raise HTTPError(500, f"the stored bytes of '{path.key}' are missing (run 'wharf check')")
        await anyio.to_thread.run_sync(link_file, self.core, ctx.repo.name, sha, path.filename)
        return await send_published(self.core, ctx.repo.name, sha, path.filename, scope, send, content_type=ctype,
                                    headers=extra)

    async def download(self, ctx: RequestContext, path: ArtifactPath, scope: Scope, send: Send) -> None:
        if await self.send_local(ctx, path, scope, send):
            return
        raise self.not_found(ctx, path)

    def not_found(self, ctx: RequestContext, path: ArtifactPath) -> HTTPError:
        if listing.read_dir(self.core, ctx.repo.name, path.key) is not None:
            return HTTPError(404, f"'/{path.key}' is a directory in repository '{ctx.repo.name}'; "
                                  f"list it with /{ctx.repo.name}/{path.key}/")
        return HTTPError(404, f"file '/{path.key}' not found in repository '{ctx.repo.name}'")

    # -- upload -------------------------------------------------------------------------------------------------
    async def upload(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send, subpath: str) -> None:
        path = self._path(subpath)
        repo = ctx.repo
        limit = int(repo.setting("max_upload_size", self.core.settings.max_upload_size))
        shown = f"{limit // (1024 * 1024)} MiB ({limit} bytes)" if limit >= 1024 * 1024 else f"{limit} bytes"
        too_large = HTTPError(413, f"File too large. The limit for repository '{repo.name}' is {shown}.",
                              reason="too-large")
        raw_length = header(scope, b"content-length")
        declared: int | None = None
        if raw_length is not None:
            if not raw_length.strip().isdigit():
                raise HTTPError(400, "Content-Length is not a number", reason="bad-length")
            declared = int(raw_length)
            if declared > limit:
                raise too_large
        expected = _checksum_headers(scope)
        writer = self.core.blobs.writer(algorithms=("sha1", "md5"), max_size=limit)
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise HTTPError(400, "the client disconnected before the whole file arrived; nothing was stored",
                                    reason="disconnected")
                chunk = message.get("body", b"")
                if chunk:
                    try:
                        writer.write(chunk)
                    except BlobTooLarge:
                        raise too_large
                if not message.get("more_body", False):
                    break
            if declared is not None and writer.size != declared:
                raise HTTPError(400, f"the body has {writer.size} bytes but Content-Length said {declared}; "
                                     "nothing was stored", reason="bad-length")
            digests = writer.digests()
            for algorithm, digest in sorted(expected.items()):
                if digests[algorithm] != digest:
                    raise HTTPError(400, f"checksum mismatch: the client said {algorithm} {digest}, the uploaded "
                                         f"bytes have {digests[algorithm]}; nothing was stored",
                                    reason="checksum-mismatch")
            result = await anyio.to_thread.run_sync(self._ingest, ctx, path, writer)
        finally:
            writer.abort()
        f = result.file
        url = f"{ctx.repo_url}/{path.key}"
        body = {
            "repo": repo.name, "path": "/" + path.key, "created": listing._iso(f.added_at),
            "createdBy": f.uploaded_by, "downloadUri": url, "uri": url, "mimeType": content_type(path.filename).decode(),
            "size": f.size, "checksums": {"sha256": f.sha256, "sha1": f.meta.get("sha1"), "md5": f.meta.get("md5")},
            "originalChecksums": expected, "stored": result.created,
        }
        if result.created:
            body["version"] = result.version  # the repository version this upload made
        await send_json(send, 201 if result.created else 200, body, [(b"location", url.encode())])

    def _conflicts(self, repo: str, path: ArtifactPath) -> None:
        """A path cannot be a file and a directory at once (listings and downloads would be ambiguous)."""
        if listing.read_dir(self.core, repo, path.key) is not None:
            raise HTTPError(409, f"'/{path.key}' is a directory in repository '{repo}'; a file cannot replace it",
                            reason="is-directory")
        directory = path.directory
        while directory:
            up, name = listing.parent(directory)
            if listing.lookup(self.core, repo, up, name) is not None:
                raise HTTPError(409, f"'/{directory}' is a file in repository '{repo}'; it cannot hold "
                                     f"'/{path.key}'", reason="is-file")
            directory = up

    def _ingest(self, ctx: RequestContext, path: ArtifactPath, writer: Any) -> AddResult:
        """check -> store -> record -> publish (in a thread). A refusal leaves nothing behind."""
        core, repo = self.core, ctx.repo
        digests = writer.digests()
        allow_overwrite = bool(repo.setting("allow_overwrite", False))
        existing = core.content.live_sha256(repo.id, path.key)
        if existing is not None and existing != digests["sha256"] and not allow_overwrite:
            raise self._exists(repo.name, path, existing)
        self._conflicts(repo.name, path)
        ref = writer.commit()
        new = NewArtifact(format="generic", name=path.package, version="", filename=path.filename, blob=ref,
                          meta={"sha1": digests["sha1"], "md5": digests["md5"]}, key=path.key)
        try:
            result = core.ingest(repo, new, actor=ctx.actor, remote_addr=ctx.remote_addr,
                                 allow_overwrite=allow_overwrite)
        except (FileExists, FileWasDeleted) as exc:
            if writer.created:
                core.content.forget_blob_if_unreferenced(core.blobs, ref.sha256)
            if isinstance(exc, FileWasDeleted):
                raise HTTPError(409, f"'/{path.key}' was uploaded to repository '{repo.name}' before and deleted; "
                                     "paths are immutable, so it cannot be reused with other content (the "
                                     "repository setting allow_overwrite lifts this)", reason="file-deleted")
            raise self._exists(repo.name, path, core.content.live_sha256(repo.id, path.key))
        except Exception:
            if writer.created:
                core.content.forget_blob_if_unreferenced(core.blobs, ref.sha256)
            raise
        if result.created or listing.lookup(core, repo.name, path.directory, path.filename) is None:
            # (an identical retry also repairs a publish that failed after the upload was recorded)
            link_file(core, repo.name, ref.sha256, path.filename)
            core.publish(repo, {path.package})
        return result

    @staticmethod
    def _exists(repo: str, path: ArtifactPath, existing: str | None) -> HTTPError:
        return HTTPError(409, f"'/{path.key}' already exists in repository '{repo}' with other content (sha256 "
                              f"{existing}); files are immutable: upload under a new path, or ask an administrator "
                              "to enable allow_overwrite", reason="file-exists")

    # -- delete -------------------------------------------------------------------------------------------------
    async def delete(self, ctx: RequestContext, scope: Scope, send: Send, subpath: str) -> None:
        """Delete one file, or (path ending in '/') every file under a directory, in one new repository version."""
        if subpath.endswith("/") or subpath == "":
            try:
                directory = parse_dir(subpath)
            except InvalidPath as exc:
                raise HTTPError(400, exc.message, reason=exc.reason)
            keys = list(listing.walk_files(self.core, ctx.repo.name, directory))
            if not keys:
                raise HTTPError(404, f"no directory '/{directory}/' with files in repository '{ctx.repo.name}'")
        else:
            path = self._path(subpath)
            if listing.lookup(self.core, ctx.repo.name, path.directory, path.filename) is None:
                raise self.not_found(ctx, path)
            keys = [path.key]

        def remove() -> list[Any]:
            return self.core.remove_files(ctx.repo, actor=ctx.actor, remote_addr=ctx.remote_addr, keys=keys)

        removed = await anyio.to_thread.run_sync(remove)
        await send_json(send, 200, {"repo": ctx.repo.name, "deleted": sorted(keys), "files": len(removed),
                                    "version": self.core.db_version(ctx.repo.id)})
