"""Security overview: scan coverage, results per analyzer (and per policy), severities, vulnerabilities."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..core.errors import NotFound
from ..core.interfaces import RepoInfo
from ..security import overview
from .deps import CallerDep, CoreDep

router = APIRouter(tags=["security"])


def _readable(core: Any, caller: Any, name: str) -> RepoInfo:
    repo = core.repos.get(name)
    caller.require("read", name, public=repo is not None and not repo.private)
    if repo is None:
        raise NotFound(f"no repository named '{name}'")
    return repo  # type: ignore[no-any-return]


@router.get("/security/overview")
def security_overview(core: CoreDep, caller: CallerDep, repository: str | None = None) -> dict[str, Any]:
    """One repository's overview (``?repository=``), or a summary line for every repository the caller may read."""
    if repository is not None:
        return overview.repository_overview(core, _readable(core, caller, repository))
    repos = [r for r in core.repos.list()
             if not r.private or (caller.principal is not None and caller.principal.can("read", r.name))]
    out = []
    for r in repos:
        doc = overview.repository_overview(core, r)
        doc.pop("packages")
        out.append(doc)
    return {"repositories": out}


@router.get("/security/packages/{repository}/{name:path}")
def security_package(core: CoreDep, caller: CallerDep, repository: str, name: str) -> dict[str, Any]:
    """Every live version of a package with its results, findings and vulnerabilities (fixed versions), newest first;
    ``releases`` is the history oldest first with the number of unresolved vulnerabilities in each."""
    repo = _readable(core, caller, repository)
    norm = core.plugin(repo).normalize_name(name)
    doc = overview.package_overview(core, repo, norm)
    if doc is None:
        raise NotFound(f"no package '{name}' in repository '{repository}'")
    return doc


@router.post("/security/packages/{repository}/{name}/{version}/scan")
def rescan(core: CoreDep, caller: CallerDep, repository: str, name: str, version: str) -> dict[str, Any]:
    """Run every analyzer on a package version now (admin on the repository); returns the results."""
    repo = core.repos.get(repository)
    caller.require("admin", repository)
    if repo is None:
        raise NotFound(f"no repository named '{repository}'")
    results = core.scans.scan(repo, core.plugin(repo).normalize_name(name), version)
    if not results:
        raise NotFound(f"no files of {name} {version} in repository '{repository}'")
    return {"repository": repository, "name": name, "version": version, "results": results}
