"""Promotion: copy/move/promote packages between repositories, their provenance trail, proxy resync."""

from __future__ import annotations

from typing import Any, Callable, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ..core.errors import InvalidInput, NotFound
from .deps import Caller, CallerDep, CoreDep

router = APIRouter(tags=["promotion"])


class PromotionIn(BaseModel):
    source: str = Field(description="the repository the files come from (hosted or proxy)")
    destination: str | None = Field(None, description="a hosted repository of the same format; for 'promote' "
                                                      "it defaults to the source's setting 'promote_to'")
    operation: Literal["copy", "move", "promote"] = "copy"
    package: str | None = Field(None, description="one package (all its versions, or 'version')")
    version: str | None = None
    all: bool = Field(False, description="bulk: every package of the source")
    query: str | None = Field(None, description="bulk: e.g. 'name:acme-* version:1.*' (see docs/promotion.md)")
    skip_existing: bool = Field(False, description="leave out files that conflict with the destination instead "
                                                   "of refusing the whole request (409)")
    dry_run: bool = Field(False, description="bulk: list the package versions it would take, change nothing")


class ResyncIn(BaseModel):
    package: str
    version: str | None = None
    max_attempts: int = Field(5, description="attempts before the job is marked failed")
    backoff: float = Field(2.0, description="seconds before the first retry; doubled for each further retry")


def _visible(core: Any, caller: Caller) -> Callable[[str], bool]:
    cache: dict[str, bool] = {}

    def visible(name: str) -> bool:
        if name not in cache:
            repo = core.repos.get(name)
            if repo is None:  # deleted since: only server-wide readers see its history
                cache[name] = caller.principal is not None and caller.principal.can("read", None)
            else:
                cache[name] = not repo.private or (caller.principal is not None and caller.principal.can("read", name))
        return cache[name]

    return visible


def _authorize(core: Any, caller: Caller, body: PromotionIn) -> None:
    """Read on the source, write on the destination; a move also deletes from the source, which needs admin there
    (as every delete does)."""
    src, dest = core.promotions.resolve(body.source, body.destination, body.operation)
    caller.require("read", src.name, public=not src.private)
    caller.require("write", dest.name)
    if body.operation == "move":
        caller.require("admin", src.name)


@router.post("/promotions")
def create_promotion(body: PromotionIn, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """Copy, move or promote one package (optionally one version), or many (``all`` or ``query``), by reference:
    the destination records the same stored files (same sha256), nothing is uploaded again. Conflicting files make
    a 409 listing them unless ``skip_existing``."""
    _authorize(core, caller, body)
    svc = core.promotions
    bulk = body.all or body.query is not None
    if body.package is None and not bulk:
        raise InvalidInput("name a package, or ask for all packages (all: true) or a query")
    if body.package is not None and bulk:
        raise InvalidInput("give either a package or all/query, not both")
    if bulk:
        if body.dry_run:
            return {"dry_run": True, "items": svc.plan(body.source, body.query)}
        return svc.bulk(body.source, body.destination, query=body.query, operation=body.operation,  # type: ignore[no-any-return]
                        actor=caller.actor, remote_addr=caller.remote, skip_existing=body.skip_existing)
    assert body.package is not None
    t = svc.transfer(body.source, body.destination, body.package, body.version, operation=body.operation,
                     actor=caller.actor, remote_addr=caller.remote, skip_existing=body.skip_existing)
    return t.as_dict()  # type: ignore[no-any-return]


@router.get("/promotions")
def list_promotions(core: CoreDep, caller: CallerDep, repository: str | None = None, package: str | None = None,
                    limit: int = 100) -> list[dict[str, Any]]:
    """Provenance entries (newest first) whose repositories the caller may read."""
    visible = _visible(core, caller)
    return [e for e in core.promotions.entries(repository=repository, name=package, limit=limit)
            if visible(e["destination"]) and visible(e["source"])]


@router.get("/packages/{format}/{package:path}/trail")
def package_trail(format: str, package: str, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """A package's whole story across repositories: uploads and proxy fetches, every copy, move and promotion
    (who, when, from where, the file digests, the policy decisions), removals."""
    plugin = core.plugins.get(format)
    if plugin is None:
        raise NotFound(f"no format named {format!r}")
    trail = core.promotions.trail(format, plugin.normalize_name(package), visible=_visible(core, caller))
    if not trail["events"]:
        raise NotFound(f"no {format} package {package!r} in any repository you can read")
    return trail  # type: ignore[no-any-return]


@router.get("/repositories/{name}/trail/{package:path}")
def repository_package_trail(name: str, package: str, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """The trail of a package of this repository (its format), across every repository the caller may read."""
    repo = core.repos.require(name)
    caller.require("read", repo.name, public=not repo.private)
    return package_trail(repo.format, package, core, caller)


@router.post("/repositories/{name}/resync", status_code=202)
def start_resync(name: str, body: ResyncIn, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """Re-fetch a proxied package's cached files from the upstream and re-verify their digests, in background
    work retried with exponential backoff. Poll ``GET /api/v1/resyncs/{id}``."""
    caller.require("write", name)
    return core.promotions.resync.start(name, body.package, body.version, actor=caller.actor,  # type: ignore[no-any-return]
                                        remote_addr=caller.remote, max_attempts=body.max_attempts,
                                        backoff=body.backoff)


@router.get("/resyncs/{job_id}")
def get_resync(job_id: int, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    job = core.promotions.resync.get(job_id)
    if not _visible(core, caller)(job["repository"]):
        raise NotFound(f"no resync job {job_id}")
    return job  # type: ignore[no-any-return]


@router.get("/resyncs")
def list_resyncs(core: CoreDep, caller: CallerDep, repository: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    visible = _visible(core, caller)
    return [j for j in core.promotions.resync.list(repository, limit) if visible(j["repository"])]
