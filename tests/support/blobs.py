"""What a server's blob store holds on disk, for tests that check a refused or aborted write stored nothing."""

from __future__ import annotations

from pathlib import Path

__all__ = ["blob_files", "temp_files"]


def blob_files(data: Path) -> set[str]:
    """Every stored blob under ``<data>/blobs`` (relative paths), and nothing of the temp directory."""
    root = Path(data) / "blobs"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".tmp" not in p.relative_to(root).parts}


def temp_files(data: Path) -> list[str]:
    """The names of the partial uploads in the blob store's temp directory."""
    tmp = Path(data) / "blobs" / ".tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.is_dir() else []
