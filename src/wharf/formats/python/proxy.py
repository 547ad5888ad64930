"""Python proxy repositories: upstream index pages cached with a TTL, files cached forever on first request."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from ...asgi import HTTPError, Scope, Send
from ...core.audit import AuditTag
from ...core.content import NewArtifact
from ...core.errors import FileExists
from ...core.interfaces import RepoInfo
from ...core.pages import Page
from ...core.ingest import Candidate
from ...core.proxying import UnreadableUpstream, admit, cached_document, fetch_file
from ...core.upstream import UpstreamError
from ...storage import BlobRef
from . import parse
from .index import ROOT_KEY, canonical_or_none, link_files, project_key, render_entries, send_published
from .upstream import ACCEPT, UnreadablePage, parse_upstream_page

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core

__all__ = ["PythonProxy"]

log = logging.getLogger("wharf.python.proxy")


def _version(filename: str) -> str | None:
    try:
        return parse.parse_filename(filename)[1]
    except parse.InvalidArtifact:
        return None


def _local_url(sha: str, filename: str) -> str:
    return f"../../files/{sha}/{filename}"


class PythonProxy:
    def __init__(self, core: "Core"):
        self.core = core

    # -- index pages ------------------------------------------------------------------------------------------
    async def ensure_page(self, repo: RepoInfo, name: str, *, allow_stale: bool = False) -> Page | None:
        """The project page, fetched or re-validated upstream when missing or older than the TTL.
        None when the upstream does not have the project. Upstream failures serve the stale page if there is one."""
        canonical = canonical_or_none(name)
        if canonical is None:
            return None  # never ask the upstream for something that is not a project name (e.g. a path)
        page = await cached_document(self.core, repo, project_key(canonical),
                                     lambda: self.core.upstream(repo).url(f"{canonical}/"),
                                     parse=lambda resp: self._parse_page(canonical, resp),
                                     headers={"Accept": ACCEPT}, allow_stale=allow_stale)
        return self._withhold(repo, canonical, page)

    def _withhold(self, repo: RepoInfo, name: str, page: Page | None) -> Page | None:
        """The mirrored page without the versions core withholds here (quarantine), with PEP 792 status for a
        whole project; the stored page stays as the upstream sent it."""
        hide = self.core.content.hide
        hidden = hide(repo.id).get(name) if (hide is not None and page is not None) else None
        if not hidden or page is None:
            return page
        doc = json.loads(page.variants["json"][1])
        whole = None in hidden
        files = [] if whole else [f for f in doc.get("files", []) if _version(f["filename"]) not in hidden]
        versions = [] if whole else [v for v in doc.get("versions", []) if v not in hidden]
        status = ("quarantined", str(hidden[None])) if whole else None
        variants = render_entries(name, files, versions, status=status)
        return Page(page.version, {k: (b'"%s"' % hashlib.sha256(body).hexdigest()[:32].encode(), body)
                                   for k, body in variants.items()}, page.meta)

    @staticmethod
    def _parse_page(name: str, resp: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
        try:
            entries, versions = parse_upstream_page(resp.content, resp.headers.get("content-type", ""), str(resp.url))
        except UnreadablePage as exc:
            raise UnreadableUpstream(f"an unreadable index page for '{name}': {exc}")
        files = []
        for e in entries:
            files.append({"filename": e["filename"], "url": _local_url(e["sha256"], e["filename"]),
                          "hashes": {"sha256": e["sha256"]}, "requires-python": e["requires-python"],
                          "yanked": e["yanked"], "core-metadata": e["core-metadata"], "size": e["size"],
                          "upload-time": e["upload-time"]})
        if versions is None:
            versions = []
            for e in entries:
                try:
                    versions.append(parse.parse_filename(e["filename"])[1])
                except parse.InvalidArtifact:
                    pass
        meta = {"upstream": {e["filename"]: [e["upstream"], e["sha256"],
                                             e["core-metadata"].get("sha256") if isinstance(e["core-metadata"], dict)
                                             else bool(e["core-metadata"])] for e in entries}}
        return render_entries(name, files, versions), meta

    # -- files ------------------------------------------------------------------------------------------------
    async def serve_file(self, repo: RepoInfo, sha: str, filename: str, scope: Scope, send: Send) -> None:
        if not await send_published(self.core, repo.name, sha, filename, scope, send):
            await self.fetch_file(repo, sha, filename, scope, send)

    def _source(self, repo: RepoInfo, sha: str, filename: str) -> tuple[str, list[Any]]:
        base = filename.removesuffix(".metadata")
        try:
            name = parse.parse_filename(base)[0]
        except parse.InvalidArtifact:
            raise HTTPError(404, f"not a Python package filename: {filename}")
        page = self.core.pages.read(repo.name, project_key(name))
        src = (page.meta.get("upstream") or {}).get(base) if page is not None else None
        if src is None or src[1] != sha:
            raise HTTPError(404, f"file not found in repository '{repo.name}': {filename}")
        return name, src

    async def fetch_file(self, repo: RepoInfo, sha: str, filename: str, scope: Scope, send: Send) -> None:
        name, src = self._source(repo, sha, filename)
        base = filename.removesuffix(".metadata")
        candidate = Candidate("python", name, parse.parse_filename(base)[1], base, origin=src[0])
        if filename.endswith(".metadata"):
            await admit(self.core, repo, scope, candidate)  # (the metadata is not stored as a package file)
            return await self._fetch_metadata(repo, sha, filename, src, scope, send)

        def record(ref: BlobRef, path: Path | None) -> None:
            info = _try_parse(str(path), filename) if path is not None else None
            self._record(repo, name, filename, ref.sha256, info, src[0])

        await fetch_file(self.core, repo, src[0], filename=filename, expect={"sha256": sha}, scope=scope, send=send,
                         record=record, candidate=candidate, flight_key=f"file:{repo.name}:{sha}",
                         serve_cached=lambda: send_published(self.core, repo.name, sha, filename, scope, send))

    def _record(self, repo: RepoInfo, name: str, filename: str, sha: str, info: "parse.PythonArtifact | None", origin: str) -> None:
        """Record a fetched file like an upload (with its origin), then make it downloadable here."""
        size = self.core.blobs.local_path(sha).stat().st_size  # type: ignore[union-attr]
        try:
            pname, version, kind = parse.parse_filename(filename)
        except parse.InvalidArtifact:
            pname, version, kind = name, "0", None
        meta_ref = self.core.blobs.put_bytes(info.metadata_bytes) if info and info.metadata_bytes else None
        meta: dict[str, Any] = {"requires_python": info.requires_python if info else None}
        if info is not None:
            meta.update(display_name=info.display_name, python_version=info.python_version, summary=info.summary,
                        metadata_version=info.metadata_version, metadata=info.metadata)
        new = NewArtifact(format="python", name=pname, version=version, filename=filename, blob=BlobRef(sha, size, {"sha256": sha}),
                          kind=kind, meta=meta, metadata_blob=meta_ref, origin=origin)
        try:
            result = self.core.ingest(repo, new, actor=f"proxy:{self.core.upstream(repo).host}",
                                      allow_overwrite=True, action="proxy_fetch", audit_tag=AuditTag.FILE_CACHE)
        except FileExists:  # pragma: no cover - allow_overwrite makes this unreachable
            return
        # no re-render: a proxy's project pages mirror the upstream; the file becomes downloadable here, and the
        # root list (what this proxy holds) is re-rendered on its next request if the project is new here
        link_files(self.core, repo, [result.file])
        if result.created:
            if self.core.content.last_change(repo, pname, result.version) < 0:
                self.core.pages.mark_stale(repo.name, ROOT_KEY, result.version)
            self.core.mark_published(repo.name, result.version)

    async def _fetch_metadata(self, repo: RepoInfo, sha: str, filename: str, src: list[Any], scope: Scope, send: Send) -> None:
        expected = src[2]
        if not expected:
            raise HTTPError(404, f"the upstream offers no metadata file for {filename.removesuffix('.metadata')}")
        async with self.core.flights.flight(f"meta:{repo.name}:{sha}"):
            if self.core.pages.file_path(repo.name, sha, filename) is None:
                up = self.core.upstream(repo)
                resp = await up.get(src[0] + ".metadata", headers={"Accept-Encoding": "identity"}, max_bytes=16 * 1024 * 1024)
                if resp.status_code != 200:
                    raise UpstreamError(f"upstream {up.base} answered {resp.status_code} for {filename}")
                import hashlib

                if isinstance(expected, str) and hashlib.sha256(resp.content).hexdigest() != expected:
                    raise UpstreamError(f"upstream {up.base} sent {filename} with a digest other than its index says; "
                                        "nothing was cached")
                ref = await anyio.to_thread.run_sync(self.core.blobs.put_bytes, resp.content)
                path = self.core.blobs.local_path(ref.sha256)
                if path is not None:
                    self.core.pages.link_file(repo.name, sha, filename, path)
        await self.serve_file(repo, sha, filename, scope, send)


def _try_parse(path: str, filename: str) -> "parse.PythonArtifact | None":
    try:
        return parse.parse_artifact(path, filename)
    except parse.InvalidArtifact as exc:  # the upstream's file: cache it as it is, note why metadata is missing
        log.info("proxied file has unreadable metadata", extra={"fields": {"file": filename, "reason": exc.reason}})
        return None
