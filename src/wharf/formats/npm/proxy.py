"""npm proxy repositories: upstream packuments cached with a TTL (re-validated), tarballs cached forever on first
request, verified against the upstream's ``dist.integrity`` (sha512) or ``dist.shasum`` (sha1)."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

import anyio.to_thread

from ...asgi import HTTPError, Scope, Send
from ...core.audit import AuditTag
from ...core.content import NewArtifact
from ...core.interfaces import RepoInfo
from ...core.pages import Page
from ...core.ingest import Candidate
from ...core.proxying import UnreadableUpstream, cached_document, fetch_file
from ...core.published import link_file, send_published
from ...storage import BlobRef
from . import parse
from .index import packument_key, render_packument, tarball_path

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core

__all__ = ["NpmProxy", "parse_upstream_packument"]

log = logging.getLogger("wharf.npm.proxy")

_MEMO_MAX = 200_000


def parse_upstream_packument(name: str, content: bytes, url: str) -> tuple[dict[str, bytes], dict[str, Any]]:
    """An upstream's full packument -> our two variants (tarball URLs made host-less, see index.py) and, per
    tarball filename, where it comes from and the digest it must have."""
    try:
        doc = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise UnreadableUpstream(f"the packument of '{name}' is not JSON: {str(exc)[:200]}")
    if not isinstance(doc, dict) or not isinstance(doc.get("versions", {}), dict):
        raise UnreadableUpstream(f"the packument of '{name}' is not a JSON object with 'versions'")
    if doc.get("name", name) != name:
        raise UnreadableUpstream(f"asked for '{name}', the upstream answered with {str(doc.get('name'))[:100]!r}")
    versions: dict[str, dict[str, Any]] = {}
    times: dict[str, str | None] = {}
    sources: dict[str, list[Any]] = {}
    up_times = doc.get("time") if isinstance(doc.get("time"), dict) else {}
    for v, m in (doc.get("versions") or {}).items():
        if not parse.is_semver(v) or not isinstance(m, dict) or not isinstance(m.get("dist"), dict):
            continue  # nothing we could serve safely under a tarball name
        dist = dict(m["dist"])
        tarball = dist.get("tarball")
        if not isinstance(tarball, str) or not tarball:
            continue
        expect: dict[str, str] = {}
        sha512 = parse.parse_integrity(dist.get("integrity")).get("sha512")
        if sha512:
            expect["sha512"] = sha512[0]
        elif isinstance(dist.get("shasum"), str) and len(dist["shasum"]) == 40:
            expect["sha1"] = dist["shasum"].lower()
        else:
            log.info("upstream version without digest skipped", extra={"fields": {"package": name, "version": v}})
            continue
        filename = parse.tarball_filename(name, v)
        sources[filename] = [urljoin(url, tarball), expect, v]
        dist["tarball"] = tarball_path(name, v)
        versions[v] = {**m, "name": m.get("name", name), "version": v, "dist": dist}
        t = up_times.get(v)
        times[v] = t if isinstance(t, str) else None
    tags = doc.get("dist-tags") if isinstance(doc.get("dist-tags"), dict) else {}
    ordered = dict(sorted(versions.items(), key=lambda kv: parse.semver_key(kv[0])))
    rev = doc.get("_rev") if isinstance(doc.get("_rev"), str) else "1-upstream"
    return render_packument(name, ordered, times, tags, rev), {"upstream": sources}


class NpmProxy:
    def __init__(self, core: "Core"):
        self.core = core
        self._shas: dict[tuple[str, str], str] = {}  # (repo, key) -> sha256 of a cached tarball (immutable)

    async def packument(self, repo: RepoInfo, name: str, *, allow_stale: bool = False) -> Page | None:
        """The upstream's packument (cached; re-validated after the TTL; stale-if-error). None if it has none."""
        try:
            parse.check_name(name, new=False)
        except parse.InvalidPackage:
            return None  # never ask the upstream for something that is not a package name (e.g. a path)
        if not parse.storable(name):
            return None
        up = self.core.upstream(repo)
        url = up.base.rstrip("/") + "/" + parse.escaped(name)
        page = await cached_document(self.core, repo, packument_key(name), url,
                                     parse=lambda resp: parse_upstream_packument(name, resp.content, str(resp.url)),
                                     headers={"Accept": "application/json"}, allow_stale=allow_stale)
        return self._withhold(repo, name, page)

    def _withhold(self, repo: RepoInfo, name: str, page: Page | None) -> Page | None:
        """The mirrored packument without the versions core withholds here (quarantine); the stored page stays
        as the upstream sent it."""
        hide = self.core.content.hide
        hidden = hide(repo.id).get(name) if (hide is not None and page is not None) else None
        if not hidden or page is None:
            return page
        doc = json.loads(page.variants["full"][1])
        versions = {v: m for v, m in (doc.get("versions") or {}).items() if None not in hidden and v not in hidden}
        times = {v: t for v, t in (doc.get("time") or {}).items() if v in versions}
        variants = render_packument(name, versions, times, doc.get("dist-tags") or {}, str(doc.get("_rev") or "1"))
        return Page(page.version, {k: (b'"%s"' % hashlib.sha256(body).hexdigest()[:32].encode(), body)
                                   for k, body in variants.items()}, page.meta)

    def _cached_sha(self, repo: RepoInfo, key: str) -> str | None:
        sha = self._shas.get((repo.name, key))
        if sha is None:
            sha = self.core.content.live_sha256(repo.id, key)
            if sha is not None:
                if len(self._shas) > _MEMO_MAX:
                    self._shas.clear()
                self._shas[(repo.name, key)] = sha
        return sha

    async def _send_cached(self, repo: RepoInfo, key: str, filename: str, scope: Scope, send: Send) -> bool:
        sha = self._shas.get((repo.name, key))
        if sha is None:
            sha = await anyio.to_thread.run_sync(self._cached_sha, repo, key)
        if sha is None:
            return False
        if await send_published(self.core, repo.name, sha, filename, scope, send):
            return True
        self._shas.pop((repo.name, key), None)  # removed by an admin meanwhile
        return False

    async def tarball(self, repo: RepoInfo, name: str, filename: str, scope: Scope, send: Send) -> None:
        key = f"{name}/-/{filename}"
        if await self._send_cached(repo, key, filename, scope, send):
            return
        page = await self.packument(repo, name, allow_stale=True)
        src = (page.meta.get("upstream") or {}).get(filename) if page is not None else None
        if src is None:
            raise HTTPError(404, f"tarball '{filename}' of '{name}' not found in repository '{repo.name}' nor on its "
                                 "upstream")
        url, expect, version = src

        def record(ref: BlobRef, path: Path | None) -> None:
            self._record(repo, name, version, filename, key, ref, path, url, expect)

        await fetch_file(self.core, repo, url, filename=filename, expect=expect, scope=scope, send=send,
                         record=record, candidate=Candidate("npm", name, version, filename, origin=url),
                         flight_key=f"tgz:{repo.name}:{key}",
                         serve_cached=lambda: self._send_cached(repo, key, filename, scope, send))

    def _record(self, repo: RepoInfo, name: str, version: str, filename: str, key: str, ref: BlobRef,
                path: Path | None, url: str, expect: dict[str, str]) -> None:
        """Record a fetched tarball like a publish (with its origin), then make it downloadable here."""
        manifest: dict[str, Any] = {}
        if path is not None:
            try:
                pkg = parse.read_tarball(str(path))
                manifest = {k: pkg[k] for k in ("name", "version", "description", "license") if k in pkg}
            except parse.InvalidPackage as exc:  # the upstream's file, verified by digest: cached as it is
                log.info("proxied tarball unreadable", extra={"fields": {"file": filename, "reason": exc.reason}})
        meta: dict[str, Any] = {"manifest": manifest}
        if "sha512" in expect:
            meta["integrity"] = parse.sri("sha512", expect["sha512"])
        if "sha1" in expect:
            meta["shasum"] = expect["sha1"]
        new = NewArtifact(format="npm", name=name, version=version, filename=filename, blob=ref, kind="tarball",
                          key=key, meta=meta, origin=url)
        result = self.core.ingest(repo, new, actor=f"proxy:{self.core.upstream(repo).host}",
                                  allow_overwrite=True, action="proxy_fetch", audit_tag=AuditTag.FILE_CACHE)
        link_file(self.core, repo.name, ref.sha256, filename)
        self._shas[(repo.name, key)] = ref.sha256
        if result.created:
            self.core.mark_published(repo.name, result.version)
