"""The vetting service: registers the licence, malware and typosquatting analyzers with ``core.scans`` and gives
them what they need from the repository (the format plugin, trusted names, limits).

Scans run in background tasks (``package.created`` -> ``scan``), never in the upload's request; ``Settings.vetting``
off queues nothing. While this process takes uploads in a burst, scans wait (a few seconds at most) so they do not
compete with the uploads for the process and its CPU. Attached in ``Core.__init__`` as ``core.vetting``.
"""

from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Any, Iterable

from sqlalchemy import func, select

from ..db.models import Repository, RepositoryContent
from . import licences, malware, typosquat
from .archive import Limits
from .sandbox import ScannerProcess

if TYPE_CHECKING:  # pragma: no cover
    from ..core.interfaces import RepoInfo
    from ..core.services import Core
    from .scan import ScanTarget

__all__ = ["VettingService", "ANALYZERS"]

ANALYZERS = ("licence", "malware", "typosquat")


class VettingService:
    def __init__(self, core: "Core", *, limits: Limits | None = None):
        self._core = core
        self.limits = limits or Limits()
        self.include_guarddog = True
        self.isolate = True  # malware scans in a niced, memory-capped helper process (security/sandbox.py)
        self._sandbox = ScannerProcess()
        # scans back off while this process is taking uploads in a burst (the backlog drains when it calms down)
        self.burst = 2  # ingests within ``burst_window`` seconds that make a burst
        self.burst_window = 1.0
        self.max_wait = 5.0  # seconds a scan waits for a burst to end, at most
        self._recent: deque[float] = deque(maxlen=16)
        # repository id -> (its row's creation time, name -> first version, the repository version read up to)
        self._first: dict[int, tuple[Any, dict[str, int], int]] = {}
        core.after_ingest.append(self._stamp)
        core.scans.register("licence", self.licence)
        core.scans.register("malware", self.malware)
        core.scans.register("typosquat", self.typosquat)

    # -- analyzers (``fn(core, target) -> {"status", "summary", "findings"}``) ------------------------------
    def _stamp(self, core: "Core", repo: Any, result: Any, decisions: Any, action: Any = None) -> None:
        self._recent.append(time.monotonic())

    def _busy(self, now: float) -> bool:
        return sum(1 for t in list(self._recent) if now - t < self.burst_window) >= self.burst

    def yield_to_uploads(self) -> float:
        """Wait (at most ``max_wait``) while uploads arrive in a burst; returns the seconds waited."""
        start = now = time.monotonic()
        while self._busy(now) and now - start < self.max_wait:
            time.sleep(0.05)
            now = time.monotonic()
        return now - start

    def licence(self, core: "Core", target: "ScanTarget") -> dict[str, Any]:
        self.yield_to_uploads()
        plugin = core.plugin(target.repo)
        return licences.analyze(target.files, target.open, getattr(plugin, "declared_licence", None), limits=self.limits)

    def malware(self, core: "Core", target: "ScanTarget") -> dict[str, Any]:
        self.yield_to_uploads()
        paths = [core.blobs.local_path(f.sha256) for f in target.files]
        if self.isolate and all(p is not None for p in paths):
            return self._sandbox.analyze([(f.filename, str(p)) for f, p in zip(target.files, paths)],
                                         limits=self.limits, include_guarddog=self.include_guarddog)
        return malware.analyze(target.files, target.open, limits=self.limits, include_guarddog=self.include_guarddog)

    def close(self) -> None:
        self._sandbox.close()

    def typosquat(self, core: "Core", target: "ScanTarget") -> dict[str, Any]:
        self.yield_to_uploads()
        plugin = core.plugin(target.repo)
        extra = getattr(core.settings, "vetting_popular_dir", None)
        popular = typosquat.popular_names(getattr(plugin, "popular_names", None), plugin.normalize_name,
                                          extra_dir=str(extra) if extra else None)
        return typosquat.analyze(target.name, trusted=self.trusted_names(target.repo, target.name), popular=popular)

    # -- what a new name is compared with ------------------------------------------------------------------
    def trusted_names(self, repo: "RepoInfo", name: str) -> Iterable[tuple[str, str]]:
        """Names the repository held before ``name`` first appeared in it (so re-scans of later versions give the
        same answer), and the names of hosted repositories that share a group with it."""
        first = self._first_versions(repo.id)
        mine = first.get(name)
        out = [(n, "repository") for n, v in first.items() if n != name and (mine is None or v < mine)]
        for sibling in self._siblings(repo):
            out.extend((n, f"group:{sibling.name}") for n in self._core.content.names(sibling.id) if n != name)
        return out

    def _first_versions(self, repo_id: int) -> dict[str, int]:
        """The repository version each name first appeared in. Content rows are only ever added (a removal closes
        its row) and versions commit in order (each one updates the repository row first), so this map grows by
        the rows of versions not read yet instead of grouping the whole repository on every scan, and is reused
        as it is while the repository's version stays. A repository created anew under a reused id starts over."""
        rc = RepositoryContent
        with self._core.sessions() as s:
            row = s.execute(select(Repository.created_at, Repository.version).where(Repository.id == repo_id)).first()
            if row is None:  # deleted since the scan was queued
                return {}
            created, version = row
            hit = self._first.get(repo_id)
            if hit is not None and hit[0] == created and hit[2] == version:
                return hit[1]
            first, upto = (hit[1], hit[2]) if hit is not None and hit[0] == created else ({}, -1)
            rows = s.execute(select(rc.name, func.min(rc.version_added))
                             .where(rc.repository_id == repo_id, rc.version_added > upto,
                                    rc.version_added <= version).group_by(rc.name)).all()
        if rows:
            first = {**{n: v for n, v in rows}, **first}  # a new dict: other scans may be reading the old one
        self._first[repo_id] = (created, first, version)
        return first

    def _siblings(self, repo: "RepoInfo") -> list["RepoInfo"]:
        found: dict[str, "RepoInfo"] = {}
        for group in self._core.repos.list():
            if group.kind != "group" or group.format != repo.format:
                continue
            members = self._core.members(group)
            if any(m.id == repo.id for m in members):
                for m in members:
                    if m.id != repo.id and m.kind == "hosted":
                        found[m.name] = m
        return list(found.values())
