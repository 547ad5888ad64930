"""Packuments: rendered on change into the PageStore (full and abbreviated), served per request with this server's URL.

A stored packument never names a host: each ``dist.tarball`` is written as ``"tarball":"/<name>/-/<file>.tgz"``
and the route prefixes ``<base_url>/<repo>`` when serving (npm needs absolute tarball URLs: it parses them with
``new URL()`` and writes them into lockfiles). The same stored version objects therefore serve any host name, and
a group can copy its members' version objects as they are.
"""

from __future__ import annotations

import json
import zlib
from collections import OrderedDict
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Collection, Iterable, Mapping

from ...core.interfaces import RepoInfo
from . import parse

if TYPE_CHECKING:  # pragma: no cover
    from ...core.pages import Page
    from ...core.services import Core

__all__ = ["publish", "render_packument", "packument_key", "TARBALL_MARK", "Rendered", "iso", "pick_latest",
           "localize", "tarball_path", "ROOT_KEY"]

ROOT_KEY = "npm/~root"
TARBALL_MARK = b'"tarball":"/'
ATTR_TAGS = "dist-tags"
ATTR_DEPRECATED = "deprecated"


def packument_key(name: str) -> str:
    return f"npm/{name}"


def tarball_path(name: str, version: str) -> str:
    """The stored, host-less tarball URL of a version (see the module docstring)."""
    return "/" + parse.tarball_key(name, version)


def iso(dt: datetime | str | None) -> str | None:
    if dt is None or isinstance(dt, str):
        return dt
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt.isoformat(timespec="milliseconds") + "Z"


def pick_latest(versions: Iterable[str], proposed: str | None = None, present: Collection[str] | None = None) -> str | None:
    """``proposed`` if it is one of the versions, else the highest release (no prerelease), else the highest."""
    versions = list(versions)
    if proposed is not None and proposed in (present if present is not None else versions):
        return proposed
    if not versions:
        return None
    releases = [v for v in versions if not parse.is_prerelease(v)]
    return max(releases or versions, key=parse.semver_key)


def clean_tags(tags: Mapping[str, Any], versions: Collection[str]) -> dict[str, str]:
    """Tags pointing at versions that exist, and always a ``latest`` when there is any version."""
    out = {t: v for t, v in tags.items() if isinstance(v, str) and v in versions}
    latest = pick_latest(versions, out.get("latest"))
    if latest is not None:
        out["latest"] = latest
    return dict(sorted(out.items(), key=lambda kv: (kv[0] != "latest", kv[0])))


def render_packument(name: str, versions: Mapping[str, dict[str, Any]], times: Mapping[str, str | None],
                     tags: Mapping[str, Any], rev: str) -> dict[str, bytes]:
    """The full and abbreviated packuments from ordered ``{version: version object}`` (dist included)."""
    tags = clean_tags(tags, versions)
    latest = versions.get(tags.get("latest", "")) or {}
    stamps = [t for t in times.values() if t]
    created, modified = (min(stamps), max(stamps)) if stamps else (None, None)
    time: dict[str, Any] = {}
    if created:
        time["created"] = created
        time["modified"] = modified
    time.update({v: t for v, t in times.items() if t and v in versions})
    full: dict[str, Any] = {"_id": name, "_rev": rev, "name": name, "dist-tags": tags, "versions": versions,
                            "time": time}
    for k in ("description", "homepage", "keywords", "repository", "author", "bugs", "license", "readme",
              "readmeFilename"):
        if k in latest:
            full[k] = latest[k]
    full["maintainers"] = []
    abbr: dict[str, Any] = {"name": name, "modified": modified, "dist-tags": tags,
                            "versions": {v: parse.abbreviate(m) for v, m in versions.items()}}
    return {"full": _dumps(full), "abbr": _dumps(abbr)}


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def version_object(f: Any, tags_deprecated: Mapping[str, str]) -> dict[str, Any]:
    """A stored file (LiveFile) as the packument's version object."""
    m = dict(f.meta.get("manifest") or {"name": f.name, "version": f.version})
    m["_id"] = f"{f.name}@{f.version}"
    dist = dict(m.get("dist") or {})
    dist.update({"integrity": f.meta.get("integrity"), "shasum": f.meta.get("shasum"),
                 "tarball": tarball_path(f.name, f.version)})
    m["dist"] = {k: v for k, v in dist.items() if v is not None}
    reason = tags_deprecated.get(f.version)
    if reason:
        m["deprecated"] = reason
    else:
        m.pop("deprecated", None)
    return m


