"""Directory listings, rendered on change into the PageStore and served from it.

One page per non-empty directory (key ``dirs/<hash of the path>``: generic paths are case-sensitive and may hold
any printable character, page keys may not). A page's ``meta`` holds what downloads need (each file's digests and
size, the subdirectory names) and its one variant is the JSON listing people and scripts read. Downloads look a
path up in its directory's page (kept parsed in memory by the PageStore), so the hot path never asks the database.

A change to directory D re-reads D's files from the database (one indexed query: a file's package name is its
directory) and touches D's ancestors only when D appears or disappears. Publishes of one repository are
serialised by a file lock (threads and worker processes), and each re-reads the database inside the lock, so the
last publish always reflects the newest state.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Iterator

from ...core.content import LiveFile
from ...core.interfaces import RepoInfo
from .parse import ROOT

if TYPE_CHECKING:  # pragma: no cover
    from ...core.pages import Page
    from ...core.services import Core

__all__ = ["dir_key", "miss_key", "publish", "lookup", "render", "parent", "read_dir", "walk_files", "empty_listing"]

JSON_TYPE = b"application/json"


def dir_key(directory: str) -> str:
    return "dirs/" + hashlib.sha256(directory.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def miss_key(path: str) -> str:
    """A proxy's negative-cache entry for a path the upstream does not have."""
    return "miss/" + hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def parent(directory: str) -> tuple[str, str]:
    """``"a/b/c"`` -> (``"a/b"``, ``"c"``); ``"c"`` -> (``""``, ``"c"``)."""
    head, _, tail = directory.rpartition("/")
    return head, tail


def _iso(dt: Any) -> str | None:
    if dt is None:
        return None
    if isinstance(dt, datetime):
        if dt.tzinfo is not None:
            dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
        return dt.isoformat(timespec="seconds") + "Z"
    return str(dt)


def _entry(f: LiveFile) -> dict[str, Any]:
    return {"sha256": f.sha256, "sha1": f.meta.get("sha1"), "md5": f.meta.get("md5"), "size": f.size,
            "modified": _iso(f.added_at)}


def render(repo: str, directory: str, files: dict[str, dict[str, Any]], dirs: list[str], version: int) -> bytes:
    prefix = directory + "/" if directory else ""
    doc = {
        "repository": repo,
        "path": "/" + prefix,
        "version": version,
        "directories": [{"name": d, "path": prefix + d + "/"} for d in dirs],
        "files": [{"name": n, "path": prefix + n, **files[n]} for n in sorted(files)],
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def empty_listing(repo: str, version: int) -> bytes:
    return render(repo, "", {}, [], version)


def read_dir(core: "Core", repo: str, directory: str) -> "Page | None":
    return core.pages.read(repo, dir_key(directory))


def lookup(core: "Core", repo: str, directory: str, filename: str) -> dict[str, Any] | None:
    """A live file's digests and size from its directory's page (in memory), or None."""
    page = core.pages.read(repo, dir_key(directory))
    if page is None:
        return None
    return page.meta["files"].get(filename)  # type: ignore[no-any-return]


def walk_files(core: "Core", repo: str, directory: str) -> Iterator[str]:
    """Every file path under a directory (recursively), from the pages."""
    page = core.pages.read(repo, dir_key(directory))
    if page is None:
        return
    prefix = directory + "/" if directory else ""
    for name in page.meta["files"]:
        yield prefix + name
    for sub in page.meta["dirs"]:
        yield from walk_files(core, repo, prefix + sub)


@contextmanager
def _publish_lock(core: "Core", repo: str) -> Iterator[None]:
    # not the PageStore's own lock file: its write() takes that one, and flock is per open file
    d = Path(core.pages.root) / repo
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / ".generic-publish.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class _Tree:
    """The pages of one repository being updated under the publish lock."""

    def __init__(self, core: "Core", repo: RepoInfo, version: int):
        self.core, self.repo, self.version = core, repo, version

    def read(self, directory: str) -> tuple[dict[str, dict[str, Any]], list[str]] | None:
        page = self.core.pages.read(self.repo.name, dir_key(directory))
        if page is None:
            return None
        return dict(page.meta["files"]), list(page.meta["dirs"])

    def write(self, directory: str, files: dict[str, dict[str, Any]], dirs: list[str]) -> None:
        if not files and not dirs and directory != "":
            self.core.pages.delete(self.repo.name, dir_key(directory))
            return
        dirs = sorted(set(dirs))
        body = render(self.repo.name, directory, files, dirs, self.version)
        self.core.pages.write(self.repo.name, dir_key(directory), self.version, {"json": body},
                              {"dir": directory, "files": files, "dirs": dirs})

    def refresh(self, directory: str) -> None:
        """Re-read one directory's files from the database; fix its ancestors if it appeared or disappeared."""
        package = directory or ROOT
        files = {f.filename: _entry(f) for f in self.core.content.files(self.repo, package,
                                                                         meta_keys=("sha1", "md5"))}
        old = self.read(directory)
        dirs = old[1] if old else []
        self.write(directory, files, dirs)
        self._fix_ancestors(directory, present=bool(files or dirs))

    def _fix_ancestors(self, directory: str, *, present: bool) -> None:
        while directory != "":
            up, name = parent(directory)
            old = self.read(up)
            files, dirs = old if old else ({}, [])
            if (name in dirs) == present:
                return  # the parent already says so: nothing above changes
            if present:
                dirs.append(name)
            else:
                dirs.remove(name)
            self.write(up, files, dirs)
            if up == "" or (present and old is not None) or (not present and (files or dirs)):
                return
            directory = up

    def rebuild(self) -> None:
        """Every page from the database (first publish, crash recovery); pages of vanished directories go."""
        tree: dict[str, tuple[dict[str, dict[str, Any]], set[str]]] = {"": ({}, set())}
        for f in self.core.content.files(self.repo, meta_keys=("sha1", "md5")):
            directory = "" if f.name == ROOT else f.name
            tree.setdefault(directory, ({}, set()))[0][f.filename] = _entry(f)
            while directory != "":
                up, name = parent(directory)
                tree.setdefault(up, ({}, set()))[1].add(name)
                directory = up
        keep = set()
        for directory, (files, dirs) in tree.items():
            self.write(directory, files, list(dirs))
            keep.add(dir_key(directory).split("/", 1)[1] + ".page")
        base = Path(self.core.pages.root) / self.repo.name / "dirs"
        if base.is_dir():
            for p in base.iterdir():
                if p.name.endswith(".page") and p.name not in keep:
                    self.core.pages.remove_file(p)


def publish(core: "Core", repo: RepoInfo, names: Collection[str] | None) -> None:
    """Re-render the listings of these packages (directories; None: all)."""
    if repo.kind not in ("hosted", "proxy"):
        return
    with _publish_lock(core, repo.name):
        tree = _Tree(core, repo, core.db_version(repo))
        if names is None:
            tree.rebuild()
            return
        # deepest first: a directory that empties is removed from its parent before the parent is looked at
        for name in sorted({"" if n == ROOT else n for n in names}, key=lambda d: -d.count("/") - (d != "")):
            tree.refresh(name)
