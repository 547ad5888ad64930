"""The ``vulnerabilities`` key of the JSON API (``/<repo>/pypi/<project>[/<version>]/json``), in the public
index's shape, from the OSV records (``PyPI`` ecosystem) Wharf imported."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core

__all__ = ["vulnerabilities"]


def vulnerabilities(core: "Core", name: str, version: str, base_url: str) -> list[dict[str, Any]]:
    out = []
    for m in core.advisories.match("PyPI", name, version):
        rec = m.record
        out.append({
            "id": rec.id,
            "aliases": list(rec.aliases),
            "details": rec.doc.get("details") or "",
            "summary": rec.summary,
            "fixed_in": m.fixed,
            "link": f"{base_url}/-/osv/v1/vulns/{rec.id}",
            "source": "osv",
            "withdrawn": rec.withdrawn,
        })
    return out
