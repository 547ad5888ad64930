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


@router.post("/security/packages/{name}/{package}/{version}/scan")
def rescan(core: CoreDep, caller: CallerDep, name: str, package: str, version: str) -> dict[str, Any]:
    """Run every analyzer on a package version of repository ``name`` now (admin on it); returns the results."""
    repo = core.repos.get(name)
    caller.require("admin", name)
    if repo is None:
        raise NotFound(f"no repository named '{name}'")
    results = core.scans.scan(repo, core.plugin(repo).normalize_name(package), version)
    if not results:
        raise NotFound(f"no files of {package} {version} in repository '{name}'")
    return {"repository": name, "name": package, "version": version, "results": results}


@router.get("/security/packages/{name}/{package:path}")
def security_package(core: CoreDep, caller: CallerDep, name: str, package: str) -> dict[str, Any]:
    """Every live version of a package of repository ``name`` with its results, findings and vulnerabilities (fixed
    versions), newest first; ``releases`` is the history oldest first with the number of unresolved vulnerabilities
    in each."""
    repo = _readable(core, caller, name)
    norm = core.plugin(repo).normalize_name(package)
    doc = overview.package_overview(core, repo, norm)
    if doc is None:
        raise NotFound(f"no package '{package}' in repository '{name}'")
    return doc
