"""Consistency check between the database, the blob store and the published tree (``wharf check``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from ..db.models import Artifact, Blob
from . import audit

if TYPE_CHECKING:  # pragma: no cover
    from .services import Core

__all__ = ["run_check"]


def run_check(core: "Core", *, repair: bool = False, verify: bool = False, orphan_grace: float = 600.0) -> dict[str, Any]:
    with core.sessions() as s:
        rows = {sha: size for sha, size in s.execute(select(Blob.sha256, Blob.size))}
        needed = set(s.scalars(select(Artifact.sha256))) | {x for x in s.scalars(select(Artifact.metadata_sha256)) if x}
    stored = dict(core.blobs.iter_blobs())
    missing = sorted(sha for sha in set(rows) | needed if sha not in stored)
    orphans = sorted(sha for sha in stored if sha not in rows and sha not in needed)
    size_mismatch = sorted(sha for sha, size in rows.items() if sha in stored and stored[sha] != size)
    corrupt = sorted(sha for sha in stored if sha in rows and not core.blobs.verify(sha)) if verify else []
    temp_left = sum(1 for _ in core.blobs.tmp_dir.iterdir()) if hasattr(core.blobs, "tmp_dir") else 0  # type: ignore[attr-defined]
    stale = [r.name for r in core.repos.list() if _stale(core, r)]
    report: dict[str, Any] = {
        "blobs_in_database": len(rows), "blobs_stored": len(stored), "missing_blobs": missing,
        "orphan_blobs": orphans, "size_mismatch": size_mismatch, "corrupt_blobs": corrupt,
        "temp_files": temp_left, "stale_repositories": stale,
    }
    report["problems"] = bool(missing or orphans or size_mismatch or corrupt or temp_left or stale)
    if repair:
        # an orphan younger than the grace period may belong to an upload that is still being recorded
        cutoff = time.time() - orphan_grace
        old = [sha for sha in orphans if (p := core.blobs.local_path(sha)) is None or _mtime(p) <= cutoff]
        for sha in old:
            core.blobs.delete(sha)
        core.blobs.cleanup_temp(older_than=0)
        report["republished"] = core.republish_stale(force=True)
        report["repaired"] = {"orphans_deleted": len(old), "temp_files_removed": temp_left}
        if missing or size_mismatch or corrupt:
            report["unrepairable"] = "blobs referenced by the database are missing or damaged: restore them from backup"
        with core.sessions.begin() as s:
            audit.record(s, audit.AuditTag.CHECK_REPAIR, actor="cli:check", orphans=len(orphans), missing=len(missing))
    return report


def _mtime(path: Any) -> float:
    try:
        return float(path.stat().st_mtime)
    except FileNotFoundError:
        return 0.0


def _stale(core: "Core", repo: Any) -> bool:
    try:
        return int((core.pages.root / repo.name / ".published").read_text()) < repo.version
    except (FileNotFoundError, ValueError):
        return True
