"""Scans: every registered analyzer looks at a package version; one stored result per analyzer.

``package.created`` queues a scan of that package version (deduplicated: a wheel and an sdist of one release make
one scan); ``scan`` runs the analyzers, stores each result and emits ``scan.completed`` when any result is new or
changed. Policies read ``facts`` (the analyzers' small ``summary`` dicts merged).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ..core.events import Event, file_entries
from ..core.interfaces import RepoInfo
from ..db.models import ScanResult, utcnow

if TYPE_CHECKING:  # pragma: no cover
    from ..core.content import LiveFile
    from ..core.services import Core

__all__ = ["ScanTarget", "ScanService", "Analyzer", "STATUSES"]

log = logging.getLogger("wharf.scan")

STATUSES = ("pass", "warn", "fail", "error")


@dataclass
class ScanTarget:
    core: "Core"
    repo: RepoInfo
    name: str
    version: str
    files: list["LiveFile"] = field(default_factory=list)

    def open(self, f: "LiveFile") -> IO[bytes]:
        """The stored bytes of one of the files (the caller closes it)."""
        return self.core.blobs.open(f.sha256)


Analyzer = Callable[["Core", ScanTarget], dict[str, Any]]


def _digest(status: str, summary: dict[str, Any], findings: list[Any]) -> str:
    doc = json.dumps([status, summary, findings], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(doc.encode()).hexdigest()


class ScanService:
    def __init__(self, core: "Core"):
        self._core = core
        self._sessions: sessionmaker[Session] = core.sessions
        self._analyzers: dict[str, Analyzer] = {}
        self._coordinates: set[str] = set()  # analyzers that need only the name and version, not the files
        core.tasks.register("scan", self._scan_task, helper=True)  # CPU-heavy: the task helper's (tasks/helper.py)
        core.events.on_store("scans", self._on_created, types={"package.created"},
                             when=lambda _e: bool(self._analyzers) and core.settings.vetting)

    def register(self, name: str, fn: Analyzer, *, coordinates: bool = False) -> None:
        """Add an analyzer; ``coordinates``: it judges a package version by name and version alone (its target has
        no files), so ``prefacts`` can ask it before a file is stored or fetched."""
        self._analyzers[name] = fn
        if coordinates:
            self._coordinates.add(name)

    @property
    def analyzers(self) -> list[str]:
        return sorted(self._analyzers)

    # -- triggers -------------------------------------------------------------------------------------------
    def _on_created(self, session: Session, event: Event) -> None:
        """A new version's (or file's) scan, queued with its ``package.created`` event."""
        if event.package is None or event.version is None:
            return
        key = f"scan:{event.repository}:{event.package}:{event.version}"
        self._core.tasks.enqueue("scan", {"repository": event.repository, "name": event.package,
                                          "version": event.version}, dedupe_key=key, max_attempts=3, session=session)

    def _scan_task(self, core: "Core", payload: dict[str, Any]) -> None:
        repo = core.repos.get(payload["repository"])
        if repo is not None:  # (else the repository is gone: nothing to scan)
            self.scan(repo, payload["name"], payload["version"])

    # -- scanning -------------------------------------------------------------------------------------------
    def scan(self, repo: RepoInfo, name: str, version: str, *, only: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Run the analyzers (or ``only`` those) on a package version's live files; store and return the results."""
        files = [f for f in self._core.content.files(repo.id, name, include_hidden=True) if f.version == version]
        if not files:
            return {}
        target = ScanTarget(self._core, repo, name, version, files)
        results: dict[str, dict[str, Any]] = {}
        for analyzer, fn in self._analyzers.items():
            if only is not None and analyzer not in only:
                continue
            try:
                out = fn(self._core, target) or {}
            except Exception as exc:  # noqa: BLE001 - one broken analyzer must not hide the others' results
                log.exception("analyzer %s failed on %s %s in %s", analyzer, name, version, repo.name)
                out = {"status": "error", "summary": {}, "findings": [{"message": f"{type(exc).__name__}: {exc}"}]}
            status = out.get("status", "pass")
            results[analyzer] = {"status": status if status in STATUSES else "error",
                                 "summary": dict(out.get("summary") or {}), "findings": list(out.get("findings") or [])}
        changed = self.store(repo, name, version, results, files=sorted({f.sha256 for f in files}))
        if changed:
            self._core.events.emit(Event("scan.completed", repo.name, name, version, file_entries(files),
                                         actor="scanner", format=repo.format,
                                         detail={"changed": changed,
                                                 "status": {a: r["status"] for a, r in results.items()}}))
        return results

    def store(self, repo: RepoInfo, name: str, version: str, results: dict[str, dict[str, Any]], *,
              files: list[str] | None = None) -> list[str]:
        """Keep the latest result per analyzer, with the sha256 of the ``files`` it covered; returns the analyzers
        whose result is new or changed."""
        changed = []
        now = utcnow()
        with self._sessions.begin() as s:
            rows = {r.analyzer: r for r in s.scalars(select(ScanResult).where(
                ScanResult.repository_id == repo.id, ScanResult.name == name, ScanResult.version == version))}
            for analyzer, res in results.items():
                digest = _digest(res["status"], res["summary"], res["findings"])
                row = rows.get(analyzer)
                if row is None:
                    s.add(ScanResult(repository_id=repo.id, name=name, version=version, analyzer=analyzer,
                                     status=res["status"], summary=res["summary"], findings=res["findings"],
                                     digest=digest, scanned_at=now, files=files))
                    changed.append(analyzer)
                else:
                    if row.digest != digest:
                        row.status, row.summary, row.findings, row.digest = (res["status"], res["summary"],
                                                                             res["findings"], digest)
                        changed.append(analyzer)
                    row.scanned_at, row.files = now, files
        return changed

    # -- reading --------------------------------------------------------------------------------------------
    def results(self, repo_id: int, name: str, version: str | None = None) -> dict[str, Any]:
        """``{analyzer: {...}}`` for one version, or ``{version: {analyzer: {...}}}`` for every version of ``name``."""
        q = select(ScanResult).where(ScanResult.repository_id == repo_id, ScanResult.name == name)
        if version is not None:
            q = q.where(ScanResult.version == version)
        out: dict[str, Any] = {}
        with self._sessions() as s:
            for r in s.scalars(q):
                entry = {"status": r.status, "summary": r.summary, "findings": r.findings,
                         "scanned_at": r.scanned_at.isoformat() if r.scanned_at else None}
                if version is not None:
                    out[r.analyzer] = entry
                else:
                    out.setdefault(r.version, {})[r.analyzer] = entry
        return out

    def prefacts(self, repo: RepoInfo, name: str, version: str) -> dict[str, Any]:
        """The summaries of the coordinate analyzers for a version not stored (or not scanned) yet; nothing stored."""
        merged: dict[str, Any] = {}
        target = ScanTarget(self._core, repo, name, version)
        for analyzer in sorted(self._coordinates):
            try:
                merged.update((self._analyzers[analyzer](self._core, target) or {}).get("summary") or {})
            except Exception:  # noqa: BLE001 - unknown facts, as before the analyzer existed
                log.exception("analyzer %s failed on %s %s (before storing)", analyzer, name, version)
        return merged

    def facts(self, repo: RepoInfo, name: str, version: str) -> dict[str, Any]:
        """The analyzers' summaries merged (what policies read); ``scanned`` says whether any result exists."""
        merged: dict[str, Any] = {}
        results = self.results(repo.id, name, version)
        for analyzer in sorted(results):
            merged.update(results[analyzer]["summary"])
        merged["scanned"] = bool(results)
        merged["scan_status"] = {a: r["status"] for a, r in results.items()}
        return merged
