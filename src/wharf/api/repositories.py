"""Repositories, their packages and files."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ..core.errors import InvalidInput, NotFound
from ..core.interfaces import RepoInfo
from ..core.upstream import redact
from .deps import CallerDep, CoreDep

router = APIRouter(tags=["repositories"])


class RepositoryIn(BaseModel):
    name: str = Field(description="lowercase letters, digits, '-', '_', '.'")
    format: str = Field(description="package format, e.g. 'python'")
    kind: Literal["hosted", "proxy", "group"] = "hosted"
    private: bool = False
    config: dict[str, Any] = Field(default_factory=dict, description="settings: allow_overwrite, max_upload_size, ...")


class RepositoryPatch(BaseModel):
    private: bool | None = None
    config: dict[str, Any] | None = None


class RepositoryOut(BaseModel):
    name: str
    format: str
    kind: str
    private: bool
    config: dict[str, Any]
    version: int
    url: str
    stats: dict[str, int] | None = None


class FileOut(BaseModel):
    filename: str
    version: str
    size: int
    sha256: str
    kind: str | None
    yanked: bool
    yanked_reason: str | None
    uploaded_at: datetime | None
    uploaded_by: str | None
    url: str
    quarantined: str | None = None  # the reason, shown to the repository's admins (hidden from everyone else)


class PackageOut(BaseModel):
    name: str
    versions: list[str]
    files: list[FileOut]


class YankIn(BaseModel):
    reason: str | None = None


def _out(repo: RepoInfo, stats: dict[str, int] | None = None) -> RepositoryOut:
    return RepositoryOut(name=repo.name, format=repo.format, kind=repo.kind, private=repo.private,
                         config=redact(repo.config), version=repo.version, url=f"/{repo.name}/", stats=stats)


def _visible(core: Any, caller: Any, name: str) -> RepoInfo:
    repo = core.repos.get(name)
    if repo is None:
        raise NotFound(f"no repository named {name!r}")
    caller.require("read", repo.name, public=not repo.private)
    return repo


@router.get("/repositories", response_model=list[RepositoryOut])
def list_repositories(core: CoreDep, caller: CallerDep) -> list[RepositoryOut]:
    """Repositories the caller may read (anonymous callers see public ones)."""
    out = []
    for repo in core.repos.list():
        if not repo.private or (caller.principal and caller.principal.can("read", repo.name)):
            out.append(_out(repo))
    return out


@router.post("/repositories", response_model=RepositoryOut, status_code=201)
def create_repository(body: RepositoryIn, core: CoreDep, caller: CallerDep) -> RepositoryOut:
    caller.require("admin", None)
    repo = core.create_repository(name=body.name, format=body.format, kind=body.kind, private=body.private,
                                  config=body.config, actor=caller.actor, remote_addr=caller.remote)
    return _out(repo)


@router.get("/repositories/{name}", response_model=RepositoryOut)
def get_repository(name: str, core: CoreDep, caller: CallerDep) -> RepositoryOut:
    repo = _visible(core, caller, name)
    fresh = next((r for r in core.repos.list() if r.name == name), repo)
    return _out(fresh, core.content.counts(repo.id))


@router.patch("/repositories/{name}", response_model=RepositoryOut)
def update_repository(name: str, body: RepositoryPatch, core: CoreDep, caller: CallerDep) -> RepositoryOut:
    caller.require("admin", name)
    if body.config and "upstream" in body.config:
        # where the server fetches from is a server-wide decision (it could be pointed at internal addresses)
        caller.require("admin", None)
    members = (body.config or {}).get("members")
    if isinstance(members, list):
        # a new member's content is served to the group's readers: adding a private repository needs its admin
        current = core.repos.require(name).config.get("members", [])
        for member in members:
            info = core.repos.get(member) if isinstance(member, str) else None
            if info is not None and info.private and member not in current:
                caller.require("admin", member)
    return _out(core.repos.update(name, private=body.private, config=body.config, actor=caller.actor,
                                  remote_addr=caller.remote))


@router.delete("/repositories/{name}", status_code=204)
def delete_repository(name: str, core: CoreDep, caller: CallerDep) -> Response:
    caller.require("admin", name)
    core.delete_repository(name, actor=caller.actor, remote_addr=caller.remote)
    return Response(status_code=204)


@router.get("/repositories/{name}/packages", response_model=list[str])
def list_packages(name: str, core: CoreDep, caller: CallerDep) -> list[str]:
    repo = _visible(core, caller, name)
    return core.content.names(repo.id)


def _normalize(core: Any, repo: RepoInfo, package: str) -> str:
    return core.plugin(repo).normalize_name(package)


@router.get("/repositories/{name}/packages/{package:path}", response_model=PackageOut)
def get_package(name: str, package: str, core: CoreDep, caller: CallerDep) -> PackageOut:
    repo = _visible(core, caller, name)
    pkg = _normalize(core, repo, package)
    admin = caller.principal is not None and caller.principal.can("admin", repo.name)
    files = core.content.files(repo.id, pkg, include_hidden=admin)
    if not files:
        raise NotFound(f"no package {package!r} in repository {name!r}")
    versions: list[str] = []
    for f in files:
        if f.version not in versions:
            versions.append(f.version)
    return PackageOut(name=pkg, versions=versions, files=[
        FileOut(filename=f.filename, version=f.version, size=f.size, sha256=f.sha256, kind=f.kind, yanked=f.yanked,
                yanked_reason=f.yanked_reason, uploaded_at=f.added_at, uploaded_by=f.uploaded_by,
                url=f"/{repo.name}/files/{f.sha256}/{f.filename}",
                quarantined=core.policy.quarantine.reason(repo.id, f.name, f.version) if admin else None) for f in files])


# (package names may contain "/", e.g. npm scopes: the routes with a longer tail come first)
@router.delete("/repositories/{name}/packages/{package:path}/versions/{version}/yank")
def unyank(name: str, package: str, version: str, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    caller.require("write", name)
    repo = core.repos.require(name)
    keys = core.set_yanked(repo, name=_normalize(core, repo, package), version=version, yanked=False, reason=None,
                           actor=caller.actor, remote_addr=caller.remote)
    return {"unyanked": keys}


@router.delete("/repositories/{name}/packages/{package:path}/versions/{version}", status_code=200)
def delete_release(name: str, package: str, version: str, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    caller.require("admin", name)
    repo = core.repos.require(name)
    pkg = _normalize(core, repo, package)
    removed = core.remove_files(repo, name=pkg, version=version, actor=caller.actor, remote_addr=caller.remote)
    return {"removed": [f.filename for f in removed]}


@router.delete("/repositories/{name}/packages/{package:path}", status_code=200)
def delete_package(name: str, package: str, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    caller.require("admin", name)
    repo = core.repos.require(name)
    removed = core.remove_files(repo, name=_normalize(core, repo, package), actor=caller.actor, remote_addr=caller.remote)
    return {"removed": [f.filename for f in removed]}


@router.delete("/repositories/{name}/files/{filename:path}", status_code=200)
def delete_file(name: str, filename: str, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    caller.require("admin", name)
    repo = core.repos.require(name)
    removed = core.remove_files(repo, keys=[filename], actor=caller.actor, remote_addr=caller.remote)
    return {"removed": [f.filename for f in removed]}


@router.post("/repositories/{name}/packages/{package:path}/versions/{version}/yank")
def yank(name: str, package: str, version: str, body: YankIn, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """PEP 592: yanked files stay installable when pinned exactly, but resolvers skip them."""
    caller.require("write", name)
    repo = core.repos.require(name)
    if body.reason is not None and len(body.reason) > 1000:
        raise InvalidInput("yank reason is too long (1000 characters at most)")
    keys = core.set_yanked(repo, name=_normalize(core, repo, package), version=version, yanked=True, reason=body.reason,
                           actor=caller.actor, remote_addr=caller.remote)
    return {"yanked": keys, "reason": body.reason}


@router.get("/repositories/{name}/explain/{package:path}")
async def explain(name: str, package: str, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """For a group: which member each version of a package comes from, and what is hidden and why
    (dependency-confusion guard, reserved name patterns)."""
    repo = _visible(core, caller, name)
    if repo.kind != "group":
        raise InvalidInput(f"repository {name!r} is a {repo.kind} repository; explain is for groups")
    plugin = core.plugin(repo)
    explain_fn = getattr(plugin, "explain", None)
    if explain_fn is None:
        raise InvalidInput(f"format {repo.format!r} cannot explain group resolution")
    return await explain_fn(core, repo, package)  # type: ignore[no-any-return]
