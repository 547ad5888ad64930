"""OSV records as values: parsing, range evaluation (the OSV schema's ``IsVulnerable``), severity, fixed versions.

Pure: no I/O, no database. The service stores records and calls these functions.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from . import versions

__all__ = ["InvalidRecord", "Record", "parse_record", "severity_of", "level_of", "is_affected", "affected_entries",
           "fixed_versions", "npm_range", "LEVELS"]

LEVELS = ("none", "low", "medium", "high", "critical")
_RANK = {lvl: i for i, lvl in enumerate(LEVELS)}
# GitHub advisories' database_specific.severity words, used when a record has no CVSS vector
_WORDS = {"low": "low", "moderate": "medium", "medium": "medium", "high": "high", "critical": "critical"}


class InvalidRecord(ValueError):
    """Not an OSV record (no id or modified, or not a JSON object)."""


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    modified: str
    withdrawn: str | None
    summary: str | None
    aliases: tuple[str, ...]
    score: float | None
    level: str | None
    packages: frozenset[tuple[str, str]]  # (ecosystem, raw name) of every affected entry
    doc: Mapping[str, Any]
    text: str


def parse_record(text: str | bytes, doc: Mapping[str, Any] | None = None) -> Record:
    if doc is None:
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise InvalidRecord(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidRecord("an OSV record is a JSON object")
    rid, modified = doc.get("id"), doc.get("modified")
    if not isinstance(rid, str) or not rid or not isinstance(modified, str) or not modified:
        raise InvalidRecord("an OSV record needs 'id' and 'modified'")
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    packages = set()
    for aff in doc.get("affected") or ():
        pkg = aff.get("package") if isinstance(aff, dict) else None
        if isinstance(pkg, dict) and isinstance(pkg.get("ecosystem"), str) and isinstance(pkg.get("name"), str):
            packages.add((pkg["ecosystem"], pkg["name"]))
    score, level = severity_of(doc)
    aliases = tuple(a for a in doc.get("aliases") or () if isinstance(a, str))
    summary = doc.get("summary") if isinstance(doc.get("summary"), str) else None
    withdrawn = doc.get("withdrawn") if isinstance(doc.get("withdrawn"), str) else None
    return Record(rid, modified, withdrawn, summary, aliases, score, level, frozenset(packages), doc, text)


# -- severity ---------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=16384)
def _vector_score(kind: str, vector: str) -> float | None:
    import cvss

    try:
        if kind == "CVSS_V3":
            return float(cvss.CVSS3(vector).scores()[0])
        if kind == "CVSS_V4":
            return float(cvss.CVSS4(vector).base_score)
        if kind == "CVSS_V2":
            return float(cvss.CVSS2(vector).scores()[0])
    except Exception:  # a malformed vector in upstream data: no score rather than a failed import
        return None
    return None


def level_of(score: float | None) -> str | None:
    """CVSS v3/v4 qualitative rating of a base score."""
    if score is None:
        return None
    if score == 0:
        return "none"
    if score < 4.0:
        return "low"
    if score < 7.0:
        return "medium"
    if score < 9.0:
        return "high"
    return "critical"


def _severities(doc: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    yield from doc.get("severity") or ()
    for aff in doc.get("affected") or ():
        if isinstance(aff, dict):
            yield from aff.get("severity") or ()


def severity_of(doc: Mapping[str, Any]) -> tuple[float | None, str | None]:
    """The highest CVSS base score of the record (top-level or per package) and its level; without a vector,
    the database's own word (``database_specific.severity``) gives the level."""
    best: float | None = None
    for sev in _severities(doc):
        if isinstance(sev, dict) and isinstance(sev.get("score"), str):
            score = _vector_score(str(sev.get("type")), sev["score"])
            if score is not None and (best is None or score > best):
                best = score
    if best is not None:
        return best, level_of(best)
    spec = doc.get("database_specific")
    word = spec.get("severity") if isinstance(spec, dict) else None
    return None, _WORDS.get(word.lower()) if isinstance(word, str) else None


def max_level(levels: Iterable[str | None]) -> str | None:
    found = [lvl for lvl in levels if lvl]
    return max(found, key=lambda lvl: _RANK.get(lvl, 0)) if found else None


