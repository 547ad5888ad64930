"""Python group repositories: one index merged from ordered members, with the dependency-confusion guard.

Which members are consulted for a name (the guard and reserved patterns) is decided in ``wharf.core.groups``."""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from ...asgi import HTTPError, Scope, Send
from ...core.groups import gather
from ...core.interfaces import RepoInfo
from ...core.pages import Page
from ...core.published import refuse_withheld
from . import parse
from .index import project_key, render_entries, root_page, send_published

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core
    from .proxy import PythonProxy

__all__ = ["PythonGroup"]


class PythonGroup:
    def __init__(self, core: "Core", proxy: "PythonProxy"):
        self.core = core
        self.proxy = proxy
        # (group, name) -> (member page etags, signature, merged page): a merge is a pure function of its parts
        self._sigs: dict[tuple[str, str], tuple[tuple[Any, ...], str, Page]] = {}
        # (group, name) -> [group settings, member page signatures, earliest proxy expiry, merged page, page
        # generation when the signatures were last seen to hold]
        self._fast: dict[tuple[str, str], list[Any]] = {}

    # -- resolution -------------------------------------------------------------------------------------------
    async def plan(self, group: RepoInfo, name: str) -> list[dict[str, Any]]:
        """For each effective member: its page (or None), and whether it is used or hidden and why."""
        key = project_key(name)
        return await gather(self.core, group, name, local_page=lambda m: self.core.pages.read(m.name, key),
                            proxy_page=lambda m: self.proxy.ensure_page(m, name), missing="does not have this project")

    async def page(self, group: RepoInfo, name: str) -> Page | None:
        """The merged page to serve. When no member's page file changed since the last merge and no proxy page is
        due for revalidation, the memoised merge is served without reading member pages: while no page was written
        at all (the store's generation) that needs no system call, otherwise one ``stat`` per member."""
        key = project_key(name)
        pages = self.core.pages
        hit = self._fast.get((group.name, name))
        if hit is not None and hit[0] is group and time.time() < hit[2]:
            generation = pages.generation()
            if hit[4] == generation:
                return hit[3]
            if all(pages.signature(m, key) == sig for m, sig in hit[1]):
                hit[4] = generation  # (read before the signatures: a write after them changes it again)
                return hit[3]
        generation = pages.generation()
        members = [m.name for m in self.core.members(group)]
        before = tuple((m, pages.signature(m, key)) for m in members)
        page, plan = await self.merged(group, name)
        if page is None or any(p.get("error") for p in plan):
            return page
        exp = float("inf")
        for p in plan:
            if p["kind"] == "proxy" and (p["used"] or p["reason"] == "does not have this project"):
                cached = pages.read(p["member"], key)
                exp = min(exp, float(cached.meta.get("exp", 0)) if cached is not None else 0.0)
        after = tuple((m, pages.signature(m, key)) for m in members)
        if before == after and exp > time.time():  # nothing moved while merging: the memo is exact
            if len(self._fast) > 50_000:
                self._fast.clear()
            # the generation read before the merge: the merge itself writes the group's page, so it differs now
            self._fast[(group.name, name)] = [group, after, exp, page, generation]
        return page

    def fresh_until(self, group: RepoInfo, name: str, page: Page | None) -> float | None:
        """Until when ``page``, just served for ``name`` from ``group``, stays what the group serves while no page or
        setting changes (its first proxy member's page is due for revalidation then); None if it is not the memoised
        merge, or a member has address rules (checked on every request)."""
        hit = self._fast.get((group.name, name))
        if page is None or hit is None or hit[3] is not page or hit[0] is not group:
            return None
        if any(member.access is not None for member in self.core.members(group)):
            return None
        return float(hit[2])

    async def merged(self, group: RepoInfo, name: str) -> tuple[Page | None, list[dict[str, Any]]]:
        plan = await self.plan(group, name)
        used = [p for p in plan if p["used"]]
        if not used:
            errors = [p["error"] for p in plan if p.get("error")]
            if errors:
                raise errors[0]
            return None, plan
        parts = tuple((p["member"], p["page"].variants["json"][0]) for p in used)
        memo = self._sigs.get((group.name, name))
        if memo is not None and memo[0] == parts:
            return memo[2], plan  # the merge of exactly these member pages (a pure function of them)
        key = project_key(name)
        cached = self.core.pages.read(group.name, key)
        sig = hashlib.sha256(json.dumps([[m, etag.decode()] for m, etag in parts]).encode()).hexdigest()
        if len(self._sigs) > 10_000:
            self._sigs.clear()
        if cached is not None and cached.meta.get("sig") == sig:
            self._sigs[(group.name, name)] = (parts, sig, cached)
            return cached, plan
        files: list[dict[str, Any]] = []
        sources: dict[str, str] = {}
        versions: list[str] = []
        for p in used:
            doc = json.loads(p["page"].variants["json"][1])
            versions.extend(doc.get("versions", []))
            for f in doc["files"]:
                if f["filename"] in sources:
                    continue  # the first member that lists a filename wins
                sources[f["filename"]] = p["member"]
                files.append(f)
        self.core.pages.write(group.name, key, _now_ns(), render_entries(name, files, versions),
                              {"sig": sig, "sources": sources})
        page = self.core.pages.read(group.name, key)
        if page is not None and page.meta.get("sig") == sig:
            self._sigs[(group.name, name)] = (parts, sig, page)
        return page, plan

    async def root(self, group: RepoInfo) -> Page:
        members = self.core.members(group)
        roots = [(m.name, await root_page(self.core, m)) for m in members]
        sig = hashlib.sha256(json.dumps([[n, p.variants["json"][0].decode() if p else None] for n, p in roots]).encode()).hexdigest()
        cached = self.core.pages.read(group.name, "simple/~root")
        if cached is not None and cached.meta.get("sig") == sig:
            return cached
        from .index import render_root

        names: set[str] = set()
        for _n, p in roots:
            if p is not None:
                names.update(x["name"] for x in json.loads(p.variants["json"][1])["projects"])
        self.core.pages.write(group.name, "simple/~root", _now_ns(), render_root(sorted(names)), {"sig": sig})
        page = self.core.pages.read(group.name, "simple/~root")
        assert page is not None
        return page

    async def serve_file(self, group: RepoInfo, sha: str, filename: str, scope: Scope, send: Send) -> None:
        """A download through the group comes from the member whose listing the group served."""
        base = filename.removesuffix(".metadata")
        try:
            name = parse.parse_filename(base)[0]
        except parse.InvalidArtifact:
            raise HTTPError(404, f"not a Python package filename: {filename}")
        page = await self.page(group, name)
        member_name = (page.meta.get("sources") or {}).get(base) if page is not None else None
        member = self.core.repos.get(member_name) if member_name else None
        if member is None:  # not listed because a member withholds it: 403 with the reason
            refuse_withheld(self.core, group, name, parse.parse_filename(base)[1])
            raise HTTPError(404, f"file not found in group '{group.name}': {filename}")
        if member.kind == "proxy":
            return await self.proxy.serve_file(member, sha, filename, scope, send)
        if not await send_published(self.core, member.name, sha, filename, scope, send):
            raise HTTPError(404, f"file not found in group '{group.name}': {filename}")

    async def explain(self, group: RepoInfo, name: str) -> dict[str, Any]:
        name = canonicalize_name(name)
        plan = await self.plan(group, name)
        page, _ = await self.merged(group, name) if any(p["used"] for p in plan) else (None, plan)
        sources = (page.meta.get("sources") or {}) if page is not None else {}
        members = []
        for p in plan:
            files = json.loads(p["page"].variants["json"][1])["files"] if p["page"] is not None else []
            members.append({
                "member": p["member"], "kind": p["kind"], "used": p["used"], "reason": p["reason"],
                "versions": sorted({_version(f["filename"]) for f in files} - {None}),
                "files_served": sorted(f["filename"] for f in files if sources.get(f["filename"]) == p["member"]),
                "files_shadowed": sorted(f["filename"] for f in files if f["filename"] in sources
                                         and sources[f["filename"]] != p["member"]),
            })
        # what the guard hid: ask hidden proxies only from their cache, never the upstream
        for item, p in zip(members, plan):
            if p["kind"] == "proxy" and not p["used"] and p["reason"] and ("guard" in p["reason"] or "reserved" in p["reason"]):
                cached = self.core.pages.read(p["member"], project_key(name))
                if cached is not None and not cached.meta.get("missing"):
                    item["hidden_versions_cached"] = sorted(
                        {_version(f["filename"]) for f in json.loads(cached.variants["json"][1])["files"]} - {None})
        return {"group": group.name, "name": name, "guard": group.config.get("guard", True),
                "reserved": group.config.get("reserved", []), "members": members}


def _version(filename: str) -> str | None:
    try:
        return parse.parse_filename(filename)[1]
    except parse.InvalidArtifact:
        return None


def _now_ns() -> int:
    import time

    return time.time_ns()
