"""The security overview: what the stored scan results say about a repository and about one package.

Read-only: built from the live files (``ContentService.files``) and the ``scan_results`` rows of every analyzer,
including the ``vulnerabilities`` analyzer's when it is registered. Its findings are read leniently: ``id``,
``aliases``, ``severity`` (a level, a CVSS score, or ``{"level"|"score"}``), ``summary`` and the fixed versions in
``fixed`` / ``fixed_versions`` / ``fixed_in``. Per policy pass/fail comes from the policy area's decision log when
that service exists (``core.policy.decisions``); otherwise that part is ``None``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Iterable

from sqlalchemy import select

from ..db.models import ScanResult
from .malware import SEVERITIES

if TYPE_CHECKING:  # pragma: no cover
    from ..core.interfaces import RepoInfo
    from ..core.services import Core

__all__ = ["repository_overview", "package_overview", "severity_of", "vulnerabilities_of"]

VULN_ANALYZER = "vulnerabilities"
_RANK = {s: i for i, s in enumerate(SEVERITIES)}
_LEVELS = {"moderate": "medium", "important": "high", "none": "info", "unknown": "info", "negligible": "info"}


def severity_of(value: Any) -> str | None:
    """A finding's severity as one of SEVERITIES (levels, CVSS base scores, or dicts holding either)."""
    if isinstance(value, dict):
        value = value.get("level") or value.get("severity") or value.get("score")
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        score = float(value)
        return ("critical" if score >= 9 else "high" if score >= 7 else "medium" if score >= 4
                else "low" if score > 0 else "info")
    s = str(value).strip().lower()
    s = _LEVELS.get(s, s)
    return s if s in _RANK else None


def _max(severities: Iterable[str | None]) -> str | None:
    best = None
    for s in severities:
        if s is not None and (best is None or _RANK[s] > _RANK[best]):
            best = s
    return best


def _fixed(f: dict[str, Any]) -> list[str]:
    for key in ("fixed", "fixed_versions", "fixed_in"):
        v = f.get(key)
        if isinstance(v, str):
            return [v]
        if isinstance(v, list):
            return [str(x) for x in v]
    return []


