"""Bounded, defensive readers for wheel (zip) and sdist (tar.gz) archives.

Private to :mod:`wharf.formats.python`. Every problem is raised as :class:`ArchiveError`
(reason code + message); ``parse.py`` turns it into the public ``InvalidArtifact``.
Nothing here reads more into memory than the limits allow, and nothing is extracted.
"""

from __future__ import annotations

import gzip
import os
import posixpath
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from .parse import Limits

__all__ = ["ArchiveError", "TarScan", "ZipArchive", "scan_tar"]

# Corrupt or hostile input makes zipfile/tarfile/gzip/zlib raise a wide range of
# exceptions (BadGzipFile is an OSError, EOFError on truncation, struct.error and
# ValueError on mangled headers, ...). All of them mean "not a readable archive".
_CORRUPT: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    ValueError,
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    tarfile.TarError,
    zlib.error,
    struct.error,
    NotImplementedError,
    RuntimeError,
    IndexError,
    KeyError,
    OverflowError,
)
_CHUNK = 1024 * 1024


class ArchiveError(Exception):
    """An archive Wharf refuses; ``message`` completes "Invalid distribution file X: ..."."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _bomb(expanded: int, size: int, limits: Limits) -> ArchiveError:
    return ArchiveError(
        "zip-bomb",
        f"it expands to more than {expanded} bytes from {size} bytes on disk; archives may expand beyond "
        f"{limits.max_uncompressed} bytes only at a compression ratio of {limits.max_ratio} or less",
    )


def _budget(size: int, limits: Limits) -> int:
    """Uncompressed bytes allowed: refused only when over the size AND over the ratio."""
    return max(limits.max_uncompressed, limits.max_ratio * size)


def _check_path(name: str, what: str = "member") -> None:
    """Refuse absolute paths, drive letters, NUL bytes and '..' components."""
    parts = name.replace("\\", "/").split("/")
    if (
        not name
        or "\x00" in name
        or name.startswith(("/", "\\"))
        or (len(name) > 1 and name[1] == ":" and name[0].isalpha())
        or ".." in parts
    ):
        raise ArchiveError("unsafe-path", f"{what} {name!r} has an absolute path or a '..' component")


class ZipArchive:
    """A validated zip: member names, methods and sizes are checked on open; reads are bounded."""

    def __init__(self, path: str, limits: Limits) -> None:
        size = os.path.getsize(path)
        try:
            self._zip = zipfile.ZipFile(path)
        except _CORRUPT as exc:
            raise ArchiveError("bad-archive", f"it is not a readable zip archive ({exc})") from exc
        try:
            self.files = self._check(size, limits)
        except BaseException:
            self._zip.close()
            raise

    def _check(self, size: int, limits: Limits) -> frozenset[str]:
        infos = self._zip.infolist()
        if len(infos) > limits.max_members:
            raise ArchiveError("zip-bomb", f"it has {len(infos)} members; at most {limits.max_members} are allowed")
        seen: set[str] = set()
        total = 0
        for info in infos:
            _check_path(info.filename)
            if info.filename in seen:
                raise ArchiveError("bad-archive", f"member {info.filename!r} appears more than once")
            seen.add(info.filename)
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ArchiveError(
                    "bad-archive",
                    f"member {info.filename!r} uses compression method {info.compress_type}; "
                    "only STORED and DEFLATED are allowed",
                )
            if info.flag_bits & 0x1:
                raise ArchiveError("bad-archive", f"member {info.filename!r} is encrypted")
            total += info.file_size
        if total > _budget(size, limits):
            raise _bomb(total, size, limits)
        return frozenset(info.filename for info in infos if not info.is_dir())

    def read(self, name: str, max_size: int) -> bytes:
        """Decompress one member, refusing it if it declares (or yields) more than ``max_size`` bytes."""
        try:
            info = self._zip.getinfo(name)
            if info.file_size > max_size:
                raise ArchiveError(
                    "invalid-metadata", f"{name} is {info.file_size} bytes; at most {max_size} are allowed"
                )
            with self._zip.open(info) as member:
                return member.read(max_size + 1)
        except ArchiveError:
            raise
        except _CORRUPT as exc:
            raise ArchiveError("bad-archive", f"member {name!r} cannot be read ({exc})") from exc

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> ZipArchive:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class TarScan:
    files: frozenset[str]  # regular file members
    top_dirs: frozenset[str]  # first path component of every member
    pkg_info: bytes | None  # ``{first top dir}/PKG-INFO`` when it is a regular file


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _BudgetReader:
    """Counts decompressed bytes as tarfile pulls them and stops a decompression bomb early."""

    def __init__(self, raw: _Readable, budget: int, on_exceed: ArchiveError) -> None:
        self._raw, self._budget, self._seen, self._on_exceed = raw, budget, 0, on_exceed

    def read(self, size: int = -1) -> bytes:
        allowed = self._budget - self._seen + 1
        data = self._raw.read(allowed if size is None or size < 0 else min(size, allowed))
        self._seen += len(data)
        if self._seen > self._budget:
            raise self._on_exceed
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


def scan_tar(path: str, limits: Limits) -> TarScan:
    """Stream a .tar.gz once, checking every member; never seeks back, never extracts."""
    size = os.path.getsize(path)
    budget = _budget(size, limits)
    try:
        with gzip.GzipFile(path, "rb") as gz:
            reader = _BudgetReader(gz, budget, _bomb(budget, size, limits))
            with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                scan = _scan_members(tar, budget, size, limits)
            reader.drain()  # reach the gzip trailer so a truncated or corrupt stream is noticed
            return scan
    except ArchiveError:
        raise
    except _CORRUPT as exc:
        raise ArchiveError("bad-archive", f"it is not a readable .tar.gz archive ({exc})") from exc


def _scan_members(tar: tarfile.TarFile, budget: int, size: int, limits: Limits) -> TarScan:
    names: set[str] = set()
    files: set[str] = set()
    tops: set[str] = set()
    first_top: str | None = None
    pkg_info: bytes | None = None
    for count, member in enumerate(tar, start=1):
        if count > limits.max_members:
            raise ArchiveError("zip-bomb", f"it has more than {limits.max_members} members")
        if member.offset_data + member.size > budget:
            raise _bomb(member.offset_data + member.size, size, limits)
        name = member.name
        _check_path(name)
        if name in names:
            raise ArchiveError("bad-archive", f"member {name!r} appears more than once")
        names.add(name)
        top = name.split("/", 1)[0]
        tops.add(top)
        first_top = first_top or top
        if member.issparse():
            raise ArchiveError("bad-archive", f"member {name!r} is a sparse file")
        if member.issym():
            _check_symlink(name, member.linkname)
        elif member.islnk():
            _check_path(member.linkname, f"hard link {name!r} -> target")
        elif member.isreg():
            files.add(name)
            if pkg_info is None and name == f"{first_top}/PKG-INFO":
                pkg_info = _read_member(tar, member, limits.max_metadata_size)
        elif not member.isdir():
            raise ArchiveError("bad-archive", f"member {name!r} is a device, FIFO or other special file")
    return TarScan(frozenset(files), frozenset(tops), pkg_info)


def _check_symlink(name: str, target: str) -> None:
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target.replace("\\", "/")))
    if (
        not target
        or target.startswith(("/", "\\"))
        or resolved == ".."
        or resolved.startswith("../")
        or resolved.split("/", 1)[0] != name.split("/", 1)[0]
    ):
        raise ArchiveError("unsafe-path", f"symlink {name!r} -> {target!r} points outside its directory")


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, max_size: int) -> bytes:
    if member.size > max_size:
        raise ArchiveError("invalid-metadata", f"{member.name} is {member.size} bytes; at most {max_size} are allowed")
    handle = tar.extractfile(member)
    if handle is None:  # pragma: no cover - only for non-regular members, which never reach here
        raise ArchiveError("bad-archive", f"member {member.name!r} cannot be read")
    with handle:
        return handle.read(max_size + 1)
