"""The vetting service: registers the licence, malware and typosquatting analyzers with ``core.scans`` and gives
them what they need from the repository (the format plugin, trusted names, limits).

Scans run in background tasks (``package.created`` -> ``scan``), never in the upload's request; ``Settings.vetting``
off queues nothing. While the server takes uploads in a burst (in any of its processes), scans wait (a few seconds
at most) so they do not compete with the uploads for the CPU and the database. Attached in ``Core.__init__`` as ``core.vetting``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from ..core.signal import Beat
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
        # uploads of every process of this data directory (scans may run in the task helper, which takes none)
        self._uploads = Beat(Path(core.settings.data) / "state" / "uploads.beat")
        self._names: dict[int, _RepoNames] = {}  # repository id -> its names as typosquat candidates
        self._names_lock = threading.Lock()
        core.after_ingest.append(self._stamp)
        core.scans.register("licence", self.licence)
        core.scans.register("malware", self.malware)
        core.scans.register("typosquat", self.typosquat)

    # -- analyzers (``fn(core, target) -> {"status", "summary", "findings"}``) ------------------------------
    def _stamp(self, core: "Core", repo: Any, result: Any, decisions: Any, action: Any = None) -> None:
        self._uploads.mark()

    def _busy(self, now: float) -> bool:
        return self._uploads.since(now - self.burst_window) >= self.burst

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
        with self._names_lock:  # (the candidate lists grow in place)
            return typosquat.analyze(target.name, trusted=self.trusted(target.repo, target.name), popular=popular)

    # -- what a new name is compared with ------------------------------------------------------------------
    def trusted(self, repo: "RepoInfo", name: str) -> list[typosquat.Trusted]:
        """Names the repository held before ``name`` first appeared in it (so re-scans of later versions give the
        same answer), and the names of hosted repositories that share a group with it. Call with the names lock."""
        out: list[typosquat.Trusted] = []
        own = self._repo_names(repo.id)
        if own is not None:
            mine = own.first.get(name)
            firsts = own.firsts
            out.append((own.candidates, "repository", None if mine is None else (lambda i: firsts[i] < mine)))
        for sibling in self._siblings(repo):
            theirs = self._repo_names(sibling.id)
            if theirs is not None:
                out.append((theirs.candidates, f"group:{sibling.name}", None))
        return out

    def _repo_names(self, repo_id: int) -> "_RepoNames | None":
        """A repository's names as typosquat candidates, each with the repository version it first appeared in.
        Content rows are only ever added (a removal closes its row) and versions commit in order (each one updates
        the repository row first), so the lists grow by the rows of versions not read yet instead of reading the
        whole repository on every scan (the distance search over them runs in C). A repository created anew under a
        reused id starts over. None when the repository is gone."""
        rc = RepositoryContent
        with self._core.sessions() as s:
            row = s.execute(select(Repository.created_at, Repository.version).where(Repository.id == repo_id)).first()
            if row is None:  # deleted since the scan was queued
                return None
            created, version = row
            hit = self._names.get(repo_id)
            if hit is None or hit.created != created:
                hit = self._names[repo_id] = _RepoNames(created)
            if hit.upto < version:
                rows = s.execute(select(rc.name, func.min(rc.version_added))
                                 .where(rc.repository_id == repo_id, rc.version_added > hit.upto,
                                        rc.version_added <= version).group_by(rc.name)).all()
                for n, v in rows:
                    if n not in hit.first:
                        hit.first[n] = v
                        hit.candidates.add([n], "repository")
                        hit.firsts.append(v)
                hit.upto = version
        return hit

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


class _RepoNames:
    """One repository's names: typosquat candidates in the order they were read, with each name's first version."""

    __slots__ = ("created", "upto", "first", "candidates", "firsts")

    def __init__(self, created: Any):
        self.created = created  # the repository row's creation time (a new repository under a reused id differs)
        self.upto = -1  # the repository version read up to
        self.first: dict[str, int] = {}  # name -> the version it first appeared in
        self.candidates = typosquat.Candidates()
        self.firsts: list[int] = []  # parallel to candidates.names
