"""Index rendering: PEP 503 HTML and PEP 691 JSON (api-version 1.1, PEP 700), rendered on change, plus the JSON API."""

from __future__ import annotations

import functools
import json
from datetime import datetime, timezone
from html import escape
from typing import TYPE_CHECKING, Any, Collection, Iterable

from packaging.utils import InvalidName, canonicalize_name
from packaging.version import InvalidVersion, Version

from ...core import published
from ...core.content import LiveFile
from ...core.interfaces import RepoInfo

if TYPE_CHECKING:  # pragma: no cover
    from ...core.pages import Page
    from ...core.services import Core

__all__ = ["canonical_or_none", "publish", "render_project", "render_entries", "render_root", "file_entry", "project_json_api", "ROOT_KEY",
           "project_key", "version_key", "link_files", "append_file", "ensure_root", "root_page", "send_published"]

ROOT_KEY = "simple/~root"
API_VERSION = "1.1"
STATUS_API_VERSION = "1.4"  # PEP 792 project status markers (only on pages that carry one)


@functools.lru_cache(maxsize=4096)
def canonical_or_none(name: str) -> str | None:
    """The PEP 503 name, or None when ``name`` is not a valid project name (memoised: every index request asks)."""
    try:
        return canonicalize_name(name, validate=True)
    except InvalidName:
        return None


def project_key(name: str) -> str:
    return f"simple/{name}"


def version_key(v: str) -> tuple[int, Any]:
    """Sort key: PEP 440 order, unparsable versions first."""
    try:
        return (1, Version(v))
    except InvalidVersion:
        return (0, v)


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        return dt.isoformat(timespec="microseconds") + "Z"
    return dt.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def file_url(f: LiveFile) -> str:
    # relative to /<repo>/simple/<name>/ so pre-rendered pages work behind any host or path prefix
    return f"../../files/{f.sha256}/{f.filename}"


def file_entry(f: LiveFile) -> dict[str, Any]:
    """A stored file as a PEP 691 file dict (the form every page is rendered from)."""
    return {
        "filename": f.filename,
        "url": file_url(f),
        "hashes": {"sha256": f.sha256},
        "requires-python": f.meta.get("requires_python"),
        "yanked": (f.yanked_reason or True) if f.yanked else False,
        "core-metadata": {"sha256": f.metadata_sha256} if f.metadata_sha256 else False,
        "size": f.size,
        "upload-time": _iso(f.added_at),
    }


def render_project(name: str, files: list[LiveFile], status: tuple[str, str] | None = None) -> dict[str, bytes]:
    # upload order (PEP 503 and PEP 700 prescribe none): sorting thousands of PEP 440 versions on every upload
    # would make uploads into a long-lived project slower and slower
    return render_entries(name, [file_entry(f) for f in files], [f.version for f in files], status=status)


def project_status(core: "Core", repo: RepoInfo, name: str) -> tuple[str, str] | None:
    """PEP 792 project status (status, reason) when core reports one (a whole project in quarantine)."""
    policy = getattr(core, "policy", None)
    quarantine = getattr(policy, "quarantine", None)
    return quarantine.project_status(repo.id, name) if quarantine is not None else None