class Rendered:
    """What publish needs per name: the versions, their times and the files' sha256 (for downloads)."""

    def __init__(self) -> None:
        self.versions: dict[str, dict[str, Any]] = {}
        self.times: dict[str, str | None] = {}
        self.files: dict[str, str] = {}


def render_name(core: "Core", repo: RepoInfo, name: str) -> tuple[dict[str, bytes], dict[str, Any]] | None:
    files = core.content.files(repo, name)
    if not files:
        return None
    attrs = core.content.attributes(repo, name)
    deprecated = attrs.get(ATTR_DEPRECATED) or {}
    r = Rendered()
    for f in sorted(files, key=lambda f: parse.semver_key(f.version)):
        r.versions[f.version] = version_object(f, deprecated)
        r.times[f.version] = iso(f.added_at)
        r.files[f.filename] = f.sha256
    rev = f"{repo.version}-{zlib.crc32(name.encode()):08x}"
    return render_packument(name, r.versions, r.times, attrs.get(ATTR_TAGS) or {}, rev), {"files": r.files}


def publish(core: "Core", repo: RepoInfo, names: Collection[str] | None) -> None:
    """Render the packuments of ``names`` (None: all) of a hosted repository; link their tarballs."""
    from ...core.published import link_file

    if repo.kind == "group":
        return  # merged from the members' pages when requested
    if repo.kind == "proxy":
        # packuments of a proxy mirror the upstream; tarballs it cached become downloadable here
        files = core.content.files(repo, meta_keys=()) if names is None else \
            [f for n in names for f in core.content.files(repo, n, meta_keys=())]
        for f in files:
            link_file(core, repo.name, f.sha256, f.filename)
        return
    if names is None:
        targets = set(core.content.names(repo))
        base = core.pages.root / repo.name / "npm"
        if base.is_dir():
            for page in base.rglob("*.page"):
                rel = page.relative_to(base).as_posix()[:-len(".page")]
                if rel != "~root" and rel not in targets:
                    core.pages.delete(repo.name, packument_key(rel))
    else:
        targets = set(names)
    for name in targets:
        out = render_name(core, repo, name)
        if out is None:
            core.pages.delete(repo.name, packument_key(name))
            continue
        variants, meta = out
        for filename, sha in meta["files"].items():
            link_file(core, repo.name, sha, filename)
        core.pages.write(repo.name, packument_key(name), repo.version, variants, meta)


# -- serving ----------------------------------------------------------------------------------------------------
_LOCALIZED: "OrderedDict[tuple[bytes, bytes], tuple[bytes, bytes]]" = OrderedDict()
_LOCALIZED_BUDGET = 32 * 1024 * 1024
_localized_bytes = [0]
_SMALL = 16 * 1024


def localize(etag: bytes, body: bytes, prefix: bytes) -> tuple[bytes, bytes]:
    """The stored packument with absolute tarball URLs under ``prefix`` (``<scheme>://<host>/<repo>``, the host the client used), and its ETag.

    Small bodies are rewritten per request (bytes.replace: about a microsecond); big ones are memoised by
    (ETag, prefix) within a memory budget."""
    tag = b'%s-%08x"' % (etag[:-1], zlib.crc32(prefix))
    if len(body) < _SMALL:
        return tag, body.replace(TARBALL_MARK, b'"tarball":"' + prefix + b"/")
    key = (tag, prefix)
    hit = _LOCALIZED.get(key)
    if hit is not None:
        _LOCALIZED.move_to_end(key)
        return hit
    out = (tag, body.replace(TARBALL_MARK, b'"tarball":"' + prefix + b"/"))
    _LOCALIZED[key] = out
    _localized_bytes[0] += len(out[1])
    while _localized_bytes[0] > _LOCALIZED_BUDGET and len(_LOCALIZED) > 1:
        _k, old = _LOCALIZED.popitem(last=False)
        _localized_bytes[0] -= len(old[1])
    return out


def page_files(page: "Page | None") -> Mapping[str, str]:
    return (page.meta.get("files") or {}) if page is not None else {}
