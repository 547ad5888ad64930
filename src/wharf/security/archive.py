"""Bounded reading of a package file's members, whatever the format: zip (wheels, jars, some sdists), tar (gzip,
bzip2, xz or plain: sdists, npm tarballs, crates) or a single plain file (a POM, a script).

A hostile archive must not exhaust the server: the number of members, each member's size, the total uncompressed
bytes and the wall-clock time are capped. Going over a cap never raises: iteration stops (or the member is skipped)
and the reason is recorded in ``Members.truncated`` so analyzers can report a ``warn`` finding.
"""

from __future__ import annotations

import io
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import BinaryIO, Iterator

__all__ = ["Limits", "Member", "Members", "open_members", "is_licence_file"]


@dataclass(frozen=True, slots=True)
class Limits:
    max_members: int = 20_000
    max_member_size: int = 16 * 1024 * 1024  # larger members are listed but not read
    max_total_size: int = 256 * 1024 * 1024  # uncompressed bytes read or skipped over
    max_seconds: float = 30.0


@dataclass(slots=True)
class Member:
    path: str
    size: int
    data: bytes | None  # None: listed only (too large, or not read)


@dataclass
class Members:
    """Iterate with ``for m in members``; afterwards ``truncated`` lists why a part was not read."""

    _it: Iterator[Member]
    truncated: list[str] = field(default_factory=list)
    kind: str = "file"

    def __iter__(self) -> Iterator[Member]:
        return self._it


_LICENCE_PREFIXES = ("licence", "license", "copying", "notice", "unlicense")


def is_licence_file(path: str) -> bool:
    """LICENSE*, LICENCE*, COPYING*, NOTICE* (any case, any folder), and files under a wheel's ``licenses/``."""
    p = PurePosixPath(path)
    base = p.name.lower()
    if base.startswith(_LICENCE_PREFIXES):
        return True
    return ".dist-info/licenses/" in path


def _sniff(head: bytes) -> str:
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x1f\x8b") or head.startswith(b"BZh") or head.startswith(b"\xfd7zXZ\x00"):
        return "tar"
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar"
    return "file"


def open_members(fh: BinaryIO, *, name: str = "", limits: Limits = Limits(), read: bool = True) -> Members:
    """The members of the package file open in ``fh`` (seekable). ``read=False`` lists paths without reading data."""
    head = fh.read(512)
    fh.seek(0)
    kind = _sniff(head)
    members = Members(iter(()), kind=kind)
    deadline = time.monotonic() + limits.max_seconds
    if kind == "zip":
        members._it = _zip(fh, limits, deadline, members.truncated, read)
    elif kind == "tar":
        members._it = _tar(fh, limits, deadline, members.truncated, read)
    else:
        members._it = _single(fh, name, limits, members.truncated, read)
    return members


def _over(limits: Limits, deadline: float, count: int, total: int, truncated: list[str]) -> bool:
    if count > limits.max_members:
        truncated.append(f"more than {limits.max_members} members: the rest was not scanned")
        return True
    if total > limits.max_total_size:
        truncated.append(f"more than {limits.max_total_size} uncompressed bytes: the rest was not scanned")
        return True
    if time.monotonic() > deadline:
        truncated.append(f"reading took longer than {limits.max_seconds:g} s: the rest was not scanned")
        return True
    return False


def _too_big(path: str, size: int, limits: Limits, truncated: list[str]) -> bool:
    if size > limits.max_member_size:
        truncated.append(f"{path}: {size} bytes, larger than {limits.max_member_size}: not scanned")
        return True
    return False


def _zip(fh: BinaryIO, limits: Limits, deadline: float, truncated: list[str], read: bool) -> Iterator[Member]:
    try:
        zf = zipfile.ZipFile(fh)
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        truncated.append(f"unreadable zip archive: {exc}")
        return
    count = total = 0
    for info in infos:
        if info.is_dir():
            continue
        count += 1
        total += info.file_size
        if _over(limits, deadline, count, total, truncated):
            return
        if not read or _too_big(info.filename, info.file_size, limits, truncated):
            yield Member(info.filename, info.file_size, None)
            continue
        try:
            with zf.open(info) as src:
                data = src.read(limits.max_member_size + 1)  # the declared size may lie: read is bounded anyway
        except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError) as exc:
            truncated.append(f"{info.filename}: unreadable ({exc})")
            continue
        if _too_big(info.filename, len(data), limits, truncated):
            yield Member(info.filename, len(data), None)
            continue
        yield Member(info.filename, len(data), data)


def _tar(fh: BinaryIO, limits: Limits, deadline: float, truncated: list[str], read: bool) -> Iterator[Member]:
    try:
        tf = tarfile.open(fileobj=fh, mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        truncated.append(f"unreadable tar archive: {exc}")
        return
    count = total = 0
    try:
        while True:
            try:
                info = tf.next()
            except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
                truncated.append(f"unreadable tar archive: {exc}")
                return
            if info is None:
                return
            if not info.isfile():
                continue
            count += 1
            total += info.size  # skipping a member decompresses it too: its size counts either way
            if _over(limits, deadline, count, total, truncated):
                return
            if not read or _too_big(info.name, info.size, limits, truncated):
                yield Member(info.name, info.size, None)
                continue
            try:
                src = tf.extractfile(info)
                data = src.read(limits.max_member_size + 1) if src is not None else b""
            except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
                truncated.append(f"{info.name}: unreadable ({exc})")
                return
            yield Member(info.name, len(data), data)
    finally:
        tf.close()


def _single(fh: BinaryIO, name: str, limits: Limits, truncated: list[str], read: bool) -> Iterator[Member]:
    data = fh.read(limits.max_member_size + 1) if read else b""
    if read and _too_big(name, len(data), limits, truncated):
        yield Member(name, len(data), None)
        return
    yield Member(name, len(data), data if read else None)


def from_bytes(data: bytes, *, name: str = "", limits: Limits = Limits(), read: bool = True) -> Members:
    """``open_members`` over bytes in memory (tests, small files)."""
    return open_members(io.BytesIO(data), name=name, limits=limits, read=read)