def render_entries(name: str, entries: list[dict[str, Any]], versions: Iterable[str],
                   status: tuple[str, str] | None = None) -> dict[str, bytes]:
    """PEP 503 HTML and PEP 691 JSON of one project from PEP 691 file dicts (in display order); ``status`` adds
    PEP 792 project status markers (api-version 1.4)."""
    api_version = STATUS_API_VERSION if status else API_VERSION
    head = f"<meta name=\"pypi:repository-version\" content=\"{api_version}\">\n"
    if status:
        head += (f"<meta name=\"pypi:project-status\" content=\"{escape(status[0])}\">\n"
                 f"<meta name=\"pypi:project-status-reason\" content=\"{escape(status[1])}\">\n")
    out = [
        "<!DOCTYPE html>\n<html>\n<head>\n" + head,
        f"<title>Links for {escape(name)}</title>\n</head>\n<body>\n<h1>Links for {escape(name)}</h1>\n",
    ]
    jfiles = []
    for e in entries:
        rp = e.get("requires-python")
        sha = e["hashes"]["sha256"]
        attrs = f' href="{escape(e["url"])}#sha256={sha}"'
        if rp:
            attrs += f' data-requires-python="{escape(rp)}"'
        cm = e.get("core-metadata")
        if isinstance(cm, dict) and cm.get("sha256"):
            attrs += f' data-dist-info-metadata="sha256={cm["sha256"]}" data-core-metadata="sha256={cm["sha256"]}"'
        elif cm is True:
            attrs += ' data-dist-info-metadata="true" data-core-metadata="true"'
        yanked = e.get("yanked")
        if yanked:
            attrs += f' data-yanked="{escape(yanked if isinstance(yanked, str) else "")}"'
        out.append(f"<a{attrs}>{escape(e['filename'])}</a><br>\n")
        jfiles.append({**{k: v for k, v in e.items() if not k.startswith("_")}, "dist-info-metadata": cm or False,
                       "core-metadata": cm or False})
    out.append("</body>\n</html>\n")
    doc: dict[str, Any] = {"meta": {"api-version": api_version}, "name": name, "versions": list(dict.fromkeys(versions)),
                           "files": jfiles}
    if status:
        doc["project-status"] = {"status": status[0], "reason": status[1]}
    return {"html": "".join(out).encode(), "json": json.dumps(doc, separators=(",", ":")).encode()}


def append_file(core: "Core", repo: RepoInfo, f: LiveFile, version: int) -> bool:
    """After an upload that made ``version``: add the file to its project's stored page without re-reading the
    project (constant time however many releases it has). Only when the stored page is current for the project
    (no change to it since the page's version); otherwise the caller does a full publish. False: not done."""
    key = project_key(f.name)
    page = core.pages.read(repo.name, key)
    hidden = core.content.hide(repo.id).get(f.name) if core.content.hide is not None else None
    if hidden:
        return False  # part of the project is withheld (quarantine): the page is re-rendered whole
    if page is None or page.version >= version or core.content.last_change(repo, f.name, version) > page.version:
        return False
    html = page.variants["html"][1]
    body = page.variants["json"][1]
    entry = file_entry(f)
    one = render_entries(f.name, [entry], [f.version])
    link = one["html"][one["html"].index(b"<a "):one["html"].index(b"</body>")]
    cut = html.rindex(b"</body>")
    new_html = html[:cut] + link + html[cut:]
    vstart = body.index(b'"versions":[') + len(b'"versions":[')
    vend = body.index(b'],"files":[', vstart)
    versions = json.loads(b"[" + body[vstart:vend] + b"]")
    vpart = body[vstart:vend]
    if f.version not in versions:
        vpart += (b"," if versions else b"") + json.dumps(f.version).encode()
    files = body[vend + len(b'],"files":['):-2]
    one_file = json.loads(one["json"])["files"][0]
    files += (b"," if files else b"") + json.dumps(one_file, separators=(",", ":")).encode()
    new_json = body[:vstart] + vpart + b'],"files":[' + files + b"]}"
    if not core.pages.write(repo.name, key, version, {"html": new_html, "json": new_json}):
        return False
    core.mark_published(repo.name, version)
    return True


def render_root(names: Iterable[str]) -> dict[str, bytes]:
    names = list(names)
    html = ["<!DOCTYPE html>\n<html>\n<head>\n<meta name=\"pypi:repository-version\" content=\"1.1\">\n"
            "<title>Simple index</title>\n</head>\n<body>\n"]
    html.extend(f'<a href="{n}/">{n}</a><br>\n' for n in names)
    html.append("</body>\n</html>\n")
    doc = {"meta": {"api-version": API_VERSION}, "projects": [{"name": n} for n in names]}
    return {"html": "".join(html).encode(), "json": json.dumps(doc, separators=(",", ":")).encode()}


