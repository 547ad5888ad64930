"""Hand-written OSV records for tests, each validated against the OSV JSON schema (tests/support/osv/schema.json)."""

from __future__ import annotations

import copy
import functools
import json
import zipfile
from pathlib import Path
from typing import Any, Iterable

__all__ = ["validate", "record", "write_zip", "write_dir", "CVSS_CRITICAL", "CVSS_MEDIUM", "CVSS4_HIGH"]

SCHEMA = Path(__file__).with_name("osv") / "schema.json"
CVSS_CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
CVSS_MEDIUM = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N"  # 4.2
CVSS4_HIGH = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N"  # 8.7


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.Draft202012Validator  # the dialect the schema is written in (it names no "$schema")
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def validate(doc: dict[str, Any]) -> dict[str, Any]:
    _validator().validate(doc)
    return doc


def record(rid: str, ecosystem: str, name: str, *, ranges: list[dict[str, Any]] | None = None,
           versions: list[str] | None = None, modified: str = "2026-01-01T00:00:00Z", aliases: Iterable[str] = (),
           summary: str | None = None, details: str = "Details of the issue.", cvss: str | None = None,
           withdrawn: str | None = None, extra_affected: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A schema-valid record affecting one package (ranges: [{"type": ..., "events": [...]}])."""
    affected: dict[str, Any] = {"package": {"ecosystem": ecosystem, "name": name}}
    if ranges is not None:
        affected["ranges"] = copy.deepcopy(ranges)
    if versions is not None:
        affected["versions"] = list(versions)
    doc: dict[str, Any] = {"schema_version": "1.6.0", "id": rid, "modified": modified,
                           "published": "2025-12-01T00:00:00Z", "aliases": list(aliases),
                           "summary": summary or f"{name} issue {rid}", "details": details,
                           "affected": [affected] + list(extra_affected or []),
                           "references": [{"type": "ADVISORY", "url": f"http://127.0.0.1/advisories/{rid}"}]}
    if cvss:
        doc["severity"] = [{"type": "CVSS_V4" if cvss.startswith("CVSS:4") else "CVSS_V3", "score": cvss}]
    if withdrawn:
        doc["withdrawn"] = withdrawn
    return validate(doc)


def write_zip(path: Path, docs: Iterable[dict[str, Any]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for doc in docs:
            zf.writestr(f"{doc['id']}.json", json.dumps(doc))
    return path


def write_dir(path: Path, docs: Iterable[dict[str, Any]]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for doc in docs:
        (path / f"{doc['id']}.json").write_text(json.dumps(doc))
    return path
