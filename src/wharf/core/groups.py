"""Group repositories: which members a name may come from (the dependency-confusion guard), for every format.

Guard (on by default): when any hosted member has a name, proxy members are not consulted for it at all (their
versions are hidden, and the internal name never reaches an upstream). Names matching the group's ``reserved``
patterns (fnmatch, case-insensitive, on the normalised name) never resolve from proxies, guard or not. The format merges what the
consulted members return (the first member wins per file or version)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from .interfaces import RepoInfo
from .upstream import UpstreamError

if TYPE_CHECKING:  # pragma: no cover
    from .pages import Page
    from .services import Core

__all__ = ["MemberRoute", "route", "reserved_pattern", "gather"]


@dataclass(frozen=True, slots=True)
class MemberRoute:
    member: RepoInfo
    consult: bool
    reason: str | None  # why a member is not consulted (None when it is)


def reserved_pattern(group: RepoInfo, name: str) -> str | None:
    """The group's reserved pattern that ``name`` matches, if any."""
    lowered = name.lower()  # patterns match whatever the case of the name (Maven coordinates keep theirs)
    return next((p for p in group.config.get("reserved", []) if fnmatch.fnmatchcase(lowered, p.lower())), None)


def route(core: "Core", group: RepoInfo, name: str, *, hosted_has: Callable[[RepoInfo, str], bool]) -> list[MemberRoute]:
    """Each effective (flattened, ordered) member of ``group``, and whether to consult it for ``name``.
    ``hosted_has(member, name)`` tells whether a hosted member holds the name (it is asked only for hosted members)."""
    members = core.members(group)
    hosted_with_name = next((m.name for m in members if m.kind == "hosted" and hosted_has(m, name)), None)
    reserved = reserved_pattern(group, name)
    guard = group.config.get("guard", True)
    out = []
    for m in members:
        reason = None
        if m.kind == "proxy":
            if reserved:
                reason = f"name matches the reserved pattern '{reserved}': never taken from proxies"
            elif guard and hosted_with_name:
                reason = f"hidden by the dependency-confusion guard: the name exists in hosted member '{hosted_with_name}'"
        out.append(MemberRoute(m, reason is None, reason))
    return out


async def gather(core: "Core", group: RepoInfo, name: str, *, local_page: Callable[[RepoInfo], "Page | None"],
                 proxy_page: Callable[[RepoInfo], Awaitable["Page | None"]],
                 missing: str = "does not have this name") -> list[dict[str, Any]]:
    """Each effective member's page for ``name`` as a plan item: ``member`` (its name), ``repo``, ``kind``, ``page``
    (None when not consulted or absent), ``used``, ``reason`` (why not used) and ``error`` (an upstream failure).
    ``local_page`` reads a hosted member's page (also what the guard asks), ``proxy_page`` fetches a proxy's."""
    local: dict[str, Page | None] = {}

    def hosted_has(m: RepoInfo, _name: str) -> bool:
        local[m.name] = local_page(m)
        return local[m.name] is not None

    out: list[dict[str, Any]] = []
    for r in route(core, group, name, hosted_has=hosted_has):
        m = r.member
        item: dict[str, Any] = {"member": m.name, "repo": m, "kind": m.kind, "page": None, "used": False,
                                "reason": r.reason}
        out.append(item)
        if not r.consult:
            continue
        if m.kind == "proxy":
            try:
                item["page"] = await proxy_page(m)
            except UpstreamError as exc:
                item["reason"] = f"upstream unavailable: {exc.message}"
                item["error"] = exc
                continue
        else:
            item["page"] = local[m.name] if m.name in local else local_page(m)
        if item["page"] is None:
            item["reason"] = item["reason"] or missing
        else:
            item["used"] = True
    return out
