"""The published tree: index pages rendered on change, and download links, served without the database.

``pages/<repo>/<key>.page`` holds every rendering of one page (e.g. HTML and JSON) behind a one-line JSON header
with the repository version it was rendered from; a render from an older version never replaces a newer one.
``pages/<repo>/files/<sha256>/<filename>`` is a symlink to the blob: its presence is what makes a file downloadable
from that repository (delete/quarantine unlinks it). Every process keeps parsed pages in memory and re-reads a
page only when its file changed (one ``stat`` per request).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

from .signal import ChangeSignal

__all__ = ["Page", "PageStore"]

_KEY_RE = re.compile(r"^[A-Za-z0-9@_~][A-Za-z0-9._/~@+-]*$")
_CACHE_BYTES = 16 * 1024 * 1024  # memory for parsed pages per process (least recently used go first)
# What a cached page costs beyond its file's bytes (Page, dicts, tuples, etags, the path key), measured at ~1.2 KB:
# a catalog of tiny pages would otherwise hold about twice its budget.
_ENTRY_COST = 1200


@dataclass(frozen=True, slots=True)
class Page:
    version: int
    variants: dict[str, tuple[bytes, bytes]]  # variant -> (etag with quotes, body)
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. expiry and validators of a cached upstream page


def _check(part: str) -> str:
    if not _KEY_RE.match(part) or ".." in part or "//" in part:
        raise ValueError(f"unsafe page key {part!r}")
    return part


class PageStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        # path -> (file signature, page, value of the change signal when the signature was last checked)
        self._cache: OrderedDict[str, tuple[tuple[int, int, int], Page, int]] = OrderedDict()
        self._cached_bytes = 0
        self._changes = ChangeSignal(self.root / ".epoch")
        self._paths: dict[tuple[str, str], str] = {}  # checked keys -> paths (the hot path checks each once)

    # -- pages ----------------------------------------------------------------------------------------------
    def _page_path(self, repo: str, key: str) -> str:
        hit = self._paths.get((repo, key))
        if hit is None:
            hit = f"{self.root}/{_check(repo)}/{_check(key)}.page"
            if len(self._paths) > 8192:  # ~250 bytes each: a memo for the hot set, not a catalog
                self._paths.clear()
            self._paths[(repo, key)] = hit
        return hit

    def write(self, repo: str, key: str, version: int, variants: dict[str, bytes], meta: dict[str, Any] | None = None) -> bool:
        """Publish a page atomically unless a newer rendering is already there. Returns whether it was written."""
        path = Path(self._page_path(repo, key))
        path.parent.mkdir(parents=True, exist_ok=True)
        header: dict[str, object] = {"v": version, "variants": {}, "meta": meta or {}}
        offset = 0
        for name, body in variants.items():
            etag = '"%s"' % hashlib.sha256(body).hexdigest()[:32]
            header["variants"][name] = [offset, len(body), etag]  # type: ignore[index]
            offset += len(body)
        with self._lock(repo):
            current = self._read_header(path)
            if current is not None and current > version:
                return False
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "wb") as fh:
                fh.write(json.dumps(header, separators=(",", ":")).encode() + b"\n")
                for body in variants.values():
                    fh.write(body)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
            self._changes.bump()
            stale = self.stale_version(repo, key)
            if stale is not None and stale <= version:  # this rendering caught up with the change that marked it
                Path(str(path) + ".stale").unlink(missing_ok=True)
        return True

    def mark_stale(self, repo: str, key: str, version: int) -> None:
        """Note that the page no longer reflects ``version``; whoever serves it re-renders it first (lazily)."""
        path = Path(self._page_path(repo, key) + ".stale")
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock(repo):
            if (self.stale_version(repo, key) or -1) >= version:
                return
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            with os.fdopen(fd, "w") as fh:
                fh.write(str(version))
            os.replace(tmp, path)
            self._changes.bump()  # (a memo of the page's answer must not outlive its staleness)

    def stale_version(self, repo: str, key: str) -> int | None:
        try:
            with open(self._page_path(repo, key) + ".stale") as fh:
                return int(fh.read())
        except (FileNotFoundError, ValueError):
            return None

    def delete(self, repo: str, key: str) -> None:
        with self._lock(repo):
            Path(self._page_path(repo, key)).unlink(missing_ok=True)
            self._changes.bump()

    def remove_file(self, path: Path) -> None:
        """Remove a page file found by walking the tree (a format's clean-up of pages it no longer renders)."""
        path.unlink(missing_ok=True)
        self._changes.bump()

    def exists(self, repo: str, key: str) -> bool:
        try:
            return os.path.exists(self._page_path(repo, key))
        except ValueError:
            return False

    def generation(self) -> int:
        """A value that changes whenever any page is written or removed (by any process): a memo made from pages
        while it held a value is still exact while it holds it (a memory read, no system call)."""
        return self._changes.current()

    def signature(self, repo: str, key: str) -> tuple[int, int, int] | None:
        """What identifies the current version of a page file (one ``stat``); None if there is none."""
        try:
            st = os.stat(self._page_path(repo, key))
        except (ValueError, FileNotFoundError, NotADirectoryError):
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def read(self, repo: str, key: str) -> Page | None:
        """The current page, from memory when no page changed since it was read (or its file is unchanged). None if
        not published."""
        try:
            path = self._page_path(repo, key)
        except ValueError:
            return None
        changes = self.generation()
        hit = self._cache.get(path)
        if hit is not None and hit[2] == changes:
            self._cache.move_to_end(path)
            return hit[1]
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            self._forget(path)
            return None
        sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        if hit is not None and hit[0] == sig:
            self._cache[path] = (sig, hit[1], changes)
            self._cache.move_to_end(path)
            return hit[1]
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            self._forget(path)
            return None
        head, _, body = data.partition(b"\n")
        meta = json.loads(head)
        page = Page(meta["v"], {k: (v[2].encode(), body[v[0]:v[0] + v[1]]) for k, v in meta["variants"].items()},
                    meta.get("meta") or {})
        self._forget(path)
        self._cache[path] = (sig, page, changes)
        self._cached_bytes += st.st_size + _ENTRY_COST
        while self._cached_bytes > _CACHE_BYTES and len(self._cache) > 1:
            _p, (evicted_sig, _page, _changes) = self._cache.popitem(last=False)
            self._cached_bytes -= evicted_sig[2] + _ENTRY_COST
        return page

    def _forget(self, path: str) -> None:
        old = self._cache.pop(path, None)
        if old is not None:
            self._cached_bytes -= old[0][2] + _ENTRY_COST

    @staticmethod
    def _read_header(path: Path) -> int | None:
        try:
            with open(path, "rb") as fh:
                return int(json.loads(fh.readline())["v"])
        except (FileNotFoundError, ValueError, KeyError):
            return None

    def _lock(self, repo: str) -> "_FileLock":
        d = self.root / _check(repo)
        d.mkdir(parents=True, exist_ok=True)
        return _FileLock(d / ".lock")

    # -- download links ---------------------------------------------------------------------------------------
    def _link_path(self, repo: str, sha256: str, filename: str) -> str:
        if "/" in filename or "\\" in filename or filename in (".", "..") or not filename or "\x00" in filename:
            raise ValueError(f"unsafe filename {filename!r}")
        if len(sha256) != 64:
            raise ValueError("bad sha256")
        return f"{self.root}/{_check(repo)}/files/{sha256}/{filename}"

    def link_file(self, repo: str, sha256: str, filename: str, target: Path) -> None:
        path = self._link_path(repo, sha256, filename)
        for _ in range(2):
            try:
                os.symlink(target, path)  # atomic: the link is there whole or not at all
                return
            except FileNotFoundError:  # the first file with this digest here
                os.makedirs(os.path.dirname(path), exist_ok=True)
            except FileExistsError:
                break
        if os.readlink(path) != str(target):  # linked to another blob before (e.g. the store moved): relink
            tmp = f"{os.path.dirname(path)}/.tmp-{os.getpid()}-{threading.get_ident()}-{filename}"  # unique per thread
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(target, tmp)
            os.replace(tmp, path)

    def unlink_file(self, repo: str, sha256: str, filename: str) -> None:
        """Unpublish a file and the files derived from it (``<filename>.<suffix>``, e.g. PEP 658 metadata)."""
        path = Path(self._link_path(repo, sha256, filename))
        path.unlink(missing_ok=True)
        for derived in path.parent.glob(glob_escape(filename) + ".*"):
            derived.unlink(missing_ok=True)
        try:
            path.parent.rmdir()
        except OSError:
            pass

    def file_path(self, repo: str, sha256: str, filename: str) -> tuple[str, os.stat_result] | None:
        """The servable path of a published file and its stat, or None (not published here / bad name)."""
        try:
            path = self._link_path(repo, sha256, filename)
            return path, os.stat(path)
        except (ValueError, FileNotFoundError, NotADirectoryError):
            return None

    def published_files(self, repo: str) -> list[tuple[str, str]]:
        base = self.root / _check(repo) / "files"
        if not base.is_dir():
            return []
        return [(d.name, f.name) for d in base.iterdir() if d.is_dir() for f in d.iterdir() if not f.name.startswith(".tmp-")]

    def drop_repository(self, repo: str) -> None:
        shutil.rmtree(self.root / _check(repo), ignore_errors=True)
        self._changes.bump()
        self._cache.clear()
        self._cached_bytes = 0


class _FileLock:
    def __init__(self, path: Path):
        self._path = path
        self._fd = -1

    def __enter__(self) -> "_FileLock":
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