# -- matching ---------------------------------------------------------------------------------------------------
def affected_entries(doc: Mapping[str, Any], ecosystem: str, name: str,
                     normalize: Callable[[str], str]) -> list[Mapping[str, Any]]:
    """The record's ``affected`` entries for this package (names compared in the ecosystem's normal form)."""
    out = []
    for aff in doc.get("affected") or ():
        pkg = aff.get("package") if isinstance(aff, dict) else None
        if (isinstance(pkg, dict) and pkg.get("ecosystem") == ecosystem and isinstance(pkg.get("name"), str)
                and normalize(pkg["name"]) == name):
            out.append(aff)
    return out


def _sorted_events(events: Iterable[Mapping[str, Any]], k: Callable[[str], Any]) -> list[tuple[str, str]]:
    keyed = []
    for evt in events:
        if not isinstance(evt, dict) or len(evt) != 1:
            continue
        (kind, value), = evt.items()
        if kind not in ("introduced", "fixed", "last_affected", "limit") or not isinstance(value, str):
            continue
        if kind == "introduced" and value == versions.ZERO:
            keyed.append(((0, None), kind, value))
            continue
        if kind == "limit" and value == "*":
            keyed.append(((2, None), kind, value))
            continue
        try:
            keyed.append(((1, k(value)), kind, value))
        except ValueError:
            continue  # an event value that is not a version of this ordering is ignored
    keyed.sort(key=lambda t: t[0])  # (rank, version): "0" first, "*" last, versions compared only among versions
    return [(kind, value) for _sk, kind, value in keyed]


def _in_range(v: Any, rng: Mapping[str, Any], k: Callable[[str], Any]) -> bool:
    events = _sorted_events(rng.get("events") or (), k)
    limits = [value for kind, value in events if kind == "limit"]
    if limits and not any(value == "*" or v < k(value) for value in limits):
        return False
    vulnerable = False
    for kind, value in events:
        if kind == "introduced" and (value == versions.ZERO or v >= k(value)):
            vulnerable = True
        elif kind == "fixed" and v >= k(value):
            vulnerable = False
        elif kind == "last_affected" and v > k(value):
            vulnerable = False
    return vulnerable


def is_affected(entry: Mapping[str, Any], ecosystem: str, version: str) -> bool:
    """``IncludedInVersions || IncludedInRanges`` for one ``affected`` entry; GIT ranges are not evaluated."""
    listed = entry.get("versions") or ()
    if version in listed:
        return True
    for rng in entry.get("ranges") or ():
        if not isinstance(rng, dict):
            continue
        k = versions.key(ecosystem, str(rng.get("type")))
        if k is None:
            continue
        try:
            v = k(version)
        except ValueError:
            continue
        if _in_range(v, rng, k):
            return True
    return False


def fixed_versions(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    out: list[str] = []
    for entry in entries:
        for rng in entry.get("ranges") or ():
            for evt in (rng.get("events") or ()) if isinstance(rng, dict) else ():
                value = evt.get("fixed") if isinstance(evt, dict) else None
                if isinstance(value, str) and value not in out:
                    out.append(value)
    return out


def npm_range(entries: Iterable[Mapping[str, Any]]) -> str:
    """The affected versions as a node-semver range (``>=1.0.0 <1.2.3 || 2.0.0``), the form npm audit reads."""
    parts: list[str] = []
    for entry in entries:
        for v in entry.get("versions") or ():
            if isinstance(v, str) and v not in parts:
                parts.append(v)
        for rng in entry.get("ranges") or ():
            if not isinstance(rng, dict) or rng.get("type") not in ("SEMVER", "ECOSYSTEM"):
                continue
            lower: str | None = None
            for kind, value in _sorted_events(rng.get("events") or (), versions.semver_key):
                if kind == "introduced":
                    lower = ">=0.0.0-0" if value == versions.ZERO else f">={value}"
                elif kind in ("fixed", "last_affected") and lower is not None:
                    op = "<" if kind == "fixed" else "<="
                    parts.append(f"{lower} {op}{value}" if lower != ">=0.0.0-0" else f"{op}{value}")
                    lower = None
            if lower is not None:
                parts.append(lower if lower != ">=0.0.0-0" else "*")
    return " || ".join(parts) if parts else "<0.0.0-0"
