"""Maven proxy repositories: artifacts cached forever (verified against the upstream's ``.sha256``/``.sha1``),
``maven-metadata.xml`` cached and re-validated after the repository's index TTL, served stale when the upstream fails.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...asgi import HTTPError, Scope, Send, send_bytes
from ...core.audit import AuditTag
from ...core.content import NewArtifact
from ...core.ingest import Candidate
from ...core.interfaces import RepoInfo
from ...core.pages import Page
from ...core.proxying import UnreadableUpstream, cached_document, fetch_file
from ...core.published import refuse_withheld
from ...storage import BlobRef
from . import metadata as md
from . import parse, store
from .parse import ArtifactFile, ChecksumPath, MavenPath, MetadataPath
from .serve import TEXT, XML, serve_local, serve_variant

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from ...core.services import Core

__all__ = ["MavenProxy", "PROXY_METADATA"]

log = logging.getLogger("wharf.maven.proxy")

PROXY_METADATA = "p/"  # page prefix of the upstream's metadata documents
_ANNOUNCED = ("sha256", "sha1")  # the checksum files a download is verified against, strongest first
# digests some repository managers send with a download: verified too when present
_ANNOUNCED_HEADERS = {"x-checksum-sha256": "sha256", "x-checksum-sha1": "sha1", "x-checksum-md5": "md5"}


def _parse_metadata(at: MetadataPath):  # type: ignore[no-untyped-def]
    def parse_doc(resp: "httpx.Response") -> tuple[dict[str, bytes], dict[str, Any]]:
        body = resp.content
        try:
            if at.version is None:
                md.read_artifact_metadata(body, f"the upstream's {at.path}")
            else:
                md.read_snapshot_metadata(body, f"the upstream's {at.path}")
        except parse.InvalidArtifact as exc:
            raise UnreadableUpstream(exc.message)
        return md.checksum_variants(body), {}
    return parse_doc


class MavenProxy:
    def __init__(self, core: "Core"):
        self.core = core

    async def metadata_page(self, repo: RepoInfo, at: MetadataPath) -> Page | None:
        """The upstream's metadata document (cached, re-validated after the TTL, stale-if-error), without the versions
        core withholds here (quarantine); None if absent."""
        up = self.core.upstream(repo)
        page = await cached_document(self.core, repo, PROXY_METADATA + at.path, up.url(at.path),
                                     parse=_parse_metadata(at))
        hide = self.core.content.hide
        hidden = hide(repo.id).get(at.name) if (hide is not None and page is not None) else None
        if not hidden or page is None:
            return page
        if None in hidden or (at.version is not None and at.version in hidden):
            return None
        if at.version is not None:
            return page
        doc = md.read_artifact_metadata(page.variants["xml"][1], f"the upstream's {at.path}")
        doc.versions = [v for v in doc.versions if v not in hidden]
        variants = md.checksum_variants(md.render_artifact(doc))
        return Page(page.version, {k: (b'"%s"' % hashlib.sha256(v).hexdigest()[:32].encode(), v)
                                   for k, v in variants.items()}, page.meta)

    async def serve(self, repo: RepoInfo, what: MavenPath, scope: Scope, send: Send) -> None:
        if not await self.try_serve(repo, what, scope, send):
            raise HTTPError(404, f"not found in repository '{repo.name}' nor on its upstream "
                                 f"{repo.config['upstream']['url']}: /{_path(what)}")

    async def try_serve(self, repo: RepoInfo, what: MavenPath, scope: Scope, send: Send) -> bool:
        """Serve from the cache or the upstream; False when neither has it (nothing sent)."""
        target = what.target if isinstance(what, ChecksumPath) else what
        if isinstance(target, MetadataPath):
            page = await self.metadata_page(repo, target)
            if page is None:
                return False
            variant = what.algorithm if isinstance(what, ChecksumPath) else "xml"
            await serve_variant(scope, send, page, variant, TEXT if variant != "xml" else XML)
            return True
        if await serve_local(self.core, repo.name, what, scope, send):
            return True
        if isinstance(what, ChecksumPath):
            return await self._pass_checksum(repo, what, scope, send)
        return await self._fetch(repo, target, scope, send)

    async def _announced(self, repo: RepoInfo, path: str) -> dict[str, str]:
        """What the upstream says the file's digest is (its .sha256, else its .sha1; {} when it offers neither)."""
        up = self.core.upstream(repo)
        for alg in _ANNOUNCED:
            resp = await up.get(up.url(f"{path}.{alg}"), max_bytes=4096)
            if resp.status_code == 200:
                try:
                    return {alg: parse.parse_checksum(resp.content, alg)}
                except parse.InvalidArtifact:
                    log.warning("unreadable upstream checksum", extra={"fields": {"repository": repo.name,
                                                                                  "path": f"{path}.{alg}"}})
        return {}

    async def _fetch(self, repo: RepoInfo, target: ArtifactFile, scope: Scope, send: Send) -> bool:
        refuse_withheld(self.core, repo, target.name, target.version)  # quarantined: 403 before asking the upstream
        expect = await self._announced(repo, target.path)
        up = self.core.upstream(repo)
        url = up.url(target.path)

        def record(ref: BlobRef, path: Path | None) -> None:
            self._record(repo, target, ref, path, url)

        async def serve_cached() -> bool:
            return await serve_local(self.core, repo.name, target, scope, send)

        try:
            await fetch_file(self.core, repo, url, filename=target.filename, expect=expect, scope=scope,
                             send=send, record=record, serve_cached=serve_cached,
                             candidate=Candidate("maven", target.name, target.version, target.filename, url),
                             content_type=store.content_type(target.extension), flight_key=f"file:{repo.name}:{target.path}",
                             announced=_ANNOUNCED_HEADERS)
        except HTTPError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def _record(self, repo: RepoInfo, target: ArtifactFile, ref: BlobRef, path: Path | None, origin: str) -> None:
        """Record a fetched file like an upload (with its origin), then publish it at its path."""
        digests = dict(ref.digests)
        missing = [a for a in ("md5", "sha1", "sha512") if a not in digests]
        if missing:
            hashes = {a: hashlib.new(a) for a in missing}
            with (open(path, "rb") if path is not None else self.core.blobs.open(ref.sha256)) as fh:
                while chunk := fh.read(1024 * 1024):
                    for h in hashes.values():
                        h.update(chunk)
            digests.update({a: h.hexdigest() for a, h in hashes.items()})
        new = NewArtifact(format="maven", name=target.name, version=target.version, filename=target.filename,
                          blob=ref, kind=target.extension, key=target.path, origin=origin,
                          meta={"path": target.path, "md5": digests["md5"], "sha1": digests["sha1"],
                                "sha512": digests["sha512"], "classifier": target.classifier})
        result = self.core.ingest(repo, new, actor=f"proxy:{self.core.upstream(repo).host}",
                                  allow_overwrite=True, action="proxy_fetch", audit_tag=AuditTag.FILE_CACHE)
        store.publish_file(self.core, repo, result.file, result.version)
        if result.created:
            self.core.mark_published(repo.name, result.version)

    async def _pass_checksum(self, repo: RepoInfo, what: ChecksumPath, scope: Scope, send: Send) -> bool:
        """The checksum of a file not cached yet: the upstream's, checked to be one (nothing is stored)."""
        up = self.core.upstream(repo)
        path = f"{what.target.path}.{what.algorithm}"
        resp = await up.get(up.url(path), max_bytes=4096)
        if resp.status_code != 200:
            return False
        try:
            digest = parse.parse_checksum(resp.content, what.algorithm)
        except parse.InvalidArtifact:
            return False
        await send_bytes(send, 200, digest.encode(), TEXT, [(b"cache-control", b"max-age=60, public")],
                         head=scope["method"] == "HEAD")
        return True


def _path(what: MavenPath) -> str:
    return f"{what.target.path}.{what.algorithm}" if isinstance(what, ChecksumPath) else what.path

