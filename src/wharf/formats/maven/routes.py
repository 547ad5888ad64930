"""The Maven client protocol under ``/<repo>/``: plain GET/HEAD/PUT of layout paths.

Hosted: files, their checksums and the server's own ``maven-metadata.xml`` are served from published pages; PUT
stores an artifact after checking it belongs at its path (POM coordinates, readable archive), verifies uploaded
checksum files against the stored bytes, validates uploaded metadata (and then serves its own). Releases are
immutable; SNAPSHOT versions take new timestamped builds.
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from ...asgi import HTTPError, Receive, Scope, Send, header, send_bytes
from ...core.content import NewArtifact
from ...core.errors import FileExists, FileWasDeleted
from ...core.interfaces import RequestContext
from ...core.published import refuse_withheld
from ...storage import BlobTooLarge
from . import metadata as md
from . import parse, store
from .parse import ArtifactFile, ChecksumPath, MetadataPath
from .serve import TEXT, serve_local

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core

__all__ = ["MavenRoutes", "path_of"]

log = logging.getLogger("wharf.maven")

_SMALL_BODY = 1024 * 1024  # checksum and metadata uploads


class MavenRoutes:
    def __init__(self, core: "Core"):
        from .group import MavenGroup
        from .proxy import MavenProxy

        self.core = core
        self.proxy = MavenProxy(core)
        self.group = MavenGroup(core, self.proxy)

    async def __call__(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send, subpath: str) -> None:
        method = scope["method"]
        if method in ("GET", "HEAD"):
            ctx.require("read")
            if subpath == "" or subpath.endswith("/"):
                raise HTTPError(404, f"'{ctx.repo.name}' is a Maven repository: directory listings are not served; "
                                     "request files by their layout path")
            try:
                what = parse.parse_path(subpath)
            except parse.InvalidPath as exc:
                raise HTTPError(404, f"not found in repository '{ctx.repo.name}': {exc}")
            if ctx.repo.kind == "proxy":
                return await self.proxy.serve(ctx.repo, what, scope, send)
            if ctx.repo.kind == "group":
                return await self.group.serve(ctx.repo, what, scope, send)
            return await self.serve_hosted(ctx.repo.name, what, scope, send)
        if method == "PUT":
            return await self.put(ctx, scope, receive, send, subpath)
        raise HTTPError(405, f"method {method} not allowed: Maven repositories take GET, HEAD and PUT",
                        [(b"allow", b"GET, HEAD, PUT")])

    # -- reads (hot path) -----------------------------------------------------------------------------------------
    async def serve_hosted(self, repo_name: str, what: parse.MavenPath, scope: Scope, send: Send) -> None:
        if not await serve_local(self.core, repo_name, what, scope, send):
            target = what.target if isinstance(what, ChecksumPath) else what
            repo = self.core.repos.get(repo_name)
            if isinstance(target, ArtifactFile) and repo is not None:  # quarantined: 403 with the reason
                refuse_withheld(self.core, repo, target.name, target.version)
            raise HTTPError(404, f"not found in repository '{repo_name}': /{path_of(what)}")

    # -- writes ---------------------------------------------------------------------------------------------------
    async def put(self, ctx: RequestContext, scope: Scope, receive: Receive, send: Send, subpath: str) -> None:
        repo = ctx.repo
        if repo.kind != "hosted":
            target = self.core.repos.get(repo.config.get("default_member")) if repo.kind == "group" and \
                repo.config.get("default_member") else None
            if target is None:
                hint = " (or give the group a default_member)" if repo.kind == "group" else ""
                raise HTTPError(405, f"repository '{repo.name}' is a read-only {repo.kind} repository; deploy to a "
                                     f"hosted repository{hint}", [(b"allow", b"GET, HEAD")])
            ctx = RequestContext(target, ctx.principal, ctx.base_url, ctx.remote_addr)
            repo = target
        ctx.require("write")
        try:
            what = parse.parse_path(subpath)
        except parse.InvalidPath as exc:
            raise HTTPError(400, f"refused: {exc}", reason="bad-path")
        if isinstance(what, ChecksumPath):
            body = await _read_small(receive, scope, 1024, "a checksum file")
            status = await anyio.to_thread.run_sync(self._check_checksum, ctx, what, body)
        elif isinstance(what, MetadataPath):
            body = await _read_small(receive, scope, _SMALL_BODY, "maven-metadata.xml")
            status = await anyio.to_thread.run_sync(self._accept_metadata, ctx, what, body)
        else:
            status = await self._store_file(ctx, what, scope, receive)
        await send_bytes(send, status, b"", TEXT)

    def _check_checksum(self, ctx: RequestContext, what: ChecksumPath, body: bytes) -> int:
        """A checksum upload is verified against the stored file (or the last uploaded metadata), never stored."""
        try:
            claimed = parse.parse_checksum(body, what.algorithm)
        except parse.InvalidArtifact as exc:
            raise HTTPError(400, exc.message, reason=exc.reason)
        target = what.target
        repo = ctx.repo
        if isinstance(target, MetadataPath):
            known = [self.core.pages.read(repo.name, store.upload_key(target.path)),
                     self.core.pages.read(repo.name, store.metadata_key(target.path))]
            digests = [p.variants[what.algorithm][1].decode() for p in known if p and what.algorithm in p.variants]
            if not digests:
                raise HTTPError(400, f"no {target.path} to check this {what.algorithm} against: upload the metadata "
                                     "first", reason="checksum-without-file")
        else:
            page = store.page_of_file(self.core, repo.name, target.path)
            if page is None:
                raise HTTPError(400, f"no file {target.path} in repository '{repo.name}' to check this "
                                     f"{what.algorithm} against: upload the file first", reason="checksum-without-file")
            digests = [page.variants[what.algorithm][1].decode()]
        if not any(hmac.compare_digest(claimed, d) for d in digests):
            raise HTTPError(400, f"checksum mismatch: the uploaded {what.algorithm} of {target.path} is {claimed}, "
                                 f"but the stored file's is {digests[0]}", reason="checksum-mismatch")
        return 201

    def _accept_metadata(self, ctx: RequestContext, what: MetadataPath, body: bytes) -> int:
        """Uploaded metadata is validated, its digests kept for its checksum uploads; the served one is ours."""
        try:
            md.check_uploaded(body, what)
        except parse.InvalidArtifact as exc:
            raise HTTPError(400, exc.message, reason=exc.reason)
        digests = md.checksum_variants(body)
        del digests["xml"]
        self.core.pages.write(ctx.repo.name, store.upload_key(what.path), time.time_ns(), digests)
        return 201

    async def _store_file(self, ctx: RequestContext, what: ArtifactFile, scope: Scope, receive: Receive) -> int:
        limit = int(ctx.repo.setting("max_upload_size", self.core.settings.max_upload_size))
        too_large = HTTPError(413, f"{what.filename} is too large: the limit for repository '{ctx.repo.name}' is "
                                   f"{_shown(limit)}", reason="too-large")
        length = header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise too_large
        writer = self.core.blobs.writer(algorithms=("md5", "sha1", "sha256", "sha512"), max_size=limit)
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise HTTPError(400, "the client went away during the upload", reason="disconnect")
                try:
                    writer.write(message.get("body", b""))
                except BlobTooLarge:
                    raise too_large
                if not message.get("more_body", False):
                    break
            if length is not None and length.isdigit() and int(length) != writer.size:
                raise HTTPError(400, f"the body has {writer.size} bytes but Content-Length said {int(length)}",
                                reason="length-mismatch")
            _check_checksum_headers(scope, writer.digests(), what)
            return await anyio.to_thread.run_sync(self._ingest, ctx, what, writer)
        finally:
            writer.abort()

    def _ingest(self, ctx: RequestContext, what: ArtifactFile, writer: Any) -> int:
        """validate -> store -> record -> publish. Every failure leaves nothing behind."""
        core, repo = self.core, ctx.repo
        try:
            if writer.size == 0:
                raise parse.InvalidArtifact("empty-file", f"the uploaded file '{what.filename}' is empty")
            if what.extension == "pom" and what.classifier is None:
                with open(writer.temp_path(), "rb") as fh:
                    parse.check_pom(fh.read(), what)
            elif what.extension in parse.ZIP_EXTENSIONS:
                parse.check_archive(str(writer.temp_path()), what)
        except parse.InvalidArtifact as exc:
            raise HTTPError(400, exc.message, reason=exc.reason)
        digests = writer.digests()
        # SNAPSHOT versions change by design; releases are immutable unless the repository allows overwrite
        overwrite = what.snapshot or bool(repo.setting("allow_overwrite", False))
        existing = core.content.live_sha256(repo.id, what.path)
        if existing is not None and existing != digests["sha256"] and not overwrite:
            raise HTTPError(409, _immutable(what, existing), reason="release-exists")
        ref = writer.commit()
        new = NewArtifact(format="maven", name=what.name, version=what.version, filename=what.filename, blob=ref,
                          kind=what.extension, key=what.path,
                          meta={"path": what.path, "md5": digests["md5"], "sha1": digests["sha1"],
                                "sha512": digests["sha512"], "classifier": what.classifier})
        try:
            result = core.ingest(repo, new, actor=ctx.actor, remote_addr=ctx.remote_addr, allow_overwrite=overwrite)
        except (FileExists, FileWasDeleted) as exc:
            if writer.created:
                core.content.forget_blob_if_unreferenced(core.blobs, ref.sha256)
            if isinstance(exc, FileWasDeleted):
                raise HTTPError(409, f"{what.path} was deployed before and deleted; a release path cannot be reused",
                                reason="release-deleted")
            raise HTTPError(409, _immutable(what, None), reason="release-exists")
        except Exception:
            if writer.created:
                core.content.forget_blob_if_unreferenced(core.blobs, ref.sha256)
            raise
        if result.created or store.page_of_file(core, repo.name, what.path) is None:
            # (an identical retry also repairs a publish that failed after the upload was recorded)
            store.publish_file(core, repo, result.file, result.version)
            files = core.content.files(repo, what.name, meta_keys=store.FILE_META_KEYS)
            store.render_name(core, repo, what.name, result.version, files,
                              snapshots=[what.version] if what.snapshot else [])
            core.mark_published(repo.name, result.version)
        return 201 if result.created else 200


def _check_checksum_headers(scope: Scope, digests: dict[str, str], what: ArtifactFile) -> None:
    """``X-Checksum-Sha1``/``-Sha256``/``-Sha512``/``-Md5`` sent with an upload must match its bytes."""
    for alg in parse.CHECKSUMS:
        value = header(scope, b"x-checksum-" + alg.encode())
        if value is None:
            continue
        claimed = value.decode("latin-1").strip().lower()
        if not hmac.compare_digest(claimed, digests[alg]):
            raise HTTPError(400, f"checksum mismatch: X-Checksum-{alg.capitalize()} says {claimed}, but the uploaded "
                                 f"{what.filename} has {digests[alg]}; nothing was stored", reason="checksum-mismatch")


def _immutable(what: ArtifactFile, existing: str | None) -> str:
    was = f" (stored sha256 {existing})" if existing else ""
    return (f"{what.path} already exists with other content{was}: released artifacts are immutable. Deploy a new "
            "version, or a -SNAPSHOT version while it changes.")


def path_of(what: parse.MavenPath) -> str:
    if isinstance(what, ChecksumPath):
        return f"{what.target.path}.{what.algorithm}"
    return what.path


def _shown(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB ({limit} bytes)" if limit >= 1024 * 1024 else f"{limit} bytes"


async def _read_small(receive: Receive, scope: Scope, limit: int, what: str) -> bytes:
    length = header(scope, b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise HTTPError(413, f"{what} larger than {limit} bytes is not accepted", reason="too-large")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HTTPError(400, "the client went away during the upload", reason="disconnect")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"{what} larger than {limit} bytes is not accepted", reason="too-large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
