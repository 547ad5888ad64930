"""The blob store contract: content-addressed (sha256) bytes. Local disk now, S3 later."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterable, Iterator, Protocol

__all__ = ["BlobRef", "BlobWriter", "BlobStore", "BlobTooLarge", "DigestMismatch"]


@dataclass(frozen=True, slots=True)
class BlobRef:
    sha256: str
    size: int
    digests: dict[str, str]  # every digest computed while writing (always includes "sha256")


class BlobTooLarge(ValueError):
    def __init__(self, limit: int):
        super().__init__(f"body larger than the limit of {limit} bytes")
        self.limit = limit


class DigestMismatch(ValueError):
    pass


class BlobWriter(Protocol):
    """Receives bytes, hashes them as they come; nothing is visible until ``commit``."""

    size: int
    created: bool  # after commit: whether the blob was new

    def write(self, data: bytes) -> None: ...
    def digests(self) -> dict[str, str]: ...
    def temp_path(self) -> Path: ...  # the bytes so far, for parsers that need a real file
    def commit(self, *, expect_sha256: str | None = None) -> BlobRef: ...
    def abort(self) -> None: ...


class BlobStore(Protocol):
    def writer(self, *, algorithms: Iterable[str] = (), max_size: int | None = None) -> BlobWriter: ...
    def put_bytes(self, data: bytes) -> BlobRef: ...
    def exists(self, sha256: str) -> bool: ...
    def local_path(self, sha256: str) -> Path | None: ...  # zero-copy serving where the backend has files
    def open(self, sha256: str) -> IO[bytes]: ...
    def delete(self, sha256: str) -> None: ...
    def iter_blobs(self) -> Iterator[tuple[str, int]]: ...
    def verify(self, sha256: str) -> bool: ...  # re-hash the stored bytes
    def cleanup_temp(self, older_than: float = 3600.0) -> int: ...  # remove leftovers of crashed writes; returns how many
