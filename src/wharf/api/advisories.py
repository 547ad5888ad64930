"""Vulnerability advisories: import (server admins), status, records, matches; and the OSV-compatible query API
under ``/-/osv/v1/`` (open to every caller, like the public OSV service: advisory data is public information)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import anyio
from fastapi import APIRouter, Request

from ..core import audit
from ..core.errors import InvalidInput, NotFound
from ..security.advisories import query as osv_query
from .deps import CallerDep, CoreDep

router = APIRouter(tags=["advisories"])

_MAX_IMPORT = 2 * 1024 * 1024 * 1024  # an ecosystem's all.zip is a few hundred MiB at most


@router.post("/api/v1/advisories/import")
async def import_advisories(request: Request, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """Import OSV records, incrementally (a record with the same id and ``modified`` is skipped). The body is a
    zip of OSV JSON files (``application/zip``, e.g. an ecosystem's ``all.zip``), one record or a list of records
    (``application/json``), or ``{"url": "..."}`` (``application/json``) for the server to fetch. Server admins only."""
    caller.require("admin", None)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        body = await request.body()
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise InvalidInput(f"invalid JSON: {exc}")
        if isinstance(doc, dict) and set(doc) == {"url"}:
            url = str(doc["url"])
            if not url.startswith(("http://", "https://")):
                raise InvalidInput("'url' must be an http(s) URL")
            report = await anyio.to_thread.run_sync(lambda: core.advisories.import_url(url))
            return _audited(core, caller, request, report.as_dict(), url)
    elif ctype not in ("application/zip", "application/octet-stream", "application/x-zip-compressed"):
        raise InvalidInput("send a zip (application/zip), OSV JSON, or {\"url\": ...} (application/json)")
    state = Path(core.settings.data).resolve() / "state"
    state.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="advisories-", suffix=".upload", dir=state)
    try:
        size = 0
        with os.fdopen(fd, "wb") as fh:
            if ctype == "application/json":
                fh.write(body)
            else:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > _MAX_IMPORT:
                        raise InvalidInput("the upload is larger than 2 GiB")
                    fh.write(chunk)
        report = await anyio.to_thread.run_sync(lambda: core.advisories.import_source(Path(tmp)))
    finally:
        os.unlink(tmp)
    return _audited(core, caller, request, report.as_dict(), "upload")


def _audited(core: Any, caller: Any, request: Request, report: dict[str, Any], source: str) -> dict[str, Any]:
    with core.sessions.begin() as s:
        audit.record(s, audit.AuditTag.ADVISORIES_IMPORT, actor=caller.actor, subject=source, remote_addr=caller.remote,
                     **{k: v for k, v in report.items() if k != "errors"})
    return report


@router.get("/api/v1/advisories")
def advisories_status(core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """How many records are loaded, per ecosystem, which formats they apply to, the scheduled source's state."""
    caller.require("read", None, public=True)
    return core.advisories.stats()


@router.get("/api/v1/advisories/match")
def advisories_match(core: CoreDep, caller: CallerDep, repository: str, name: str, version: str) -> dict[str, Any]:
    """The ``vulnerabilities`` result for a package version of a repository (evaluated now, not the stored scan)."""
    repo = core.repos.get(repository)
    if repo is None:
        raise NotFound(f"no repository named '{repository}'")
    caller.require("read", repo.name, public=not repo.private)
    norm = core.plugin(repo).normalize_name(name)
    return core.advisories.evaluate(repo, norm, version)


@router.get("/api/v1/advisories/{advisory_id}")
def advisory_get(advisory_id: str, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    caller.require("read", None, public=True)
    return _record(core, advisory_id)


def _record(core: Any, advisory_id: str) -> dict[str, Any]:
    rec = core.advisories.get(advisory_id)
    if rec is None:
        raise NotFound(f"no advisory '{advisory_id}'")
    return json.loads(rec.text)  # type: ignore[no-any-return]


# -- OSV-compatible API ------------------------------------------------------------------------------------------
@router.post("/-/osv/v1/query")
async def osv_query_one(request: Request, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """Same request and response as the public OSV service's ``POST /v1/query``."""
    caller.require("read", None, public=True)
    body = await _json(request)
    return await anyio.to_thread.run_sync(lambda: osv_query.query(core.advisories, body))


@router.post("/-/osv/v1/querybatch")
async def osv_query_batch(request: Request, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """Same request and response as ``POST /v1/querybatch``: ids and ``modified`` per query, in order."""
    caller.require("read", None, public=True)
    body = await _json(request)
    return await anyio.to_thread.run_sync(lambda: osv_query.querybatch(core.advisories, body))


@router.get("/-/osv/v1/vulns/{advisory_id}")
def osv_vuln(advisory_id: str, core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    caller.require("read", None, public=True)
    return _record(core, advisory_id)


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise InvalidInput(f"invalid JSON: {exc}")
