"""Cargo proxy repositories: a sparse-registry upstream's index files cached with a TTL (conditional revalidation,
stale-if-error), its ``config.json`` read for the ``dl`` template, .crate files cached forever and verified against
the index ``cksum``."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import TYPE_CHECKING, Any

from ...asgi import HTTPError, Scope, Send
from ...core.interfaces import RepoInfo
from .index import crate_filename, lookup_version
from .parse import index_path, normalize_name, parse_semver

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from ...core.pages import Page
    from ...core.services import Core

__all__ = ["CargoProxy", "expand_dl", "parse_index_file"]

log = logging.getLogger("wharf.cargo.proxy")

CONFIG_KEY = "upstream-config"
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_MARKERS = ("{crate}", "{version}", "{prefix}", "{lowerprefix}", "{sha256-checksum}")
_MAX_INDEX_FILE = 64 * 1024 * 1024


def _prefix(name: str) -> str:
    """The index directory of a crate, in the name's own case (cargo's ``{prefix}`` marker)."""
    n = len(name)
    if n <= 2:
        return str(n)
    if n == 3:
        return f"3/{name[0]}"
    return f"{name[:2]}/{name[2:4]}"


def expand_dl(dl: str, name: str, version: str, cksum: str) -> str:
    """A download URL from a registry's ``dl`` template (cargo's rules: without markers, append
    ``/{crate}/{version}/download``)."""
    if not any(m in dl for m in _MARKERS):
        return f"{dl.rstrip('/')}/{name}/{version}/download"
    return (dl.replace("{crate}", name).replace("{version}", version).replace("{prefix}", _prefix(name))
            .replace("{lowerprefix}", _prefix(name).lower()).replace("{sha256-checksum}", cksum))


def parse_index_file(body: bytes, name: str) -> tuple[bytes, str]:
    """Check an upstream index file: JSON lines, each an object for this crate with ``vers`` (semver) and a sha256
    ``cksum``. Returns the lines re-joined (blank lines dropped) and the crate's name as the upstream spells it."""
    from ...core.proxying import UnreadableUpstream

    lines = []
    spelled = None
    for raw in body.splitlines():
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError as exc:
            raise UnreadableUpstream(f"an index line is not JSON ({exc})")
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise UnreadableUpstream("an index line is not an object with a name")
        if entry["name"].lower() != name:
            raise UnreadableUpstream(f"the index file of `{name}` lists the crate `{entry['name'][:80]}`")
        if not isinstance(entry.get("cksum"), str) or not _SHA256_RE.fullmatch(entry["cksum"]):
            raise UnreadableUpstream(f"version {str(entry.get('vers'))[:40]!r} has no sha256 cksum")
        try:
            parse_semver(entry.get("vers"))
        except ValueError as exc:
            raise UnreadableUpstream(str(exc))
        spelled = entry["name"]
        lines.append(raw.strip())
    if spelled is None:
        raise UnreadableUpstream(f"the index file of `{name}` is empty")
    return b"".join(line + b"\n" for line in lines), spelled