def publish(core: "Core", repo: RepoInfo, names: Collection[str] | None) -> None:
    """Render the pages of ``names`` (None: every name) and the root list; link downloadable files."""
    version = repo.version
    if repo.kind == "group":
        return  # group pages are merged from their members' pages when requested
    if repo.kind == "proxy":
        # project pages of a proxy mirror the upstream (see proxy.py); files it cached become downloadable here
        for name in (core.content.names(repo) if names is None else names):
            for f in core.content.files(repo, name, meta_keys=_INDEX_KEYS):
                _link(core, repo, f)
            if names is not None:  # what is served from the mirrored page may have changed (e.g. a quarantine):
                page = core.pages.read(repo.name, project_key(name))  # a rewrite moves its signature for group memos
                if page is not None:
                    core.pages.write(repo.name, project_key(name), page.version,
                                     {k: body for k, (_etag, body) in page.variants.items()}, page.meta)
        core.pages.mark_stale(repo.name, ROOT_KEY, version)
        return
    names_changed = names is None or core.pages.read(repo.name, ROOT_KEY) is None
    if names is None:
        targets = set(core.content.names(repo))
        # drop pages and links of names that are gone
        for page in (core.pages.root / repo.name / "simple").glob("*.page"):
            if page.stem != "~root" and page.stem not in targets:
                core.pages.delete(repo.name, project_key(page.stem))
        wanted = {(f.sha256, f.filename) for f in core.content.files(repo, meta_keys=())}
        for sha, fn in core.pages.published_files(repo.name):
            if (sha, fn.removesuffix(".metadata")) not in wanted:
                core.pages.unlink_file(repo.name, sha, fn)
    else:
        targets = set(names)
    for name in targets:
        files = core.content.files(repo, name, meta_keys=_INDEX_KEYS)
        existed = core.pages.exists(repo.name, project_key(name))
        status = project_status(core, repo, name)
        if status is not None:  # PEP 792: a quarantined project is listed with its status and no files
            names_changed = names_changed or not existed
            core.pages.write(repo.name, project_key(name), version, render_project(name, [], status))
            continue
        if not files:
            names_changed = names_changed or existed
            core.pages.delete(repo.name, project_key(name))
            continue
        names_changed = names_changed or not existed
        if names is None:  # a full publish re-links everything; a change links its own files (link_files)
            link_files(core, repo, files)
        core.pages.write(repo.name, project_key(name), version, render_project(name, files))
    if names is None:
        core.pages.write(repo.name, ROOT_KEY, version, render_root(core.content.names(repo)))
    elif names_changed:
        # the root list changes only when a project appears or disappears, and with 100,000 projects it is big:
        # mark it stale; the next request for it renders it once (ensure_root), however many uploads came between
        core.pages.mark_stale(repo.name, ROOT_KEY, version)


async def root_page(core: "Core", repo: RepoInfo) -> "Page":
    """The root list of a hosted or proxy repository, rendered first (once, single-flight) if a change marked it
    stale."""
    page = core.pages.read(repo.name, ROOT_KEY)
    if page is not None and core.pages.stale_version(repo.name, ROOT_KEY) is None:
        return page
    import anyio.to_thread

    async with core.flights.flight(f"root:{repo.name}"):
        return await anyio.to_thread.run_sync(ensure_root, core, repo)


def ensure_root(core: "Core", repo: RepoInfo) -> "Page":
    """The root list, re-rendered first if a change marked it stale."""
    page = core.pages.read(repo.name, ROOT_KEY)
    stale = core.pages.stale_version(repo.name, ROOT_KEY)
    if page is None or (stale is not None and stale > page.version):
        version = core.db_version(repo)  # read before the names: the page never claims more than it shows
        core.pages.write(repo.name, ROOT_KEY, version, render_root(core.content.names(repo)))
        page = core.pages.read(repo.name, ROOT_KEY)
        assert page is not None
    return page


_INDEX_KEYS = ("requires_python",)


async def send_published(core: "Core", repo_name: str, sha: str, filename: str, scope: Any, send: Any) -> bool:
    """Send a file published in a repository (a package file or its ``.metadata``); False if it is not there."""
    if filename.endswith(".metadata"):
        return await published.send_published(core, repo_name, sha, filename, scope, send,
                                              content_type=b"text/plain; charset=utf-8", etag=b'"%s.metadata"' % sha.encode())
    return await published.send_published(core, repo_name, sha, filename, scope, send)


