"""npm group repositories: one packument merged from ordered members, with the dependency-confusion guard.

Which members are consulted for a name is decided by ``wharf.core.groups.route`` (guard + reserved patterns).
Merging: each version comes from the first consulted member that has it (its version object, dist included, as
that member serves it; the tarball is then fetched through that member). dist-tags: for each tag the first member
that defines it wins, except ``latest``, which is the highest of the members' ``latest`` versions (a hosted
member's old ``latest`` does not hide a newer release of a proxied package when the guard lets both through).
Merged pages are cached under the group, keyed by the members' page ETags, so they are rebuilt only on change.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from ...asgi import HTTPError, Scope, Send
from ...core.groups import gather
from ...core.interfaces import RepoInfo
from ...core.pages import Page
from ...core.published import send_published
from . import parse
from .index import packument_key, page_files, render_packument

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core
    from .proxy import NpmProxy

__all__ = ["NpmGroup"]


class NpmGroup:
    def __init__(self, core: "Core", proxy: "NpmProxy"):
        self.core = core
        self.proxy = proxy
        self._sigs: dict[tuple[str, str], tuple[tuple[Any, ...], str]] = {}

    async def plan(self, group: RepoInfo, name: str) -> list[dict[str, Any]]:
        """For each effective member: whether it is consulted, its page (or None), and why it is not used."""
        key = packument_key(name)
        return await gather(self.core, group, name, local_page=lambda m: self.core.pages.read(m.name, key),
                            proxy_page=lambda m: self.proxy.packument(m, name), missing="does not have this package")

    async def packument(self, group: RepoInfo, name: str) -> Page | None:
        try:
            parse.check_name(name, new=False)
        except parse.InvalidPackage:
            return None
        if not parse.storable(name):
            return None
        page, _plan = await self.merged(group, name)
        return page

    async def merged(self, group: RepoInfo, name: str) -> tuple[Page | None, list[dict[str, Any]]]:
        plan = await self.plan(group, name)
        used = [p for p in plan if p["used"]]
        if not used:
            errors = [p["error"] for p in plan if p.get("error")]
            if errors:
                raise errors[0]
            return None, plan
        parts = tuple((p["member"], p["page"].variants["full"][0]) for p in used)
        key = packument_key(name)
        cached = self.core.pages.read(group.name, key)
        memo = self._sigs.get((group.name, name))
        if cached is not None and memo is not None and memo[0] == parts and cached.meta.get("sig") == memo[1]:
            return cached, plan  # made from exactly these member pages
        sig = hashlib.sha256(json.dumps([[m, etag.decode()] for m, etag in parts]).encode()).hexdigest()
        if len(self._sigs) > 10_000:
            self._sigs.clear()
        self._sigs[(group.name, name)] = (parts, sig)
        if cached is not None and cached.meta.get("sig") == sig:
            return cached, plan
        versions: dict[str, dict[str, Any]] = {}
        times: dict[str, str | None] = {}
        sources: dict[str, str] = {}
        tags: dict[str, str] = {}
        latest: list[str] = []
        for p in used:
            doc = json.loads(p["page"].variants["full"][1])
            member_times = doc.get("time") or {}
            for v, obj in (doc.get("versions") or {}).items():
                if v in versions:
                    continue  # the first member that has a version wins
                versions[v] = obj
                times[v] = member_times.get(v)
                sources[parse.tarball_filename(name, v)] = p["member"]
            for t, v in (doc.get("dist-tags") or {}).items():
                if t == "latest":
                    latest.append(v)
                else:
                    tags.setdefault(t, v)
        present = [v for v in latest if v in versions]
        if present:
            tags["latest"] = max(present, key=parse.semver_key)
        ordered = dict(sorted(versions.items(), key=lambda kv: parse.semver_key(kv[0])))
        variants = render_packument(name, ordered, times, tags, f"1-{sig[:16]}")
        self.core.pages.write(group.name, key, time.time_ns(), variants, {"sig": sig, "sources": sources})
        return self.core.pages.read(group.name, key), plan

    async def tarball(self, group: RepoInfo, name: str, filename: str, scope: Scope, send: Send) -> None:
        """A tarball through the group comes from the member whose version the group's packument lists."""
        page = await self.packument(group, name)
        member_name = (page.meta.get("sources") or {}).get(filename) if page is not None else None
        member = self.core.repos.get(member_name) if member_name else None
        if member is None:
            raise HTTPError(404, f"tarball '{filename}' of '{name}' not found in group '{group.name}'")
        if member.kind == "proxy":
            return await self.proxy.tarball(member, name, filename, scope, send)
        sha = page_files(self.core.pages.read(member.name, packument_key(name))).get(filename)
        if sha is None or not await send_published(self.core, member.name, sha, filename, scope, send):
            raise HTTPError(404, f"tarball '{filename}' of '{name}' not found in group '{group.name}'")

    async def explain(self, group: RepoInfo, name: str) -> dict[str, Any]:
        plan = await self.plan(group, name)
        page, _ = await self.merged(group, name) if any(p["used"] for p in plan) else (None, plan)
        sources = (page.meta.get("sources") or {}) if page is not None else {}
        members = []
        for p in plan:
            m = p["repo"]
            versions = sorted(json.loads(p["page"].variants["abbr"][1]).get("versions", {}), key=parse.semver_key) \
                if p["page"] is not None else []
            item: dict[str, Any] = {
                "member": m.name, "kind": m.kind, "used": p["used"], "reason": p["reason"], "versions": versions,
                "versions_served": [v for v in versions if sources.get(parse.tarball_filename(name, v)) == m.name],
                "versions_shadowed": [v for v in versions if parse.tarball_filename(name, v) in sources
                                      and sources[parse.tarball_filename(name, v)] != m.name],
            }
            if m.kind == "proxy" and not p["used"] and p["reason"] and ("guard" in p["reason"] or "reserved" in p["reason"]):
                # what the guard hid: from the proxy's cache only, never asking the upstream
                cached = self.core.pages.read(m.name, packument_key(name))
                if cached is not None and not cached.meta.get("missing"):
                    item["hidden_versions_cached"] = sorted(json.loads(cached.variants["abbr"][1]).get("versions", {}),
                                                            key=parse.semver_key)
            members.append(item)
        return {"group": group.name, "name": name, "guard": group.config.get("guard", True),
                "reserved": group.config.get("reserved", []), "members": members}
