"""Group repositories: which members a name may come from (the dependency-confusion guard), for every format.

Guard (on by default): when any hosted member has a name, proxy members are not consulted for it at all (their
versions are hidden, and the internal name never reaches an upstream). Names matching the group's ``reserved``
patterns (fnmatch, case-insensitive, on the normalised name) never resolve from proxies, guard or not. The format merges what the
consulted members return (the first member wins per file or version)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .interfaces import RepoInfo

if TYPE_CHECKING:  # pragma: no cover
    from .services import Core

__all__ = ["MemberRoute", "route", "reserved_pattern"]


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