def vulnerabilities_of(result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The vulnerabilities analyzer's findings in one shape (empty when it did not run)."""
    if not result:
        return []
    out = []
    for f in result.get("findings") or ():
        if not isinstance(f, dict):
            continue
        out.append({"id": f.get("id") or f.get("rule"), "aliases": list(f.get("aliases") or ()),
                    "severity": severity_of(f.get("severity")), "summary": f.get("summary") or f.get("message"),
                    "fixed": _fixed(f)})
    return out


def _severity_counts(results: dict[str, dict[str, Any]]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for res in results.values():
        for f in res.get("findings") or ():
            s = severity_of(f.get("severity")) if isinstance(f, dict) else None
            if s is not None:
                counts[s] += 1
    return counts


def _age(at: Any, now: datetime) -> float | None:
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return round((now - at).total_seconds(), 1)


def _results_by_version(core: "Core", repo: "RepoInfo", name: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    q = select(ScanResult).where(ScanResult.repository_id == repo.id)
    if name is not None:
        q = q.where(ScanResult.name == name)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    with core.sessions() as s:
        for r in s.scalars(q):
            out.setdefault((r.name, r.version), {})[r.analyzer] = {
                "status": r.status, "summary": r.summary, "findings": r.findings, "scanned_at": r.scanned_at,
                "files": r.files}
    return out


@dataclass
class _Live:
    added_at: Any  # when the version's first live file was added
    files: dict[str, str] = field(default_factory=dict)  # sha256 -> filename


def _live_versions(core: "Core", repo: "RepoInfo", name: str | None = None) -> dict[tuple[str, str], _Live]:
    """(name, version) -> its live files and when the first was added, in the order versions appeared."""
    out: dict[tuple[str, str], _Live] = {}
    for f in core.content.files(repo.id, name, meta_keys=()):
        live = out.setdefault((f.name, f.version), _Live(f.added_at))
        if f.added_at is not None and live.added_at is not None and f.added_at < live.added_at:
            live.added_at = f.added_at
        live.files[f.sha256] = f.filename
    return dict(sorted(out.items(), key=lambda kv: (kv[1].added_at is None, kv[1].added_at or 0)))


def _policy_results(core: "Core", repo: "RepoInfo", name: str | None = None) -> dict[tuple[str, str], dict[str, str]] | None:
    """Hook into the policy area's decision log: (name, version) -> {policy: latest result}; None without it."""
    service = getattr(core, "policy", None)
    decisions = getattr(service, "decisions", None)
    if decisions is None:
        return None
    out: dict[tuple[str, str], dict[str, str]] = {}
    try:
        rows = decisions(repository=repo.name, name=name, limit=1000)
    except Exception:  # noqa: BLE001 - the overview must not fail because another area's log does
        return None
    for d in rows:  # newest first: the first seen per policy is the latest
        key = (d.get("package"), d.get("version"))
        out.setdefault(key, {}).setdefault(d.get("policy") or "?", d.get("result") or "?")
    return out


def _version_entry(version: str, live: _Live, results: dict[str, Any], analyzers: list[str], now: datetime,
                   policies: dict[str, str] | None, *, findings: bool) -> dict[str, Any]:
    scanned_at = [r["scanned_at"] for r in results.values() if r.get("scanned_at") is not None]
    # a file added to the version after a result was stored (say the sdist after the wheel) waits for the next scan
    unscanned = {live.files[sha] for sha in live.files
                 for r in results.values() if r.get("files") is not None and sha not in r["files"]}
    counts = _severity_counts(results)
    vulns = vulnerabilities_of(results.get(VULN_ANALYZER))
    entry: dict[str, Any] = {
        "version": version,
        "added_at": live.added_at.isoformat() if live.added_at is not None else None,
        "scanned": bool(results),
        "missing_analyzers": [a for a in analyzers if a not in results],
        "unscanned_files": sorted(unscanned) if results else sorted(live.files.values()),
        "scanned_at": min(scanned_at).isoformat() if scanned_at else None,
        "scan_age_seconds": _age(min(scanned_at), now) if scanned_at else None,
        "status": {a: r["status"] for a, r in sorted(results.items())},
        "max_severity": _max(counts),
        "severity_counts": {s: counts[s] for s in reversed(SEVERITIES) if counts[s]},
        "unresolved_vulnerabilities": len(vulns) if VULN_ANALYZER in results else None,
        "policies": policies,
    }
    if findings:
        entry["summary"] = {a: r["summary"] for a, r in sorted(results.items())}
        entry["findings"] = {a: r["findings"] for a, r in sorted(results.items()) if r["findings"]}
        entry["vulnerabilities"] = vulns
    return entry


def repository_overview(core: "Core", repo: "RepoInfo") -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    analyzers = list(core.scans.analyzers)
    live = _live_versions(core, repo)
    results = _results_by_version(core, repo)
    policies = _policy_results(core, repo)
    by_analyzer: dict[str, Counter[str]] = {a: Counter() for a in analyzers}
    by_policy: dict[str, Counter[str]] = {}
    severity: Counter[str] = Counter()
    ages: list[float] = []
    packages: dict[str, dict[str, Any]] = {}
    scanned = 0
    for (name, version), version_live in live.items():
        res = results.get((name, version), {})
        pol = (policies or {}).get((name, version))
        entry = _version_entry(version, version_live, res, analyzers, now, pol, findings=False)
        if entry["scanned"]:
            scanned += 1
            if entry["scan_age_seconds"] is not None:
                ages.append(entry["scan_age_seconds"])
        for a, r in res.items():
            by_analyzer.setdefault(a, Counter())[r["status"]] += 1
        for p, result in (pol or {}).items():
            by_policy.setdefault(p, Counter())[result] += 1
        severity.update(entry["severity_counts"])
        pkg = packages.setdefault(name, {"name": name, "versions": 0, "scanned_versions": 0, "max_severity": None})
        pkg["versions"] += 1
        pkg["scanned_versions"] += int(entry["scanned"])
        pkg["max_severity"] = _max([pkg["max_severity"], entry["max_severity"]])
        pkg["latest"] = entry  # live is in the order versions appeared: the last one wins
    return {
        "repository": repo.name,
        "format": repo.format,
        "analyzers": analyzers,
        "vetting": bool(core.settings.vetting),
        "versions": {"total": len(live), "scanned": scanned, "not_scanned": len(live) - scanned},
        "packages_total": len(packages),
        "scan_age_seconds": {"min": min(ages), "max": max(ages)} if ages else None,
        "by_analyzer": {a: dict(c) for a, c in sorted(by_analyzer.items())},
        "by_policy": {p: dict(c) for p, c in sorted(by_policy.items())} if policies is not None else None,
        "max_severity": _max(severity),
        "severity_counts": {s: severity[s] for s in reversed(SEVERITIES) if severity[s]},
        "packages": sorted(packages.values(), key=lambda p: p["name"]),
    }


def package_overview(core: "Core", repo: "RepoInfo", name: str) -> dict[str, Any] | None:
    now = datetime.now(timezone.utc)
    analyzers = list(core.scans.analyzers)
    live = _live_versions(core, repo, name)
    if not live:
        return None
    results = _results_by_version(core, repo, name)
    policies = _policy_results(core, repo, name)
    history = [_version_entry(v, lv, results.get((n, v), {}), analyzers, now, (policies or {}).get((n, v)),
                              findings=True) for (n, v), lv in live.items()]
    latest = history[-1]
    return {
        "repository": repo.name,
        "name": name,
        "analyzers": analyzers,
        "latest": latest["version"],
        "max_severity": latest["max_severity"],
        "vulnerabilities": latest.get("vulnerabilities", []),
        "releases": [{k: h[k] for k in ("version", "added_at", "scanned", "max_severity", "unresolved_vulnerabilities",
                                         "status")} for h in history],
        "versions": list(reversed(history)),
    }
