"""Generic proxy repositories: ``GET /<repo>/<path>`` fetches ``<upstream>/<path>`` on its first request, streams
it to the client while storing it, and serves it locally afterwards (cached forever). A 404 upstream is
remembered for the upstream's ``negative_ttl``; when the upstream is down, cached files keep being served and
missing ones get a 502/504 naming the upstream. Concurrent misses of one path make one upstream request."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import anyio.to_thread

from ...asgi import HTTPError, Scope, Send
from ...core.audit import AuditTag
from ...core.content import NewArtifact
from ...core.interfaces import RepoInfo, RequestContext
from ...core.ingest import Candidate
from ...core.proxying import fetch_file
from ...core.published import link_file
from ...storage import BlobRef
from . import listing
from .parse import ArtifactPath

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core
    from .routes import GenericRoutes

__all__ = ["GenericProxy", "ANNOUNCED"]

# digests an upstream may announce for a file (Artifactory, Nexus and Wharf itself send these)
ANNOUNCED = {"x-checksum-sha256": "sha256", "x-checksum-sha1": "sha1", "x-checksum-md5": "md5"}


class GenericProxy:
    def __init__(self, core: "Core", routes: "GenericRoutes"):
        self.core = core
        self.routes = routes

    async def serve(self, ctx: RequestContext, path: ArtifactPath, scope: Scope, send: Send) -> None:
        if await self.routes.send_local(ctx, path, scope, send):
            return
        repo = ctx.repo
        miss = self.core.pages.read(repo.name, listing.miss_key(path.key))
        if miss is not None and miss.meta.get("exp", 0) > time.time():
            raise HTTPError(404, f"file '/{path.key}' not found in repository '{repo.name}' nor on its upstream "
                                 f"{repo.config['upstream']['url']} (remembered for a while)")
        up = self.core.upstream(repo)
        url = up.url(quote(path.key, safe="/~!$&'()*+,;=:@"))

        async def serve_cached() -> bool:
            return await self.routes.send_local(ctx, path, scope, send)

        def record(ref: BlobRef, _local: Path | None) -> None:
            self._record(ctx, path, ref, url)

        try:
            await fetch_file(self.core, repo, url, filename=path.filename, expect={}, scope=scope, send=send,
                             record=record, serve_cached=serve_cached,
                             candidate=Candidate("generic", path.package, "", path.filename, url),
                             content_type=_content_type(path.filename),
                             flight_key=f"generic:{repo.name}:{path.key}", announced=ANNOUNCED,
                             headers=[(b"x-content-type-options", b"nosniff")])
        except HTTPError as exc:
            if exc.status == 404:
                await anyio.to_thread.run_sync(self._remember_missing, repo, path.key, up.config.negative_ttl)
                raise HTTPError(404, f"file '/{path.key}' not found in repository '{repo.name}' nor on its upstream "
                                     f"{up.base}")
            raise

    def _remember_missing(self, repo: RepoInfo, key: str, ttl: float) -> None:
        self.core.pages.write(repo.name, listing.miss_key(key), time.time_ns(), {},
                              {"missing": True, "exp": time.time() + ttl})

    def _record(self, ctx: RequestContext, path: ArtifactPath, ref: BlobRef, url: str) -> None:
        """Record a fetched file like an upload (with its origin), make it downloadable, list it."""
        core, repo = self.core, ctx.repo
        digests: dict[str, Any] = dict(ref.digests)
        if "sha1" not in digests or "md5" not in digests:  # a blob stored before: hash it once for the listing
            digests.update(_hash_file(core, ref.sha256))
        new = NewArtifact(format="generic", name=path.package, version="", filename=path.filename, blob=ref,
                          meta={"sha1": digests["sha1"], "md5": digests["md5"]}, key=path.key, origin=url)
        result = core.ingest(repo, new, actor=f"proxy:{core.upstream(repo).host}", allow_overwrite=True,
                             action="proxy_fetch", audit_tag=AuditTag.FILE_CACHE)
        link_file(core, repo.name, ref.sha256, path.filename)
        if result.created:
            core.pages.delete(repo.name, listing.miss_key(path.key))
            core.publish(repo, {path.package})


def _content_type(filename: str) -> bytes:
    from .routes import content_type

    return content_type(filename)


def _hash_file(core: "Core", sha256: str) -> dict[str, str]:
    import hashlib

    h1, h5 = hashlib.sha1(), hashlib.md5()
    with core.blobs.open(sha256) as fh:
        while chunk := fh.read(1024 * 1024):
            h1.update(chunk)
            h5.update(chunk)
    return {"sha1": h1.hexdigest(), "md5": h5.hexdigest()}
