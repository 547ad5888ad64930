"""The event stream and background work, for operators and integrations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from .deps import CallerDep, CoreDep

router = APIRouter(tags=["events"])


@router.get("/events")
def list_events(core: CoreDep, caller: CallerDep, repository: str | None = None, package: str | None = None,
                type: list[str] | None = Query(None), after: int | None = None,
                limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
    """Newest first. Reading one repository's events needs read access to it; all events need server admin."""
    if repository is not None:
        repo = core.repos.get(repository)
        caller.require("read", repository, public=repo is not None and not repo.private)
    else:
        caller.require("admin", None)
    return [e.to_json() for e in core.events.list(repository=repository, package=package, types=type, after=after,
                                                  limit=limit)]


@router.get("/tasks")
def list_tasks(core: CoreDep, caller: CallerDep, state: str | None = None,
               limit: int = Query(100, ge=1, le=1000)) -> list[dict[str, Any]]:
    """Queued, running and failed background tasks (server admin)."""
    caller.require("admin", None)
    return core.tasks.list(state=state, limit=limit)


@router.get("/tasks/summary")
def task_summary(core: CoreDep, caller: CallerDep) -> dict[str, Any]:
    """How much background work there is (server admin): counts per state (``due``: queued and due now, not waiting
    on a retry's backoff or a schedule) and per kind."""
    caller.require("admin", None)
    return core.tasks.summary()
