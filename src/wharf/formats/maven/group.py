"""Maven group repositories: ``maven-metadata.xml`` merged across members (union of versions, latest/release
recomputed), files and SNAPSHOT metadata from the first member that has them, the dependency-confusion guard and
reserved patterns of ``wharf.core.groups.route``.

Reserved patterns are matched against the lower-cased ``groupId:artifactId`` (``com.acme:*`` reserves the
artifacts of group ``com.acme``, ``com.acme.*`` those of its sub-groups), so a change of case does not escape them.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from ...asgi import HTTPError, Scope, Send
from ...core.groups import MemberRoute, route
from ...core.interfaces import RepoInfo
from ...core.pages import Page
from ...core.published import refuse_withheld
from ...core.upstream import UpstreamError
from . import metadata as md
from . import parse, store
from .parse import ArtifactFile, ChecksumPath, MavenPath, MetadataPath
from .serve import TEXT, XML, serve_local, serve_variant
from .versions import sort_versions

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core
    from .proxy import MavenProxy

__all__ = ["MavenGroup"]

_MERGED_CACHE = 4096


class MavenGroup:
    def __init__(self, core: "Core", proxy: "MavenProxy"):
        self.core = core
        self.proxy = proxy
        self._merged: OrderedDict[tuple[str, str], tuple[tuple[Any, ...], Page]] = OrderedDict()

    def routes(self, group: RepoInfo, name: str) -> list[MemberRoute]:
        group_id, _, artifact_id = name.partition(":")
        key = store.metadata_key(MetadataPath(group_id, artifact_id, None).path)
        return route(self.core, group, name.lower(), hosted_has=lambda m, _n: self.core.pages.exists(m.name, key))

    async def _member_metadata(self, member: RepoInfo, at: MetadataPath) -> Page | None:
        if member.kind == "proxy":
            return await self.proxy.metadata_page(member, at)
        page = self.core.pages.read(member.name, store.metadata_key(at.path))
        return page if page is not None and page.variants else None

    async def _plan(self, group: RepoInfo, at: MetadataPath) -> list[dict[str, Any]]:
        """Per effective member: consulted or not (and why), and its metadata document for ``at``."""
        out = []
        for r in self.routes(group, at.name):
            item: dict[str, Any] = {"member": r.member, "consulted": r.consult, "reason": r.reason, "page": None}
            out.append(item)
            if not r.consult:
                continue
            try:
                item["page"] = await self._member_metadata(r.member, at)
            except UpstreamError as exc:
                item["reason"] = f"upstream unavailable: {exc.message}"
                item["error"] = exc
                continue
            if item["page"] is None:
                item["reason"] = "does not have it"
        return out

    async def metadata(self, group: RepoInfo, at: MetadataPath) -> Page | None:
        plan = await self._plan(group, at)
        used = [p for p in plan if p["page"] is not None]
        if not used:
            errors = [p["error"] for p in plan if p.get("error")]
            if errors:
                raise errors[0]
            return None
        if at.version is not None:  # a SNAPSHOT version's builds come from the first member that has the version
            return used[0]["page"]
        sig = tuple((p["member"].name, p["page"].variants["xml"][0]) for p in used)
        hit = self._merged.get((group.name, at.path))
        if hit is not None and hit[0] == sig:
            self._merged.move_to_end((group.name, at.path))
            return hit[1]
        docs = [md.read_artifact_metadata(p["page"].variants["xml"][1], f"{p['member'].name}:{at.path}") for p in used]
        body = md.render_artifact(md.merge_artifact(at.group_id, at.artifact_id, docs))
        page = Page(0, {k: (b'"%s"' % hashlib.sha256(v).hexdigest()[:32].encode(), v) for k, v in md.checksum_variants(body).items()})
        self._merged[(group.name, at.path)] = (sig, page)
        while len(self._merged) > _MERGED_CACHE:
            self._merged.popitem(last=False)
        return page

    async def serve(self, group: RepoInfo, what: MavenPath, scope: Scope, send: Send) -> None:
        target = what.target if isinstance(what, ChecksumPath) else what
        if isinstance(target, MetadataPath):
            page = await self.metadata(group, target)
            if page is None:
                raise HTTPError(404, f"no member of group '{group.name}' has /{target.path}")
            variant = what.algorithm if isinstance(what, ChecksumPath) else "xml"
            return await serve_variant(scope, send, page, variant, TEXT if variant != "xml" else XML)
        error: UpstreamError | None = None
        for r in self.routes(group, target.name):
            if not r.consult:
                continue
            m = r.member
            if m.kind == "proxy":
                try:
                    if await self.proxy.try_serve(m, what, scope, send):
                        return
                except UpstreamError as exc:
                    error = error or exc
            elif await serve_local(self.core, m.name, what, scope, send):
                return
        if error is not None:
            raise error
        if isinstance(target, ArtifactFile):  # withheld by a member (quarantine): 403 with the reason
            refuse_withheld(self.core, group, target.name, target.version)
        raise HTTPError(404, f"no member of group '{group.name}' has /{_path(what)}")

    async def explain(self, group: RepoInfo, name: str) -> dict[str, Any]:
        try:
            name = parse.parse_name(name)
        except parse.InvalidPath as exc:
            raise HTTPError(400, str(exc))
        group_id, _, artifact_id = name.partition(":")
        plan = await self._plan(group, MetadataPath(group_id, artifact_id, None))
        members = []
        source: dict[str, str] = {}
        for p in plan:
            versions = []
            if p["page"] is not None:
                versions = md.read_artifact_metadata(p["page"].variants["xml"][1], p["member"].name).versions
                for v in versions:
                    source.setdefault(v, p["member"].name)
            members.append({"member": p["member"].name, "kind": p["member"].kind, "consulted": p["consulted"],
                            "used": p["page"] is not None, "reason": p["reason"], "versions": versions})
        return {"group": group.name, "name": name, "members": members,
                "versions": [{"version": v, "member": source[v]} for v in sort_versions(source)]}


def _path(what: MavenPath) -> str:
    return f"{what.target.path}.{what.algorithm}" if isinstance(what, ChecksumPath) else what.path
