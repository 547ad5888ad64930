"""Quarantine, policies (versioned CEL rules), dry runs and the policy decision log."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from ..core.errors import NotFound
from ..core.interfaces import RepoInfo
from .deps import CallerDep, CoreDep

router = APIRouter(tags=["quarantine and policies"])


def _repo(core: Any, name: str) -> RepoInfo:
    repo = core.repos.get(name)
    if repo is None:
        raise NotFound(f"no repository named {name!r}")
    return repo  # type: ignore[no-any-return]


# -- quarantine ---------------------------------------------------------------------------------------------------
class QuarantineIn(BaseModel):
    repository: str
    package: str
    version: str | None = Field(None, description="omit to quarantine every version (the whole project)")
    reason: str = Field(description="shown with every refused download")


class ReleaseIn(BaseModel):
    repository: str
    package: str
    version: str | None = None
    reason: str | None = None


@router.post("/quarantine", status_code=201)
async def quarantine_add(body: QuarantineIn, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """Withhold a package version (or the whole package) from downloads and indexes, with a reason."""
    caller.require("admin", body.repository)
    repo = _repo(core, body.repository)
    return await anyio.to_thread.run_sync(lambda: core.policy.quarantine.add(
        repo, body.package, body.version or None, reason=body.reason, actor=caller.actor, remote_addr=caller.remote))


@router.post("/quarantine/release")
async def quarantine_release(body: ReleaseIn, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """Release a quarantine: the files become downloadable and listed again."""
    caller.require("admin", body.repository)
    repo = _repo(core, body.repository)
    return await anyio.to_thread.run_sync(lambda: core.policy.quarantine.release(
        repo, body.package, body.version or None, actor=caller.actor, reason=body.reason, remote_addr=caller.remote))


@router.get("/quarantine")
def quarantine_list(core: CoreDep, caller: CallerDep, repository: str | None = None, package: str | None = None,
                    all: bool = Query(False, description="include released quarantines")) -> list[dict[str, Any]]:
    """Quarantined packages with their reason and files (admins of the repository; every repository: scope '*')."""
    caller.require("admin", repository)
    repo = _repo(core, repository) if repository else None
    name = core.plugin(repo).normalize_name(package) if (repo and package) else package
    return core.policy.quarantine.list(repo, include_released=all, name=name)  # type: ignore[no-any-return]


# -- policies --------------------------------------------------------------------------------------------------------
class PolicyIn(BaseModel):
    name: str
    expression: str = Field(description="CEL; true means the action applies")
    action: str = Field(description="deny | quarantine | tag | allow")
    events: list[str] = Field(description="upload, proxy_fetch, promotion, scan")
    repositories: list[str] | None = Field(None, description="omit (or ['*']) for every repository")
    message: str | None = None
    tags: list[str] = Field(default_factory=list)
    enabled: bool = True
    priority: int = 100
    description: str | None = None


class PolicyPatch(BaseModel):
    expression: str | None = None
    action: str | None = None
    events: list[str] | None = None
    repositories: list[str] | None = None
    message: str | None = None
    tags: list[str] | None = None
    enabled: bool | None = None
    priority: int | None = None
    description: str | None = None


class DryRunIn(BaseModel):
    repository: str
    event: str | None = None
    version: int | None = Field(None, description="a past policy version (default: the current one)")


class AdHocDryRunIn(PolicyIn):
    repository: str
    event: str | None = None
    name: str = "(unsaved)"


@router.get("/policies")
def policies_list(core: CoreDep, caller: CallerDep) -> list[dict[str, Any]]:
    caller.require("admin", None)
    return core.policy.list()  # type: ignore[no-any-return]


@router.post("/policies", status_code=201)
def policies_create(body: PolicyIn, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """Create a policy (version 1). A CEL expression that does not compile is refused with the compiler's message."""
    caller.require("admin", None)
    return core.policy.create(body.model_dump(), actor=caller.actor, remote_addr=caller.remote)  # type: ignore[no-any-return]


@router.post("/policies/dry-run")
async def policies_dry_run_unsaved(body: AdHocDryRunIn, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """Evaluate an unsaved policy over every package version of a repository (nothing is done or logged)."""
    caller.require("admin", None)
    repo = _repo(core, body.repository)
    spec = body.model_dump(exclude={"repository", "event"})
    return await anyio.to_thread.run_sync(lambda: core.policy.dry_run(None, repo, event=body.event, spec=spec))


@router.get("/policies/{name}")
def policies_show(name: str, core: CoreDep, caller: CallerDep, version: int | None = None,
                  history: bool = False) -> dict[str, Any]:
    caller.require("admin", None)
    return core.policy.show(name, version=version, history=history)  # type: ignore[no-any-return]


@router.patch("/policies/{name}")
@router.put("/policies/{name}")
def policies_update(name: str, body: PolicyPatch, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """Change a policy: a new version (the old ones stay readable with ?version=N)."""
    caller.require("admin", None)
    return core.policy.update(name, body.model_dump(exclude_unset=True), actor=caller.actor,  # type: ignore[no-any-return]
                              remote_addr=caller.remote)


@router.delete("/policies/{name}", status_code=204)
def policies_delete(name: str, core: CoreDep, caller: CallerDep) -> Response:
    caller.require("admin", None)
    core.policy.delete(name, actor=caller.actor, remote_addr=caller.remote)
    return Response(status_code=204)


@router.post("/policies/{name}/dry-run")
async def policies_dry_run(name: str, body: DryRunIn, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """Evaluate a stored policy (enabled or not) over every package version of a repository: what it would do."""
    caller.require("admin", None)
    repo = _repo(core, body.repository)
    return await anyio.to_thread.run_sync(lambda: core.policy.dry_run(name, repo, event=body.event, version=body.version))


@router.get("/policy-decisions")
def policy_decisions(core: CoreDep, caller: CallerDep, repository: str, package: str | None = None,
                     version: str | None = None, policy: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The decision log of a repository (or one package / version): policy version, inputs digest, result. Readers
    see neither the inputs nor the decisions on quarantined versions; the repository's admins see everything."""
    repo = _repo(core, repository)
    caller.require("read", repo.name, public=not repo.private)
    name = core.plugin(repo).normalize_name(package) if package else None
    out = core.policy.decisions(repository=repo.name, name=name, version=version, policy=policy, limit=limit)
    admin = caller.principal is not None and caller.principal.can("admin", repo.name)
    return core.policy.visible(repo, out, admin=admin)  # type: ignore[no-any-return]
