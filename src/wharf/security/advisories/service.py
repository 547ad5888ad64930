"""The advisories service (``core.advisories``): import OSV data, look packages up, match versions, re-evaluate.

Formats take part through one optional plugin attribute, ``osv_ecosystem`` (e.g. ``"PyPI"``): a format without it
has no advisories. Names are indexed in the format's normal form (its ``normalize_name``), so a lookup by a stored
package's name is one indexed query.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from sqlalchemy import delete, insert, select

from ...core.errors import InvalidInput, NotFound
from ...db.models import Artifact, Repository, RepositoryContent, utcnow
from ...db.models_advisories import Advisory, AdvisoryPackage, AdvisorySource
from . import osv
from .sources import iter_source

if TYPE_CHECKING:  # pragma: no cover
    from ...core.interfaces import RepoInfo
    from ...core.services import Core

__all__ = ["AdvisoryService", "ImportReport", "Match", "ANALYZER"]

log = logging.getLogger("wharf.advisories")

ANALYZER = "vulnerabilities"
_TASK = "advisories.import"
_RESCAN = "advisories.rescan"
_RESCAN_BATCH = 200
_CHUNK = 2000
_INSERT_ADVISORY = insert(Advisory.__table__)
_INSERT_INDEX = insert(AdvisoryPackage.__table__)
_IN_CHUNK = 500  # names per IN (...) clause


@dataclass
class ImportReport:
    read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    invalid: int = 0
    errors: list[str] = field(default_factory=list)
    packages_touched: int = 0
    reevaluated: int = 0
    changed_results: int | None = 0  # None: the re-evaluation was queued as background tasks
    seconds: float = 0.0
    not_modified: bool = False  # a URL source answered 304
    touched: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "touched"}


@dataclass(frozen=True, slots=True)
class Match:
    record: osv.Record
    entries: tuple[Mapping[str, Any], ...]

    @property
    def fixed(self) -> list[str]:
        return osv.fixed_versions(self.entries)

    def finding(self) -> dict[str, Any]:
        r = self.record
        return {"id": r.id, "aliases": list(r.aliases), "summary": r.summary, "severity": r.level, "score": r.score,
                "fixed": self.fixed, "modified": r.modified}


class AdvisoryService:
    def __init__(self, core: "Core"):
        self.core = core
        self._sessions = core.sessions
        self._normalizers: dict[str, Callable[[str], str]] = {}
        self._formats: dict[str, list[str]] = {}
        for fmt, plugin in core.plugins.items():
            eco = getattr(plugin, "osv_ecosystem", None)
            if eco:
                self._formats.setdefault(eco, []).append(fmt)
                self._normalizers.setdefault(eco, _safe(plugin.normalize_name))
        self.inline_limit = 500  # stored versions re-evaluated inside an import; more go to background tasks
        self._register()

    # -- wiring (scans, tasks) ----------------------------------------------------------------------------------
    def _register(self) -> None:
        self.core.scans.register(ANALYZER, analyze, coordinates=True)
        self.core.tasks.register(_TASK, _scheduled_import, helper=True)
        self.core.tasks.register(_RESCAN, _rescan_task, helper=True)

    def schedule(self, delay: float = 0.0) -> int | None:
        """Queue the next import from the configured URL (``advisories_url``), unless one is already queued."""
        if not self.core.settings.advisories_url:
            return None
        return self.core.tasks.enqueue(_TASK, {}, delay=delay, max_attempts=1, dedupe_key=_TASK)

    # -- names ----------------------------------------------------------------------------------------------------
    def ecosystem_of(self, fmt: str) -> str | None:
        return getattr(self.core.plugins.get(fmt), "osv_ecosystem", None)

    def normalize(self, ecosystem: str, name: str) -> str:
        return self._normalizers.get(ecosystem, _identity)(name)

    # -- import ---------------------------------------------------------------------------------------------------
    def import_source(self, source: str | Path, *, progress: Callable[[int], None] | None = None,
                      reevaluate: bool = True) -> ImportReport:
        """Import a directory, a zip (``all.zip`` of an ecosystem), one JSON file, or an http(s) URL of either."""
        text = str(source)
        if text.startswith(("http://", "https://")):
            return self.import_url(text, progress=progress, reevaluate=reevaluate)
        path = Path(source)
        if not path.exists():
            raise NotFound(f"no such file or directory: {path}")
        return self.import_records(iter_source(path), progress=progress, reevaluate=reevaluate)

    def import_url(self, url: str, *, progress: Callable[[int], None] | None = None,
                   reevaluate: bool = True) -> ImportReport:
        import httpx

        with self._sessions() as s:
            state = s.get(AdvisorySource, url)
            etag, last_modified = (state.etag, state.last_modified) if state else (None, None)
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        tmpdir = Path(self.core.settings.data).resolve() / "state"
        tmpdir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="advisories-", suffix=".download", dir=tmpdir)
        try:
            with os.fdopen(fd, "wb") as fh, httpx.stream("GET", url, headers=headers, timeout=60.0,
                                                         follow_redirects=True) as resp:
                if resp.status_code == 304:
                    self._source_state(url, etag, last_modified, ok=True, message="not modified", imported=False)
                    return ImportReport(not_modified=True)
                if resp.status_code >= 400:
                    self._source_state(url, etag, last_modified, ok=False, message=f"HTTP {resp.status_code}",
                                       imported=False)
                    raise InvalidInput(f"advisory source {url} answered HTTP {resp.status_code}")
                for chunk in resp.iter_bytes(1 << 20):
                    fh.write(chunk)
                new_etag, new_lm = resp.headers.get("etag"), resp.headers.get("last-modified")
            report = self.import_records(iter_source(Path(tmp)), progress=progress, reevaluate=reevaluate)
            self._source_state(url, new_etag, new_lm, ok=True, message=None, imported=True)
            return report
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass

    def _source_state(self, url: str, etag: str | None, last_modified: str | None, *, ok: bool,
                      message: str | None, imported: bool) -> None:
        with self._sessions.begin() as s:
            state = s.get(AdvisorySource, url) or AdvisorySource(url=url)
            state.etag, state.last_modified, state.ok, state.message = etag, last_modified, ok, message
            state.checked_at = utcnow()
            if imported:
                state.imported_at = state.checked_at
            s.add(state)

    def import_records(self, items: Iterable[tuple[str, bytes]], *, progress: Callable[[int], None] | None = None,
                       reevaluate: bool = True) -> ImportReport:
        """Import ``(where, json bytes)`` items. A record whose id and ``modified`` are already stored is skipped."""
        start = time.perf_counter()
        report = ImportReport()
        with self._sessions() as s:
            existing: dict[str, str] = dict(s.execute(select(Advisory.id, Advisory.modified)).all())
        batch: dict[str, osv.Record] = {}
        for where, raw in items:
            report.read += 1
            try:
                doc = json.loads(raw)
                # the incremental check first: an unchanged record costs one JSON parse
                rid = doc.get("id") if isinstance(doc, dict) else None
                if isinstance(rid, str) and rid in existing and existing[rid] == doc.get("modified") and rid not in batch:
                    report.unchanged += 1
                    continue
                rec = osv.parse_record(raw, doc)
            except (osv.InvalidRecord, UnicodeDecodeError, ValueError) as exc:
                report.invalid += 1
                if len(report.errors) < 20:
                    report.errors.append(f"{where}: {exc}")
                continue
            batch[rec.id] = rec
            if len(batch) >= _CHUNK:
                self._write(batch, existing, report)
                if progress:
                    progress(report.read)
                batch = {}
        if batch:
            self._write(batch, existing, report)
        if progress:
            progress(report.read)
        report.packages_touched = len(report.touched)
        if reevaluate and report.touched:
            report.reevaluated, report.changed_results = self.reevaluate(report.touched)
        report.seconds = round(time.perf_counter() - start, 3)
        log.info("advisories imported", extra={"fields": report.as_dict()})
        return report

    def _write(self, batch: Mapping[str, osv.Record], existing: dict[str, str], report: ImportReport) -> None:
        updated = [rid for rid in batch if rid in existing]
        now = utcnow()
        rows, index = [], []
        for rec in batch.values():
            rows.append({"id": rec.id, "modified": rec.modified, "withdrawn": rec.withdrawn, "summary": rec.summary,
                         "score": rec.score, "level": rec.level, "record": rec.text, "imported_at": now})
            keys = {(eco, self.normalize(eco, name)) for eco, name in rec.packages}
            report.touched.update(keys)
            if rec.withdrawn:
                report.withdrawn += 1
                continue
            index.extend({"ecosystem": eco, "name": name, "advisory_id": rec.id} for eco, name in keys)
        with self._sessions.begin() as s:
            for part in _chunks(updated, _IN_CHUNK):
                old = s.execute(select(AdvisoryPackage.ecosystem, AdvisoryPackage.name)
                                .where(AdvisoryPackage.advisory_id.in_(part))).all()
                report.touched.update((e, n) for e, n in old)
                s.execute(delete(AdvisoryPackage).where(AdvisoryPackage.advisory_id.in_(part)))
                s.execute(delete(Advisory).where(Advisory.id.in_(part)))
            s.execute(_INSERT_ADVISORY, rows)
            if index:
                s.execute(_INSERT_INDEX, index)
        report.updated += len(updated)
        report.added += len(batch) - len(updated)
        for rec in batch.values():
            existing[rec.id] = rec.modified

    # -- reads ----------------------------------------------------------------------------------------------------
    def get(self, advisory_id: str) -> osv.Record | None:
        with self._sessions() as s:
            text = s.scalar(select(Advisory.record).where(Advisory.id == advisory_id))
        return osv.parse_record(text) if text is not None else None

    def match(self, ecosystem: str, name: str, version: str | None) -> list[Match]:
        """Records affecting ``name`` at ``version`` (every active record of the package when version is None)."""
        return self.match_many([(ecosystem, name, version)])[0]

    def match_many(self, queries: list[tuple[str, str, str | None]]) -> list[list[Match]]:
        """``match`` for many (ecosystem, name, version) at once: one indexed query per 500 names."""
        wanted: dict[str, set[str]] = {}
        keys = []
        for eco, name, _version in queries:
            norm = self.normalize(eco, name)
            keys.append(norm)
            wanted.setdefault(eco, set()).add(norm)
        found: dict[tuple[str, str], list[str]] = {}
        with self._sessions() as s:
            for eco, names in wanted.items():
                for part in _chunks(sorted(names), _IN_CHUNK):
                    q = (select(AdvisoryPackage.name, Advisory.record)
                         .join(Advisory, AdvisoryPackage.advisory_id == Advisory.id)
                         .where(AdvisoryPackage.ecosystem == eco, AdvisoryPackage.name.in_(part))
                         .order_by(Advisory.id))
                    for name, text in s.execute(q):
                        found.setdefault((eco, name), []).append(text)
        parsed: dict[str, osv.Record] = {}
        out = []
        for (eco, _name, version), norm in zip(queries, keys):
            normalize = self._normalizers.get(eco, _identity)
            matches = []
            for text in found.get((eco, norm), ()):
                rec = parsed.get(text)
                if rec is None:
                    rec = parsed[text] = osv.parse_record(text)
                entries = osv.affected_entries(rec.doc, eco, norm, normalize)
                if version is None or any(osv.is_affected(e, eco, version) for e in entries):
                    matches.append(Match(rec, tuple(entries)))
            out.append(matches)
        return out

    def match_package(self, fmt: str, name: str, version: str) -> list[Match]:
        eco = self.ecosystem_of(fmt)
        return self.match(eco, name, version) if eco else []

    def stats(self) -> dict[str, Any]:
        from sqlalchemy import func

        with self._sessions() as s:
            total = s.scalar(select(func.count()).select_from(Advisory)) or 0
            withdrawn = s.scalar(select(func.count()).select_from(Advisory).where(Advisory.withdrawn.is_not(None))) or 0
            per_eco = dict(s.execute(select(AdvisoryPackage.ecosystem, func.count(func.distinct(AdvisoryPackage.advisory_id)))
                                     .group_by(AdvisoryPackage.ecosystem)).all())
            sources = [{"url": src.url, "checked_at": src.checked_at, "imported_at": src.imported_at, "ok": src.ok,
                        "message": src.message} for src in s.scalars(select(AdvisorySource))]
        return {"advisories": int(total), "withdrawn": int(withdrawn), "ecosystems": per_eco,
                "formats": {eco: fmts for eco, fmts in self._formats.items()}, "sources": sources,
                "scheduled_url": self.core.settings.advisories_url,
                "scheduled_interval": self.core.settings.advisories_interval}

    # -- results of one package version ---------------------------------------------------------------------------
    def evaluate(self, repo: "RepoInfo", name: str, version: str) -> dict[str, Any]:
        """The ``vulnerabilities`` analyzer's result for a stored package version."""
        eco = self.ecosystem_of(repo.format)
        if eco is None:
            return {"status": "pass", "summary": {"count": 0, "max_severity": None, "max_score": None,
                                                  "fixable": 0, "ids": []}, "findings": []}
        matches = self.match(eco, name, version)
        findings = [m.finding() for m in matches]
        scores = [f["score"] for f in findings if f["score"] is not None]
        level = osv.max_level(f["severity"] for f in findings)
        summary = {"count": len(findings), "max_severity": level, "max_score": max(scores) if scores else None,
                   "fixable": sum(1 for f in findings if f["fixed"]), "ids": [f["id"] for f in findings]}
        status = "pass" if not findings else ("fail" if level in ("high", "critical") else "warn")
        return {"status": status, "summary": summary, "findings": findings}

    # -- re-evaluation after a change -----------------------------------------------------------------------------
    def affected_versions(self, touched: Iterable[tuple[str, str]]) -> list[tuple["RepoInfo", str, str]]:
        """Stored package versions (live in some repository) whose names the changed records touch."""
        by_eco: dict[str, set[str]] = {}
        for eco, name in touched:
            by_eco.setdefault(eco, set()).add(name)
        repos = {r.id: r for r in self.core.repos.list()}
        out: set[tuple[int, str, str]] = set()
        with self._sessions() as s:
            for eco, names in by_eco.items():
                formats = self._formats.get(eco)
                if not formats:
                    continue
                for part in _chunks(sorted(names), _IN_CHUNK):
                    q = (select(RepositoryContent.repository_id, RepositoryContent.name, Artifact.version)
                         .join(Artifact, Artifact.id == RepositoryContent.artifact_id)
                         .join(Repository, Repository.id == RepositoryContent.repository_id)
                         .where(Repository.format.in_(formats), RepositoryContent.version_removed.is_(None),
                                RepositoryContent.name.in_(part)).distinct())
                    out.update((r, n, v) for r, n, v in s.execute(q).all())
        return [(repos[rid], name, version) for rid, name, version in sorted(out) if rid in repos]

    def reevaluate(self, touched: Iterable[tuple[str, str]]) -> tuple[int, int | None]:
        """Re-run the analyzer for the affected stored versions only; returns (versions, results changed).

        Up to ``inline_limit`` versions are re-evaluated at once (the import's report counts the changes); more
        are queued as background tasks of ``_RESCAN_BATCH`` versions each (changes then count as None)."""
        targets = self.affected_versions(touched)
        if len(targets) > self.inline_limit:
            for part in _chunks(targets, _RESCAN_BATCH):
                self.core.tasks.enqueue(_RESCAN, {"targets": [[r.name, n, v] for r, n, v in part]})
            return len(targets), None
        changed = sum(_rescan(self.core.scans, repo, name, version) for repo, name, version in targets)
        return len(targets), changed


