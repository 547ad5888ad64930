"""The OSV query API's request and response shapes (``/v1/query``, ``/v1/querybatch``, ``/v1/vulns/<id>``).

Package URLs are accepted as the OSV service accepts them (``pkg:pypi/django@4.2``); ``commit`` queries are not
answered (Wharf evaluates no GIT ranges).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import unquote

from ...core.errors import InvalidInput

if TYPE_CHECKING:  # pragma: no cover
    from .service import AdvisoryService

__all__ = ["parse_purl", "resolve", "query", "querybatch", "MAX_BATCH"]

MAX_BATCH = 1000
_PURL_TYPES = {"pypi": "PyPI", "npm": "npm", "cargo": "crates.io", "maven": "Maven", "golang": "Go",
               "gem": "RubyGems", "nuget": "NuGet", "composer": "Packagist", "hex": "Hex", "pub": "Pub"}


def parse_purl(purl: str) -> tuple[str, str, str | None]:
    """``pkg:type/namespace/name@version`` -> (OSV ecosystem, package name, version or None)."""
    if not purl.startswith("pkg:"):
        raise InvalidInput(f"not a package URL: {purl!r}")
    body = purl[4:].split("#", 1)[0].split("?", 1)[0].lstrip("/")
    ptype, _, path = body.partition("/")
    eco = _PURL_TYPES.get(ptype.lower())
    if eco is None or not path:
        raise InvalidInput(f"package URL type {ptype!r} is not supported")
    version = None
    if "@" in path.rsplit("/", 1)[-1]:
        path, _, v = path.rpartition("@")
        version = unquote(v)
    parts = [unquote(p) for p in path.split("/") if p]
    if eco == "Maven":
        name = ":".join(parts)
    elif eco in ("npm", "Go", "Packagist"):
        name = "/".join(parts)
    else:
        name = parts[-1]
    return eco, name, version


def resolve(q: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """A query object -> (ecosystem, name, version)."""
    if not isinstance(q, Mapping):
        raise InvalidInput("a query is a JSON object")
    if q.get("commit"):
        raise InvalidInput("commit queries are not supported by this server (no GIT ranges are evaluated)")
    pkg = q.get("package") or {}
    version = q.get("version") or None
    if not isinstance(pkg, Mapping) or (version is not None and not isinstance(version, str)):
        raise InvalidInput("'package' is an object and 'version' a string")
    if pkg.get("purl"):
        eco, name, pv = parse_purl(str(pkg["purl"]))
        if pv and version:
            raise InvalidInput("the version is given both in the package URL and in 'version'")
        return eco, name, version or pv
    eco, name = pkg.get("ecosystem"), pkg.get("name")
    if not isinstance(eco, str) or not eco or not isinstance(name, str) or not name:
        raise InvalidInput("a query names a package: {'package': {'ecosystem': ..., 'name': ...}} or a purl")
    return eco, name, version


def query(service: "AdvisoryService", q: Mapping[str, Any]) -> dict[str, Any]:
    eco, name, version = resolve(q)
    vulns = [json.loads(m.record.text) for m in service.match(eco, name, version)]
    return {"vulns": vulns} if vulns else {}


def querybatch(service: "AdvisoryService", body: Mapping[str, Any]) -> dict[str, Any]:
    queries = body.get("queries") if isinstance(body, Mapping) else None
    if not isinstance(queries, list):
        raise InvalidInput("expected {'queries': [...]}")
    if len(queries) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} queries per batch")
    resolved = [resolve(q) for q in queries]  # every query is checked before any is answered
    results = []
    for matches in service.match_many(resolved):
        found = [{"id": m.record.id, "modified": m.record.modified} for m in matches]
        results.append({"vulns": found} if found else {})
    return {"results": results}
