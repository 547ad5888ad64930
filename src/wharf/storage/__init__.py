from pathlib import Path

from .interfaces import BlobRef, BlobStore, BlobTooLarge, BlobWriter, DigestMismatch
from .local import LocalBlobStore

__all__ = ["BlobRef", "BlobStore", "BlobTooLarge", "BlobWriter", "DigestMismatch", "LocalBlobStore", "make_blob_store"]


def make_blob_store(backend: str, data: Path) -> BlobStore:
    if backend == "local":
        return LocalBlobStore(data / "blobs")
    raise ValueError(f"unknown storage backend {backend!r} (available: local)")
