"""Snapshots, versions, diff, rollback, retention and blob GC.

Permissions: reading versions, snapshots and diffs needs read access to the repository; creating a snapshot needs
write; deleting one, rolling back and pruning need the repository's admin; GC is server-wide (admin on '*').
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..core.errors import NotFound
from ..core.interfaces import RepoInfo
from .deps import CallerDep, CoreDep

router = APIRouter(tags=["snapshots"])


class SnapshotIn(BaseModel):
    name: str = Field(description="letters, digits, '.', '_', '-'; not only digits")
    version: int | None = Field(default=None, description="repository version to pin (default: the current one)")
    description: str | None = Field(default=None, max_length=1000)


class SnapshotOut(BaseModel):
    name: str
    repository: str
    version: int
    description: str | None
    created_at: datetime | None
    created_by: str | None
    url: str


class VersionOut(BaseModel):
    number: int
    created_at: datetime | None
    actor: str | None
    summary: str | None
    snapshots: list[str]
    url: str


class RollbackIn(BaseModel):
    to: str = Field(description="a version number or a snapshot name")


def _repo(core: Any, caller: Any, name: str, action: str) -> RepoInfo:
    repo = core.repos.get(name)
    if repo is None:
        raise NotFound(f"no repository named {name!r}")
    caller.require(action, repo.name, public=not repo.private)
    return repo  # type: ignore[no-any-return]


@router.get("/repositories/{name}/versions", response_model=list[VersionOut])
def list_versions(name: str, core: CoreDep, caller: CallerDep, limit: int = Query(100, ge=1, le=1000),
                  before: int | None = None) -> list[dict[str, Any]]:
    """The repository's versions, newest first: who made each, what changed, which snapshots pin it."""
    repo = _repo(core, caller, name, "read")
    return core.snapshots.versions(repo, limit=limit, before=before)


@router.get("/repositories/{name}/diff")
def diff_versions(name: str, core: CoreDep, caller: CallerDep, a: str = Query(..., alias="from"),
                  b: str = Query(..., alias="to")) -> dict[str, Any]:
    """Files added and removed between two versions (numbers or snapshot names), with their digests."""
    repo = _repo(core, caller, name, "read")
    return core.snapshots.diff(repo, a, b)


@router.get("/repositories/{name}/snapshots", response_model=list[SnapshotOut])
def list_snapshots(name: str, core: CoreDep, caller: CallerDep) -> list[dict[str, Any]]:
    repo = _repo(core, caller, name, "read")
    return core.snapshots.list(repo)


@router.get("/repositories/{name}/snapshots/{snapshot}", response_model=SnapshotOut)
def get_snapshot(name: str, snapshot: str, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    repo = _repo(core, caller, name, "read")
    return core.snapshots.get(repo, snapshot)


@router.post("/repositories/{name}/snapshots", response_model=SnapshotOut, status_code=201)
async def create_snapshot(name: str, body: SnapshotIn, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """Pin a version under a name; served read-only at ``/<repo>/~<name>/`` (rendered now)."""
    repo = _repo(core, caller, name, "write")
    out = await run_in_threadpool(lambda: core.snapshots.create(
        repo, body.name, version=body.version, description=body.description, actor=caller.actor,
        remote_addr=caller.remote))
    await run_in_threadpool(lambda: core.snapshots.ensure_published(core.snapshots.view(repo, body.name)))
    return out


@router.delete("/repositories/{name}/snapshots/{snapshot}", response_model=SnapshotOut)
def delete_snapshot(name: str, snapshot: str, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    repo = _repo(core, caller, name, "admin")
    return core.snapshots.delete(repo, snapshot, actor=caller.actor, remote_addr=caller.remote)


@router.post("/repositories/{name}/rollback")
def rollback(name: str, body: RollbackIn, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """A new version whose contents equal version ``to`` (pages and download links follow)."""
    repo = _repo(core, caller, name, "admin")
    return core.snapshots.rollback(repo, body.to, actor=caller.actor, remote_addr=caller.remote)


@router.post("/repositories/{name}/prune")
def prune(name: str, core: CoreDep, caller: CallerDep, apply: bool = False) -> dict[str, Any]:
    """Apply the repository's retention policy (dry run unless ``apply=true``)."""
    repo = _repo(core, caller, name, "admin")
    out = core.snapshots.prune(repo, apply=apply, actor=caller.actor, remote_addr=caller.remote)
    core.snapshots.schedule_retention()
    return out


@router.post("/gc")
def gc(core: CoreDep, caller: CallerDep, apply: bool = False, prune: bool = True,
       grace: float = Query(600.0, ge=0)) -> dict[str, Any]:
    """Blobs no kept version references: a dry run lists them and their bytes; ``apply=true`` deletes them.
    With ``prune`` (default) every repository's retention policy is applied first (dry run: reported only)."""
    caller.require("admin", None)
    pruned = ([core.snapshots.prune(r, apply=apply, actor=caller.actor, remote_addr=caller.remote)
               for r in core.repos.list() if r.config.get("retention")] if prune else [])
    report = core.snapshots.gc(apply=apply, grace=grace, actor=caller.actor)
    report["pruned"] = [p for p in pruned if p["pruned_versions"]]
    core.snapshots.schedule_retention()
    return report