class CargoProxy:
    def __init__(self, core: "Core"):
        self.core = core

    # -- upstream config.json ---------------------------------------------------------------------------------
    async def upstream_config(self, repo: RepoInfo) -> dict[str, Any]:
        from ...core.proxying import UnreadableUpstream, cached_document
        from ...core.upstream import UpstreamError

        up = self.core.upstream(repo)

        def parse(resp: "httpx.Response") -> tuple[dict[str, bytes], dict[str, Any]]:
            try:
                doc = json.loads(resp.content)
            except ValueError as exc:
                raise UnreadableUpstream(f"config.json is not JSON ({exc})")
            if not isinstance(doc, dict) or not isinstance(doc.get("dl"), str):
                raise UnreadableUpstream("config.json has no `dl`")
            return {"json": resp.content}, {"dl": doc["dl"], "api": doc.get("api")}

        page = await cached_document(self.core, repo, CONFIG_KEY, up.url("config.json"), parse=parse)
        if page is None:
            raise UpstreamError(f"upstream {up.base} has no config.json: is it the URL of a sparse index "
                                "(…/index/)?")
        return dict(page.meta)

    # -- index files --------------------------------------------------------------------------------------------
    async def index_page(self, repo: RepoInfo, name: str) -> "Page | None":
        """The index file of ``name`` (lower case, as cargo asks) served here: the upstream's, without the versions
        core withholds here (quarantine); None if there is none."""
        return self._withhold(repo, name, await self.mirrored(repo, name))

    def _withhold(self, repo: RepoInfo, name: str, page: "Page | None") -> "Page | None":
        from ...core.pages import Page

        hide = self.core.content.hide
        hidden = hide(repo.id).get(normalize_name(name)) if (hide is not None and page is not None) else None
        if not hidden or page is None:
            return page
        if None in hidden:
            return None
        body = b"".join(line + b"\n" for line in page.variants["text"][1].splitlines()
                        if line.strip() and json.loads(line).get("vers") not in hidden)
        if not body:
            return None
        return Page(page.version, {"text": (b'"%s"' % hashlib.sha256(body).hexdigest()[:32].encode(), body)}, page.meta)

    async def mirrored(self, repo: RepoInfo, name: str) -> "Page | None":
        """The upstream's index file of ``name``, cached as it was sent; None if it has none."""
        from ...core.proxying import cached_document

        path = index_path(name)
        up = self.core.upstream(repo)

        def parse(resp: "httpx.Response") -> tuple[dict[str, bytes], dict[str, Any]]:
            body, spelled = parse_index_file(resp.content, name)
            return {"text": body}, {"name": spelled}

        return await cached_document(self.core, repo, "index/" + path, up.url(path), parse=parse,
                                     headers={"Accept": "text/plain"})

    # -- .crate files -------------------------------------------------------------------------------------------
    async def serve_crate(self, repo: RepoInfo, name: str, version: str, scope: Scope, send: Send) -> None:
        from ...core.ingest import Candidate
        from ...core.proxying import fetch_file
        from ...core.published import send_published

        lower = name.lower()
        page = await self.mirrored(repo, lower)  # a withheld version is refused by the fetch's admission (403)
        entry = lookup_version(page, repo.name, version) if page is not None else None
        if entry is None:
            raise HTTPError(404, f"crate `{name}` version `{version}` not found in repository '{repo.name}' nor "
                                 f"on its upstream {repo.config['upstream']['url']}")
        sha, spelled = entry["cksum"], entry["name"]
        filename = crate_filename(spelled, version)
        if await send_published(self.core, repo.name, sha, filename, scope, send, content_type=b"application/x-tar"):
            return
        config = await self.upstream_config(repo)
        url = expand_dl(config["dl"], spelled, version, sha)
        line = json.dumps({**entry, "yanked": False}, separators=(",", ":"))

        def record(ref: Any, _temp_path: Any) -> None:
            from ...core.audit import AuditTag
            from ...core.content import NewArtifact
            from ...core.published import link_file

            new = NewArtifact(format="cargo", name=normalize_name(spelled), version=version, filename=filename,
                              blob=ref, kind="crate", origin=url,
                              key=f"{normalize_name(spelled)}/{parse_semver(version).without_build}",
                              meta={"index": line, "crate": spelled, "description": None})
            result = self.core.ingest(repo, new, actor=f"proxy:{self.core.upstream(repo).host}",
                                      allow_overwrite=True, action="proxy_fetch", audit_tag=AuditTag.FILE_CACHE)
            link_file(self.core, repo.name, sha, filename)
            if result.created:
                self.core.mark_published(repo.name, result.version)

        await fetch_file(self.core, repo, url, filename=filename, expect={"sha256": sha}, scope=scope, send=send,
                         record=record, candidate=Candidate("cargo", normalize_name(spelled), version, filename, url),
                         content_type=b"application/x-tar", flight_key=f"file:{repo.name}:{sha}",
                         serve_cached=lambda: send_published(self.core, repo.name, sha, filename, scope, send,
                                                             content_type=b"application/x-tar"))
