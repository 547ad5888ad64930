"""Local filesystem blob store: ``blobs/ab/cd/<sha256>``, written to a temp file, fsynced, renamed."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path
from typing import IO, Iterable, Iterator

from .interfaces import BlobRef, BlobTooLarge, DigestMismatch

__all__ = ["LocalBlobStore"]

_CHUNK = 1024 * 1024


def _new_hash(name: str):  # type: ignore[no-untyped-def]
    if name == "blake2_256":
        return hashlib.blake2b(digest_size=32)
    return hashlib.new(name)


class _LocalWriter:
    created: bool = False  # after commit: whether this write added a new blob (False: it was already stored)

    def __init__(self, store: "LocalBlobStore", algorithms: Iterable[str], max_size: int | None):
        self._store = store
        self._hashes = {"sha256": hashlib.sha256()}
        for alg in algorithms:
            self._hashes.setdefault(alg, _new_hash(alg))
        self._max = max_size
        fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix="up-")
        self._fh = os.fdopen(fd, "wb", buffering=0)
        self._path = Path(name)
        self.size = 0
        self._done = False

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._max is not None and self.size > self._max:
            raise BlobTooLarge(self._max)
        for h in self._hashes.values():
            h.update(data)
        self._fh.write(data)

    def digests(self) -> dict[str, str]:
        return {k: h.hexdigest() for k, h in self._hashes.items()}

    def temp_path(self) -> Path:
        self._fh.flush()
        return self._path

    def commit(self, *, expect_sha256: str | None = None) -> BlobRef:
        digests = self.digests()
        sha = digests["sha256"]
        if expect_sha256 is not None and expect_sha256.lower() != sha:
            self.abort()
            raise DigestMismatch(f"expected sha256 {expect_sha256}, got {sha}")
        final = self._store._path(sha)
        if self._store._touch(final):  # already stored: these bytes are not needed (nor their fsync)
            self._fh.close()
            self._path.unlink(missing_ok=True)
        else:
            os.fsync(self._fh.fileno())
            self._fh.close()
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self._path, 0o644)
            os.replace(self._path, final)
            _fsync_dir(final.parent)
            self.created = True
        self._done = True
        return BlobRef(sha, self.size, digests)

    def abort(self) -> None:
        if not self._done:
            self._done = True
            try:
                self._fh.close()
            finally:
                self._path.unlink(missing_ok=True)

    def __enter__(self) -> "_LocalWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.abort()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalBlobStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.tmp_dir = self.root / ".tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def writer(self, *, algorithms: Iterable[str] = (), max_size: int | None = None) -> _LocalWriter:
        return _LocalWriter(self, algorithms, max_size)

    @staticmethod
    def _touch(final: Path) -> bool:
        """Whether the blob is stored; if so, touched, so `wharf gc` (which deletes only files untouched for its
        grace period, after moving them aside) cannot remove it before the write that found it records its rows."""
        try:
            os.utime(final)
            return True
        except FileNotFoundError:
            return False

    def put_bytes(self, data: bytes) -> BlobRef:
        sha = hashlib.sha256(data).hexdigest()
        if self._touch(self._path(sha)):  # (e.g. a wheel's METADATA, already stored from its .metadata file)
            return BlobRef(sha, len(data), {"sha256": sha})
        w = self.writer()
        try:
            w.write(data)
            return w.commit()
        except BaseException:
            w.abort()
            raise

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def local_path(self, sha256: str) -> Path | None:
        return self._path(sha256)

    def open(self, sha256: str) -> IO[bytes]:
        return open(self._path(sha256), "rb")

    def delete(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)

    def iter_blobs(self) -> Iterator[tuple[str, int]]:
        for a in sorted(self.root.iterdir()):
            if a.name.startswith(".") or not a.is_dir():
                continue
            for b in sorted(a.iterdir()):
                for f in sorted(b.iterdir()):
                    yield f.name, f.stat().st_size

    def verify(self, sha256: str) -> bool:
        h = hashlib.sha256()
        try:
            with self.open(sha256) as fh:
                while chunk := fh.read(_CHUNK):
                    h.update(chunk)
        except FileNotFoundError:
            return False
        return h.hexdigest() == sha256

    def cleanup_temp(self, older_than: float = 3600.0) -> int:
        """Remove temp files left by crashed writes (older than ``older_than`` seconds, so live uploads survive)."""
        n = 0
        cutoff = time.time() - older_than
        for p in self.tmp_dir.iterdir():
            try:
                if p.stat().st_mtime <= cutoff:
                    p.unlink(missing_ok=True)
                    n += 1
            except FileNotFoundError:
                pass
        return n