def link_files(core: "Core", repo: RepoInfo, files: Iterable[LiveFile]) -> None:
    """Make files (and their PEP 658 metadata) downloadable from the repository."""
    for f in files:
        _link(core, repo, f)


def _link(core: "Core", repo: RepoInfo, f: LiveFile) -> None:
    published.link_file(core, repo.name, f.sha256, f.filename)
    if f.metadata_sha256:
        published.link_file(core, repo.name, f.sha256, f.filename + ".metadata", blob_sha256=f.metadata_sha256)


def _file_json(f: LiveFile, base: str) -> dict[str, Any]:
    d = f.meta.get("digests", {})
    return {
        "comment_text": "",
        "digests": {"sha256": f.sha256, **({"md5": d["md5"]} if "md5" in d else {}),
                    **({"blake2b_256": d["blake2_256"]} if "blake2_256" in d else {})},
        "downloads": -1,
        "filename": f.filename,
        "has_sig": False,
        "md5_digest": d.get("md5"),
        "packagetype": f.kind,
        "python_version": f.meta.get("python_version"),
        "requires_python": f.meta.get("requires_python"),
        "size": f.size,
        "upload_time": (_iso(f.added_at) or "")[:19],
        "upload_time_iso_8601": _iso(f.added_at),
        "url": f"{base}/files/{f.sha256}/{f.filename}",
        "yanked": f.yanked,
        "yanked_reason": f.yanked_reason,
    }


def project_json_api(files: list[LiveFile], repo_url: str, version: str | None, serial: int) -> dict[str, Any] | None:
    """The PyPI-style JSON API document for a project (or one release), or None if nothing matches."""
    if not files:
        return None
    releases: dict[str, list[LiveFile]] = {}
    for f in files:
        releases.setdefault(f.version, []).append(f)
    ordered = sorted(releases, key=version_key)
    if version is None:
        stable = [v for v in ordered if not (version_key(v)[0] and Version(v).is_prerelease)
                  and not all(x.yanked for x in releases[v])]
        current = (stable or ordered)[-1]
    else:
        try:
            matches = [v for v in ordered if version_key(v) == version_key(version)]
        except InvalidVersion:  # pragma: no cover
            matches = []
        if not matches:
            return None
        current = matches[0]
    cur_files = sorted(releases[current], key=lambda f: f.filename)
    meta = next((f.meta for f in cur_files if f.kind == "bdist_wheel"), cur_files[0].meta)
    info_meta = dict(meta.get("metadata", {}))
    name = cur_files[0].name
    info = {
        "author": None, "author_email": None, "bugtrack_url": None, "classifiers": [], "description": "",
        "description_content_type": None, "docs_url": None, "download_url": None, "home_page": None,
        "keywords": None, "license": None, "license_expression": None, "maintainer": None, "maintainer_email": None,
        "platform": None, "project_urls": None, "provides_extra": None, "requires_dist": None, "summary": None,
        **info_meta,
        "name": meta.get("display_name", name),
        "version": current,
        "requires_python": meta.get("requires_python"),
        "package_url": f"{repo_url}/pypi/{name}/",
        "project_url": f"{repo_url}/pypi/{name}/",
        "release_url": f"{repo_url}/pypi/{name}/{current}/",
        "yanked": all(f.yanked for f in cur_files),
        "yanked_reason": next((f.yanked_reason for f in cur_files if f.yanked_reason), None),
        "dynamic": info_meta.get("dynamic"),
    }
    doc: dict[str, Any] = {
        "info": info,
        "last_serial": serial,
        "urls": [_file_json(f, repo_url) for f in cur_files],
        "vulnerabilities": [],
    }
    if version is None:
        doc["releases"] = {v: [_file_json(f, repo_url) for f in sorted(releases[v], key=lambda f: f.filename)] for v in ordered}
    return doc