def analyze(core: "Core", target: Any) -> dict[str, Any]:
    """The ``vulnerabilities`` analyzer (registered with ``core.scans``)."""
    return core.advisories.evaluate(target.repo, target.name, target.version)  # type: ignore[attr-defined]


def _rescan(scans: Any, repo: "RepoInfo", name: str, version: str) -> bool:
    """Run only this analyzer through core.scans (which stores the result and emits ``scan.completed`` when it
    changed); True when it changed."""
    before = scans.results(repo.id, name, version).get(ANALYZER)
    after = scans.scan(repo, name, version, only=[ANALYZER]).get(ANALYZER)
    if before is None or after is None:
        return after is not None
    return any(before[k] != after[k] for k in ("status", "summary", "findings"))


def _rescan_task(core: "Core", payload: dict[str, Any]) -> None:
    for repo_name, name, version in payload["targets"]:
        repo = core.repos.get(repo_name)
        if repo is not None:
            _rescan(core.scans, repo, name, version)


def _scheduled_import(core: "Core", payload: dict[str, Any]) -> None:
    """The periodic import: never retried by the queue (it runs again after the interval), so it always
    schedules its successor; a failure is logged and kept in the source's state."""
    url = payload.get("url") or core.settings.advisories_url
    try:
        if url:
            core.advisories.import_url(url)  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - the next run may succeed
        log.exception("scheduled advisory import from %s failed", url)
    finally:
        core.advisories.schedule(delay=core.settings.advisories_interval)  # type: ignore[attr-defined]


def _identity(name: str) -> str:
    return name


def _safe(normalize: Callable[[str], str]) -> Callable[[str], str]:
    def norm(name: str) -> str:
        try:
            return normalize(name)
        except Exception:  # a name the format would refuse simply matches nothing stored
            return name

    return norm


def _chunks(items: list[Any] | tuple[Any, ...], n: int) -> Iterator[list[Any]]:
    items = list(items)
    for i in range(0, len(items), n):
        yield items[i:i + n]
