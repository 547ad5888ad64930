"""Cargo group repositories: index files merged from the members (the first member listing a version wins), with
the dependency-confusion guard and reserved patterns decided by ``wharf.core.groups.route``; a download comes from
the member whose line the group served."""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from ...asgi import HTTPError, Scope, Send
from ...core.interfaces import RepoInfo
from ...core.groups import gather
from .index import crate_filename, lookup_version, page_key
from .parse import index_path, normalize_name, semver_key

if TYPE_CHECKING:  # pragma: no cover
    from ...core.pages import Page
    from ...core.services import Core
    from .proxy import CargoProxy

__all__ = ["CargoGroup"]


class CargoGroup:
    def __init__(self, core: "Core", proxy: "CargoProxy"):
        self.core = core
        self.proxy = proxy
        self._sigs: dict[tuple[str, str], tuple[tuple[Any, ...], str]] = {}

    def _hosted_page(self, member: RepoInfo, name: str) -> "Page | None":
        page = self.core.pages.read(member.name, page_key(name))
        if page is None or str(page.meta.get("name", "")).lower() != name:
            return None
        return page

    async def plan(self, group: RepoInfo, name: str) -> list[dict[str, Any]]:
        """For each member: its index file (or None), whether it is used, and why not."""
        return await gather(self.core, group, normalize_name(name), local_page=lambda m: self._hosted_page(m, name),
                            proxy_page=lambda m: self.proxy.index_page(m, name), missing="does not have this crate")

    async def index_page(self, group: RepoInfo, name: str) -> "Page | None":
        page, _plan = await self.merged(group, name)
        return page

    async def merged(self, group: RepoInfo, name: str) -> tuple["Page | None", list[dict[str, Any]]]:
        plan = await self.plan(group, name)
        used = [p for p in plan if p["used"]]
        if not used:
            errors = [p["error"] for p in plan if p.get("error")]
            if errors:
                raise errors[0]
            return None, plan
        parts = tuple((p["member"], p["page"].variants["text"][0]) for p in used)
        key = "index/" + index_path(name)
        cached = self.core.pages.read(group.name, key)
        memo = self._sigs.get((group.name, name))
        if cached is not None and memo is not None and memo[0] == parts and cached.meta.get("sig") == memo[1]:
            return cached, plan  # made from exactly these member files
        sig = hashlib.sha256(json.dumps([[m, etag.decode()] for m, etag in parts]).encode()).hexdigest()
        if len(self._sigs) > 10_000:
            self._sigs.clear()
        self._sigs[(group.name, name)] = (parts, sig)
        if cached is not None and cached.meta.get("sig") == sig:
            return cached, plan
        lines: list[bytes] = []
        sources: dict[str, str] = {}
        spelled = None
        for p in used:
            for raw in p["page"].variants["text"][1].splitlines():
                try:
                    entry = json.loads(raw)
                except ValueError:
                    continue
                vers = entry.get("vers")
                if not isinstance(vers, str) or vers in sources:
                    continue  # the first member listing a version wins
                sources[vers] = p["member"]
                spelled = spelled or entry.get("name")
                lines.append(raw)
        self.core.pages.write(group.name, key, time.time_ns(), {"text": b"".join(x + b"\n" for x in lines)},
                              {"sig": sig, "sources": sources, "name": spelled or name})
        return self.core.pages.read(group.name, key), plan

    async def serve_crate(self, group: RepoInfo, name: str, version: str, scope: Scope, send: Send) -> None:
        from ...core.published import refuse_withheld, send_published

        lower = name.lower()
        page, _plan = await self.merged(group, lower)
        member_name = (page.meta.get("sources") or {}).get(version) if page is not None else None
        member = self.core.repos.get(member_name) if member_name else None
        if member is None:  # not listed because a member withholds it: 403 with the reason
            refuse_withheld(self.core, group, normalize_name(name), version)
            raise HTTPError(404, f"crate `{name}` version `{version}` not found in group '{group.name}'")
        if member.kind == "proxy":
            return await self.proxy.serve_crate(member, lower, version, scope, send)
        entry = lookup_version(page, group.name, version)  # type: ignore[arg-type]
        if entry is None or not await send_published(self.core, member.name, entry["cksum"],
                                                     crate_filename(entry["name"], version), scope, send,
                                                     content_type=b"application/x-tar"):
            raise HTTPError(404, f"crate `{name}` version `{version}` not found in group '{group.name}'")

    async def explain(self, group: RepoInfo, name: str) -> dict[str, Any]:
        lower = name.lower()
        plan = await self.plan(group, lower)
        page, _ = await self.merged(group, lower) if any(p["used"] for p in plan) else (None, plan)
        sources = (page.meta.get("sources") or {}) if page is not None else {}
        members = []
        for p in plan:
            versions = _versions(p["page"]) if p["page"] is not None else []
            item = {"member": p["member"], "kind": p["kind"], "used": p["used"], "reason": p["reason"],
                    "versions": versions,
                    "versions_served": [v for v in versions if sources.get(v) == p["member"]],
                    "versions_shadowed": [v for v in versions if v in sources and sources[v] != p["member"]]}
            if p["kind"] == "proxy" and not p["used"] and p["reason"]:
                # what the guard or a reserved pattern hid, from the proxy's cache only (never the upstream)
                cached = self.core.pages.read(p["member"], "index/" + index_path(lower))
                if cached is not None and "text" in cached.variants:
                    item["hidden_versions_cached"] = _versions(cached)
            members.append(item)
        return {"group": group.name, "name": lower, "guard": group.config.get("guard", True),
                "reserved": group.config.get("reserved", []), "members": members}


def _versions(page: "Page") -> list[str]:
    out = []
    for raw in page.variants.get("text", (b"", b""))[1].splitlines():
        try:
            vers = json.loads(raw).get("vers")
        except (ValueError, AttributeError):
            continue
        if isinstance(vers, str):
            out.append(vers)
    return sorted(set(out), key=semver_key)
