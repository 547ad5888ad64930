"""Sparse-index files, rendered on change into the PageStore, and what is read from them on the hot paths.

One page per crate, keyed by the crate's *normalized* name (``index/<index_path(normalized)>``), holding the index
file (one JSON line per version, in publish order) as variant ``"text"``; the page's meta keeps the crate's name as
published (``name``) so a request for another spelling gets a 404 exactly as from the public registry, where cargo
then tries the ``-``/``_`` alternatives itself.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Collection, Iterable

from ...core.interfaces import RepoInfo
from .parse import index_path, normalize_name

if TYPE_CHECKING:  # pragma: no cover
    from ...core.content import LiveFile
    from ...core.pages import Page
    from ...core.services import Core

__all__ = ["INDEX_KEYS", "crate_filename", "page_key", "publish", "render_lines", "versions_of", "lookup_version",
           "index_lines"]

INDEX_KEYS = ("index", "crate")  # the meta keys rendering reads (the index line and the name as published)


def page_key(name: str) -> str:
    """PageStore key of a crate's index file, from any spelling of its name."""
    return "index/" + index_path(normalize_name(name))


def crate_filename(name: str, version: str) -> str:
    return f"{name}-{version}.crate"


def index_lines(files: Iterable["LiveFile"]) -> list[str]:
    """The index lines of stored versions (publish order), with their current yanked flag."""
    lines = []
    for f in files:
        line = f.meta.get("index")
        if not line:
            continue
        if f.yanked:
            entry = json.loads(line)
            entry["yanked"] = True
            line = json.dumps(entry, separators=(",", ":"))
        lines.append(line)
    return lines


def render_lines(lines: Iterable[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


def publish(core: "Core", repo: RepoInfo, names: Collection[str] | None) -> None:
    """Render the index files of ``names`` (None: every crate) of a hosted repository and link their .crate files;
    proxies link the files they cached (their index files mirror the upstream); groups merge on request."""
    from ...core.published import link_file

    if repo.kind == "group":
        return
    if names is None:
        targets = set(core.content.names(repo))
        base = core.pages.root / repo.name / "index"
        if base.is_dir() and repo.kind == "hosted":
            for page in base.rglob("*.page"):
                if page.stem not in targets:
                    core.pages.delete(repo.name, page_key(page.stem))
    else:
        targets = {normalize_name(n) for n in names}
    for name in targets:
        files = core.content.files(repo, name, meta_keys=INDEX_KEYS)
        for f in files:
            link_file(core, repo.name, f.sha256, f.filename)
        if repo.kind != "hosted":
            continue
        if not files:
            core.pages.delete(repo.name, page_key(name))
            continue
        display = files[-1].meta.get("crate") or name
        core.pages.write(repo.name, page_key(name), repo.version, {"text": render_lines(index_lines(files))},
                         {"name": display})


# -- reading index files (downloads, groups) -------------------------------------------------------------------

_PARSED: "OrderedDict[tuple[str, bytes], dict[str, dict[str, Any]]]" = OrderedDict()
_PARSED_MAX = 4096


def versions_of(page_body: bytes, etag: bytes, scope_key: str) -> dict[str, dict[str, Any]]:
    """``version -> index entry`` of an index file, memoised by (scope, ETag): downloads look versions up without
    the database and without re-parsing an unchanged file."""
    key = (scope_key, etag)
    hit = _PARSED.get(key)
    if hit is not None:
        _PARSED.move_to_end(key)
        return hit
    out: dict[str, dict[str, Any]] = {}
    for raw in page_body.splitlines():
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("vers"), str):
            out[entry["vers"]] = entry
    _PARSED[key] = out
    if len(_PARSED) > _PARSED_MAX:
        _PARSED.popitem(last=False)
    return out


def lookup_version(page: "Page", scope_key: str, version: str) -> dict[str, Any] | None:
    etag, body = page.variants["text"]
    return versions_of(body, etag, scope_key).get(version)
