"""``npm audit``: the bulk advisory endpoint (``POST /-/npm/v1/security/advisories/bulk``) answered from the
advisories Wharf imported (OSV records of the ``npm`` ecosystem).

npm sends ``{name: [installed versions]}`` and gets, per name, the advisories with a node-semver
``vulnerable_versions`` range it evaluates itself (and uses to find a fix among the package's versions).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, Mapping

from ...security.advisories import osv

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core

__all__ = ["bulk_advisories", "numeric_id"]

_NPM_SEVERITY = {"none": "info", "low": "low", "medium": "moderate", "high": "high", "critical": "critical"}


def numeric_id(advisory_id: str) -> int:
    """npm keys advisories by a number: a stable one derived from the OSV id."""
    return int.from_bytes(hashlib.sha256(advisory_id.encode()).digest()[:6], "big")


def _vector(doc: Mapping[str, Any]) -> str | None:
    for sev in doc.get("severity") or ():
        if isinstance(sev, dict) and str(sev.get("type", "")).startswith("CVSS_V") and isinstance(sev.get("score"), str):
            return sev["score"]  # type: ignore[no-any-return]
    return None


def bulk_advisories(core: "Core", base_url: str, request: Any) -> dict[str, list[dict[str, Any]]]:
    if not isinstance(request, dict):
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    asked = [(name, installed) for name, installed in request.items()
             if isinstance(name, str) and isinstance(installed, list)]
    every = core.advisories.match_many([("npm", name, None) for name, _installed in asked])
    for (name, installed), matches in zip(asked, every):
        found = []
        for m in matches:
            if not any(osv.is_affected(e, "npm", v) for e in m.entries for v in installed if isinstance(v, str)):
                continue
            rec, doc = m.record, m.record.doc
            spec = doc.get("database_specific")
            cwe = spec.get("cwe_ids") if isinstance(spec, dict) else None
            found.append({
                "id": numeric_id(rec.id),
                "url": f"{base_url}/-/osv/v1/vulns/{rec.id}",
                "title": rec.summary or rec.id,
                "severity": _NPM_SEVERITY.get(rec.level or "", "moderate"),
                "vulnerable_versions": osv.npm_range(m.entries),
                "cwe": cwe if isinstance(cwe, list) else [],
                "cvss": {"score": rec.score or 0, "vectorString": _vector(doc)},
            })
        if found:
            out[name] = found
    return out
