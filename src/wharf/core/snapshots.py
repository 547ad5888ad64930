"""Snapshots: read-only views of repository versions, named snapshots, diff, rollback, retention and blob GC.

A repository already keeps immutable numbered versions (``repository_content`` rows are alive in
``version_added <= v < version_removed``). This service builds on that:

- **Views** ``/<repo>/~<number>/...`` and ``/<repo>/~<snapshot>/...``: the dispatcher hands the format's handler a
  ``RepoInfo`` named ``<repo>/~<label>`` and pinned at the version (``kind`` hosted: a view renders what was stored,
  a proxy's view never contacts the upstream). Content reads take the pinned version, so the format's own
  ``publish`` renders the view's tree (``pages/<repo>/~<label>/``) once, on first use; later requests are served
  from those files like the live tree. Only GET/HEAD; the repository's read permission applies.
- **Snapshots**: a name pinned to a version (table ``snapshots``); always kept by retention.
- **Diff** and **rollback** (a new version whose contents equal an older one; pages and links re-rendered).
- **Retention** (``retention: {keep_last: N, keep_days: D}``): versions outside both limits, not pinned by a
  snapshot and not the current one are pruned: their ``repository_versions`` rows go, and so do content/attribute
  rows alive in no kept version. A pruned key stays reserved (a zero-width *tombstone* row, alive in no version,
  pointing at the empty sentinel artifact), so a deleted filename still cannot be re-uploaded with other bytes.
- **GC**: artifacts that no ``repository_content`` row references, then blobs that no artifact references.
  Guard against a concurrent upload of the same bytes: see ``gc``.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import logging
import os
import re
import shutil
import time
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Callable, Mapping

from sqlalchemy import and_, delete, exists, or_, select
from sqlalchemy.exc import IntegrityError

from ..db.models import (Artifact, Blob, PackageAttribute, Repository, RepositoryContent, RepositoryVersion,
                         utcnow)
from ..db.models_snapshots import Snapshot
from . import audit
from .errors import Conflict, InvalidInput, NotFound, ReadOnlyView
from .interfaces import RepoInfo, RequestContext

if TYPE_CHECKING:  # pragma: no cover
    from .services import Core

__all__ = ["SnapshotService", "validate_retention", "SnapshotTag", "EMPTY_SHA256", "TOMBSTONE"]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
TOMBSTONE = "~tombstone"  # name/filename of the sentinel artifact tombstone rows point at
log = logging.getLogger("wharf.snapshots")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
PENDING_RECORDS_WAIT = 10.0  # seconds a snapshot of a proxy waits for files being recorded (then goes on)
_READ_METHODS = ("GET", "HEAD")
RETENTION_TASK = "snapshots.retention"


class SnapshotTag(StrEnum):
    SNAPSHOT_CREATE = "repository:snapshot:create"
    SNAPSHOT_DELETE = "repository:snapshot:delete"
    ROLLBACK = "repository:version:rollback"
    PRUNE = "repository:version:prune"
    GC = "system:blobs:gc"


def validate_retention(value: Any) -> dict[str, int]:
    """``{"keep_last": N, "keep_days": D}`` (either or both, positive integers)."""
    if not isinstance(value, dict):
        raise InvalidInput("setting 'retention' must be an object: {\"keep_last\": N, \"keep_days\": D}")
    unknown = set(value) - {"keep_last", "keep_days"}
    if unknown:
        raise InvalidInput(f"unknown retention setting(s): {', '.join(sorted(unknown))} (use keep_last, keep_days)")
    out = {}
    for k, v in value.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise InvalidInput(f"retention.{k} must be a positive integer")
        out[k] = v
    if not out:
        raise InvalidInput("retention needs keep_last and/or keep_days")
    return out


def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def _file_out(f: Any) -> dict[str, Any]:
    return {"key": f.key, "name": f.name, "version": f.version, "filename": f.filename, "sha256": f.sha256,
            "size": f.size}


class SnapshotService:
    def __init__(self, core: "Core"):
        self.core = core
        self._labels: dict[tuple[int, str], int] = {}  # (repo id, label) -> version (cleared on change)
        self._published: set[tuple[str, int]] = set()  # views known to be rendered in this process
        self._epoch: Any = None
        core.tasks.register(RETENTION_TASK, _retention_task)

    def schedule_retention(self, delay: float | None = None) -> None:
        """Queue the next retention run, ``delay`` seconds from now (default: the setting ``retention_interval``),
        while some repository has a retention policy (at most one is queued). ``wharf serve`` queues the first;
        each run queues the next; pruning through the API queues one too (a policy set while no run is queued is
        applied by that, or at the next start)."""
        if delay is None:
            delay = self.core.settings.retention_interval
        if any(r.config.get("retention") for r in self.core.repos.list()):
            self.core.tasks.enqueue(RETENTION_TASK, {}, delay=delay, dedupe_key=RETENTION_TASK, max_attempts=1)

    def apply_retention(self, *, actor: str = "system:retention") -> list[dict[str, Any]]:
        """Prune every repository that has a retention policy."""
        return [self.prune(r, apply=True, actor=actor) for r in self.core.repos.list() if r.config.get("retention")]

    # -- views (request path) -------------------------------------------------------------------------------
    def _fresh_caches(self) -> None:
        epoch = self.core._epoch
        if epoch != self._epoch:
            self._epoch = epoch
            self._labels.clear()
            self._published.clear()

    def _changed(self) -> None:
        self._labels.clear()
        self._published.clear()
        self.core.signal.bump()

    @staticmethod
    def _refuse_group(repo: RepoInfo) -> None:
        if repo.kind == "group":
            raise InvalidInput(f"repository '{repo.name}' is a group: it has no contents of its own to pin. Snapshot "
                               "each member instead (e.g. `wharf snapshot create MEMBER --name ...`) and install from "
                               "the members' snapshot URLs", reason="group-snapshot")

    def resolve(self, repo: RepoInfo, label: str) -> int:
        """The version a view label names: ``<number>`` (a kept version) or a snapshot name."""
        self._fresh_caches()
        hit = self._labels.get((repo.id, label))
        if hit is not None:
            return hit
        self._refuse_group(repo)
        with self.core.sessions() as s:
            if label.isdigit():
                number = int(label)
                found = s.scalar(select(RepositoryVersion.number).where(
                    RepositoryVersion.repository_id == repo.id, RepositoryVersion.number == number))
                if found is None:
                    current = s.scalar(select(Repository.version).where(Repository.id == repo.id)) or 0
                    why = "does not exist yet" if number > current else "was pruned by the retention policy"
                    raise NotFound(f"version {number} of repository '{repo.name}' {why}")
                version = int(found)
            else:
                found = s.scalar(select(Snapshot.version).where(Snapshot.repository_id == repo.id,
                                                                Snapshot.name == label))
                if found is None:
                    raise NotFound(f"no snapshot named '{label}' in repository '{repo.name}'")
                version = int(found)
        self._labels[(repo.id, label)] = version
        return version

    def view(self, repo: RepoInfo, label: str) -> RepoInfo:
        """The pinned RepoInfo of a view (not yet rendered)."""
        if not label or not (label.isdigit() or _NAME_RE.match(label)) or ".." in label:
            raise NotFound(f"no snapshot named '{label}' in repository '{repo.name}'")
        if label.isdigit():
            label = str(int(label))
        version = self.resolve(repo, label)
        return dataclasses.replace(repo, name=f"{repo.name}/~{label}", kind="hosted", version=version, pinned=version)

    async def open_view(self, ctx: RequestContext, method: str, rest: str) -> tuple[RepoInfo, str]:
        """For the dispatcher: ``rest`` is ``~<label>[/<subpath>]``; returns the rendered view and the subpath."""
        import anyio.to_thread

        label, _, sub = rest[1:].partition("/")
        ctx.require("read")  # a private repository's views stay private (and their names unknown)
        if method not in _READ_METHODS:
            raise ReadOnlyView(f"'/{ctx.repo.name}/~{label}/' is a read-only view of repository '{ctx.repo.name}' "
                               f"(method {method} not allowed); write to /{ctx.repo.name}/ itself")
        view = await anyio.to_thread.run_sync(self.view, ctx.repo, label)
        if (view.name, view.pinned) not in self._published:
            async with self.core.flights.flight(f"view:{view.name}"):
                await anyio.to_thread.run_sync(self.ensure_published, view)
        return view, sub

    def ensure_published(self, view: RepoInfo) -> None:
        """Render a view's tree unless it is already rendered at its version (a recreated snapshot name may
        point at another version: its old tree goes first)."""
        assert view.pinned is not None
        marker = self.core.pages.root / view.name / ".published"
        try:
            current = int(marker.read_text())
        except (FileNotFoundError, ValueError):
            current = None
        if current != view.pinned:
            if current is not None:
                self.drop_view(view.name)
            self.core.publish(view, None)
        self._published.add((view.name, view.pinned))

    def rendered_views(self, repo_name: str) -> list[str]:
        """Names (``<repo>/~<label>``) of the views of a repository rendered on this server."""
        root = self.core.pages.root / repo_name
        try:
            return sorted(f"{repo_name}/{d.name}" for d in root.iterdir() if d.name.startswith("~") and d.is_dir())
        except FileNotFoundError:
            return []

    def unlink_from_views(self, repo_name: str, sha256: str, filename: str) -> None:
        """Make a file undownloadable from every rendered view of a repository (e.g. quarantine: a view keeps
        deleted files, but must not serve a quarantined one). Re-rendering a view does not bring it back unless the
        caller's own check allows it."""
        for view in self.rendered_views(repo_name):
            self.core.pages.unlink_file(view, sha256, filename)

    def drop_views(self, repo_name: str) -> None:
        """Forget every rendered view of a repository: each re-renders on its next request (e.g. after a quarantine
        or its release changed what views may show). Callers bump the change signal afterwards."""
        for view in self.rendered_views(repo_name):
            self.drop_view(view)
        self._published.clear()

    def drop_view(self, view_name: str) -> None:
        shutil.rmtree(self.core.pages.root / view_name, ignore_errors=True)
        self._published = {p for p in self._published if p[0] != view_name}

    # -- named snapshots ------------------------------------------------------------------------------------
    def create(self, repo: RepoInfo, name: str, *, version: int | None = None, description: str | None = None,
               actor: str, remote_addr: str | None = None) -> dict[str, Any]:
        self._refuse_group(repo)
        if not isinstance(name, str) or not _NAME_RE.match(name) or name.isdigit() or ".." in name:
            raise InvalidInput(f"invalid snapshot name {name!r}: 1-100 letters, digits, '.', '_' or '-', starting "
                               "with a letter or digit, not only digits (numbers name versions: /<repo>/~<number>/)")
        if version is None and repo.kind == "proxy":  # "now" includes the files clients already have from it
            self.core.pending_records.wait_idle(repo.name, PENDING_RECORDS_WAIT)
        with self.core.sessions.begin() as s:
            current = int(s.scalar(select(Repository.version).where(Repository.id == repo.id)) or 0)
            number = current if version is None else version
            if s.scalar(select(RepositoryVersion.id).where(RepositoryVersion.repository_id == repo.id,
                                                           RepositoryVersion.number == number)) is None:
                if number == 0:
                    raise InvalidInput(f"repository '{repo.name}' has no versions yet: upload something first")
                why = "does not exist" if number > current or number < 1 else "was pruned by the retention policy"
                raise NotFound(f"version {number} of repository '{repo.name}' {why}")
            if s.scalar(select(Snapshot.id).where(Snapshot.repository_id == repo.id, Snapshot.name == name)):
                raise Conflict(f"repository '{repo.name}' already has a snapshot named '{name}'")
            snap = Snapshot(repository_id=repo.id, name=name, version=number, description=description,
                            created_by=actor)
            s.add(snap)
            try:
                s.flush()
            except IntegrityError:
                raise Conflict(f"repository '{repo.name}' already has a snapshot named '{name}'")
            audit.record(s, SnapshotTag.SNAPSHOT_CREATE, actor=actor, repository=repo.name, subject=name,  # type: ignore[arg-type]
                         remote_addr=remote_addr, version=number)
            out = self._snap_out(repo, snap)
        self._changed()
        return out

    def list(self, repo: RepoInfo) -> list[dict[str, Any]]:
        with self.core.sessions() as s:
            rows = s.scalars(select(Snapshot).where(Snapshot.repository_id == repo.id).order_by(Snapshot.version,
                                                                                                 Snapshot.name))
            return [self._snap_out(repo, r) for r in rows]

    def get(self, repo: RepoInfo, name: str) -> dict[str, Any]:
        with self.core.sessions() as s:
            row = s.scalar(select(Snapshot).where(Snapshot.repository_id == repo.id, Snapshot.name == name))
            if row is None:
                raise NotFound(f"no snapshot named '{name}' in repository '{repo.name}'")
            return self._snap_out(repo, row)

    def delete(self, repo: RepoInfo, name: str, *, actor: str, remote_addr: str | None = None) -> dict[str, Any]:
        with self.core.sessions.begin() as s:
            row = s.scalar(select(Snapshot).where(Snapshot.repository_id == repo.id, Snapshot.name == name))
            if row is None:
                raise NotFound(f"no snapshot named '{name}' in repository '{repo.name}'")
            out = self._snap_out(repo, row)
            s.delete(row)
            audit.record(s, SnapshotTag.SNAPSHOT_DELETE, actor=actor, repository=repo.name, subject=name,  # type: ignore[arg-type]
                         remote_addr=remote_addr, version=out["version"])
        self.drop_view(f"{repo.name}/~{name}")
        self._changed()
        return out

    def _snap_out(self, repo: RepoInfo, row: Snapshot) -> dict[str, Any]:
        return {"name": row.name, "repository": repo.name, "version": row.version, "description": row.description,
                "created_at": row.created_at, "created_by": row.created_by, "url": f"/{repo.name}/~{row.name}/"}

    # -- versions and diff ----------------------------------------------------------------------------------
    def versions(self, repo: RepoInfo, *, limit: int = 100, before: int | None = None) -> list[dict[str, Any]]:
        q = (select(RepositoryVersion).where(RepositoryVersion.repository_id == repo.id)
             .order_by(RepositoryVersion.number.desc()).limit(max(1, min(limit, 1000))))
        if before is not None:
            q = q.where(RepositoryVersion.number < before)
        with self.core.sessions() as s:
            rows = list(s.scalars(q))
            snaps: dict[int, list[str]] = {}
            for n, v in s.execute(select(Snapshot.name, Snapshot.version).where(Snapshot.repository_id == repo.id)):
                snaps.setdefault(v, []).append(n)
        return [{"number": r.number, "created_at": r.created_at, "actor": r.actor, "summary": r.summary,
                 "snapshots": sorted(snaps.get(r.number, [])), "url": f"/{repo.name}/~{r.number}/"} for r in rows]

    def version_of(self, repo: RepoInfo, label: str | int) -> int:
        """A version given as a number or a snapshot name (for diff/rollback)."""
        text = str(label)
        if text.isdigit():
            return self.resolve(repo, str(int(text)))
        return self.resolve(repo, text)

    def diff(self, repo: RepoInfo, a: str | int, b: str | int) -> dict[str, Any]:
        """Files added and removed between two versions (a file whose bytes changed under one key is both)."""
        self._refuse_group(repo)
        va, vb = self.version_of(repo, a), self.version_of(repo, b)
        old = {(f.key, f.sha256): f for f in self.core.content.files(repo.id, at_version=va)}
        new = {(f.key, f.sha256): f for f in self.core.content.files(repo.id, at_version=vb)}
        added = [_file_out(new[k]) for k in sorted(new.keys() - old.keys())]
        removed = [_file_out(old[k]) for k in sorted(old.keys() - new.keys())]
        yank = [{"key": k[0], "yanked": new[k].yanked, "reason": new[k].yanked_reason}
                for k in sorted(new.keys() & old.keys()) if new[k].yanked != old[k].yanked]
        return {"repository": repo.name, "from": va, "to": vb, "added": added, "removed": removed,
                "yank_changes": yank}

    # -- rollback -------------------------------------------------------------------------------------------
    def rollback(self, repo: RepoInfo, to: str | int, *, actor: str, remote_addr: str | None = None) -> dict[str, Any]:
        """Make a new version whose files and package attributes equal version ``to``'s; re-render the repository."""
        self._refuse_group(repo)
        target = self.version_of(repo, to)
        with self.core.sessions.begin() as s:
            row = s.scalar(select(Repository).where(Repository.id == repo.id).with_for_update())
            if row is None:
                raise NotFound("the repository was deleted")
            if target >= row.version:
                raise InvalidInput(f"version {target} is the current version of '{repo.name}': nothing to roll back")
            live = list(s.scalars(select(RepositoryContent).where(RepositoryContent.repository_id == repo.id,
                                                                  RepositoryContent.version_removed.is_(None))))
            old = list(s.scalars(select(RepositoryContent).where(RepositoryContent.repository_id == repo.id,
                                                                 _alive_at(RepositoryContent, target))))
            ident: Callable[[RepositoryContent], tuple[Any, ...]] = lambda r: (r.artifact_id, r.yanked, r.yanked_reason)
            want = {r.key: r for r in old}
            have = {r.key: r for r in live}
            end = [r for k, r in have.items() if k not in want or ident(want[k]) != ident(r)]
            start = [r for k, r in want.items() if k not in have or ident(have[k]) != ident(r)]
            attrs_live = list(s.scalars(select(PackageAttribute).where(PackageAttribute.repository_id == repo.id,
                                                                       PackageAttribute.version_removed.is_(None))))
            attrs_old = list(s.scalars(select(PackageAttribute).where(PackageAttribute.repository_id == repo.id,
                                                                      _alive_at(PackageAttribute, target))))
            awant = {(r.name, r.attr): r for r in attrs_old}
            ahave = {(r.name, r.attr): r for r in attrs_live}
            aend = [r for k, r in ahave.items() if k not in awant or awant[k].value != r.value]
            astart = [r for k, r in awant.items() if k not in ahave or ahave[k].value != r.value]
            if not (end or start or aend or astart):
                raise InvalidInput(f"repository '{repo.name}' already has the contents of version {target}")
            row.version += 1
            v = row.version
            s.add(RepositoryVersion(repository_id=repo.id, number=v, actor=actor, summary=f"rollback to version {target}"))
            for r in end:
                r.version_removed = v
            for a in aend:
                a.version_removed = v
            s.flush()
            now = utcnow()
            for r in start:
                s.add(RepositoryContent(repository_id=repo.id, artifact_id=r.artifact_id, key=r.key, name=r.name,
                                        version_added=v, yanked=r.yanked, yanked_reason=r.yanked_reason,
                                        added_at=r.added_at))
            for a in astart:
                s.add(PackageAttribute(repository_id=repo.id, name=a.name, attr=a.attr, value=a.value, version_added=v,
                                       changed_by=actor, changed_at=now))
            ended = {r.artifact_id for r in end}
            gone = [(sha, fn) for sha, fn in s.execute(select(Artifact.sha256, Artifact.filename)
                                                       .where(Artifact.id.in_(ended)))] if ended else []
            names = sorted({r.name for r in end} | {r.name for r in start} | {a.name for a in aend}
                           | {a.name for a in astart})
            audit.record(s, SnapshotTag.ROLLBACK, actor=actor, repository=repo.name, subject=f"version {target}",  # type: ignore[arg-type]
                         remote_addr=remote_addr, to=target, version=v, removed=len(end), added=len(start),
                         names=names[:100])
        self._rollback_events(repo, v, target, actor)
        fresh = dataclasses.replace(repo, version=v)
        for sha, fn in gone:
            if not self.core.content.is_live(repo.id, sha, fn):
                self.core.pages.unlink_file(repo.name, sha, fn)
        self.core.publish(fresh, None)
        return {"repository": repo.name, "to": target, "version": v, "removed": len(end), "added": len(start),
                "attributes_changed": len(aend) + len(astart), "packages": names}

    def _rollback_events(self, repo: RepoInfo, v: int, target: int, actor: str) -> None:
        """``package.deleted`` / ``package.created`` per release the rollback removed / brought back."""
        from .events import Event

        d = self.diff(repo, v - 1, v)
        for kind, files in (("package.deleted", d["removed"]), ("package.created", d["added"])):
            by_release: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for f in files:
                by_release.setdefault((f["name"], f["version"]), []).append(f)
            for (name, version), group in by_release.items():
                entries = tuple({k: f[k] for k in ("filename", "key", "sha256", "size")} for f in group)
                self.core.events.emit(Event(kind, repo.name, name, version, entries, actor=actor, format=repo.format,
                                            detail={"action": "rollback", "to": target, "repository_version": v}))

    # -- retention ------------------------------------------------------------------------------------------
    def kept_versions(self, s: Any, repo_id: int, retention: Mapping[str, int], *, now: datetime | None = None,
                      ) -> tuple[list[int], list[int]]:
        """(kept, pruned) version numbers of a repository under a retention policy."""
        now = now or utcnow()
        rows = list(s.execute(select(RepositoryVersion.number, RepositoryVersion.created_at)
                              .where(RepositoryVersion.repository_id == repo_id)))
        current = int(s.scalar(select(Repository.version).where(Repository.id == repo_id)) or 0)
        pinned = set(s.scalars(select(Snapshot.version).where(Snapshot.repository_id == repo_id)))
        keep_last = retention.get("keep_last")
        keep_days = retention.get("keep_days")
        kept, pruned = [], []
        for number, created in rows:
            keep = number == current or number in pinned
            if keep_last is not None and number > current - keep_last:
                keep = True
            if keep_days is not None and _aware(created) >= now - timedelta(days=keep_days):
                keep = True
            if keep_last is None and keep_days is None:
                keep = True
            (kept if keep else pruned).append(number)
        return sorted(kept), sorted(pruned)

    def prune(self, repo: RepoInfo, *, apply: bool = True, actor: str = "system", remote_addr: str | None = None,
              now: datetime | None = None) -> dict[str, Any]:
        """Apply the repository's retention policy (dry run: ``apply=False``)."""
        retention = repo.config.get("retention")
        out: dict[str, Any] = {"repository": repo.name, "retention": retention, "pruned_versions": [],
                               "rows_deleted": 0, "applied": apply}
        if not retention or repo.kind == "group":
            return out
        with self.core.sessions.begin() as s:
            s.scalar(select(Repository.id).where(Repository.id == repo.id).with_for_update())
            kept, pruned = self.kept_versions(s, repo.id, retention, now=now)
            out["pruned_versions"] = pruned
            out["kept_versions"] = len(kept)
            if not pruned:
                return out
            dead_rc = list(s.execute(select(RepositoryContent.id, RepositoryContent.version_added,
                                            RepositoryContent.version_removed, RepositoryContent.key,
                                            RepositoryContent.name)
                                     .where(RepositoryContent.repository_id == repo.id,
                                            RepositoryContent.version_removed.is_not(None),
                                            RepositoryContent.version_removed > RepositoryContent.version_added)))
            drop_rc = [r for r in dead_rc if not _needed(kept, r.version_added, r.version_removed)]
            dead_attr = list(s.execute(select(PackageAttribute.id, PackageAttribute.version_added,
                                              PackageAttribute.version_removed)
                                       .where(PackageAttribute.repository_id == repo.id,
                                              PackageAttribute.version_removed.is_not(None))))
            drop_attr = [r.id for r in dead_attr if not _needed(kept, r.version_added, r.version_removed)]
            out["rows_deleted"] = len(drop_rc) + len(drop_attr)
            if not apply:
                s.rollback()
                return out
            for chunk in _chunks([r.id for r in drop_rc]):
                s.execute(delete(RepositoryContent).where(RepositoryContent.id.in_(chunk)))
            for chunk in _chunks(drop_attr):
                s.execute(delete(PackageAttribute).where(PackageAttribute.id.in_(chunk)))
            for chunk in _chunks(pruned):
                s.execute(delete(RepositoryVersion).where(RepositoryVersion.repository_id == repo.id,
                                                          RepositoryVersion.number.in_(chunk)))
            if not repo.config.get("allow_overwrite"):
                self._tombstones(s, repo, drop_rc)
            audit.record(s, SnapshotTag.PRUNE, actor=actor, repository=repo.name, subject=None,  # type: ignore[arg-type]
                         remote_addr=remote_addr, versions=len(pruned), first=pruned[0], last=pruned[-1],
                         rows=out["rows_deleted"], retention=dict(retention))
        for n in pruned:
            self.drop_view(f"{repo.name}/~{n}")
        self._changed()
        return out

    def _tombstones(self, s: Any, repo: RepoInfo, dropped: list[Any]) -> None:
        """Keys that lost their last row stay reserved: a row alive in no version, on the empty sentinel artifact."""
        if not dropped:
            return
        keys: dict[str, Any] = {}
        for r in dropped:
            if r.key not in keys or r.version_removed > keys[r.key].version_removed:
                keys[r.key] = r
        left = set()
        for chunk in _chunks(list(keys)):
            left |= set(s.scalars(select(RepositoryContent.key).where(RepositoryContent.repository_id == repo.id,
                                                                      RepositoryContent.key.in_(chunk))))
        todo = [r for k, r in keys.items() if k not in left]
        if not todo:
            return
        art_id = self._sentinel(s, repo.format)
        for r in todo:
            s.add(RepositoryContent(repository_id=repo.id, artifact_id=art_id, key=r.key, name=r.name,
                                    version_added=r.version_removed, version_removed=r.version_removed))

    def _sentinel(self, s: Any, fmt: str) -> int:
        ident = {"format": fmt, "name": TOMBSTONE, "version": "", "filename": TOMBSTONE, "sha256": EMPTY_SHA256}
        found = s.scalar(select(Artifact.id).filter_by(**ident))
        if found is not None:
            return int(found)
        if not self.core.blobs.exists(EMPTY_SHA256):
            self.core.blobs.put_bytes(b"")
        if s.get(Blob, EMPTY_SHA256) is None:
            s.add(Blob(sha256=EMPTY_SHA256, size=0))
            s.flush()  # before the artifact that references it (no ORM relationship orders them)
        art = Artifact(**ident, size=0, kind=None, meta={}, origin="tombstone", uploaded_by="system")
        s.add(art)
        s.flush()
        return int(art.id)

    # -- garbage collection ---------------------------------------------------------------------------------
    def gc(self, *, apply: bool = False, grace: float = 600.0, actor: str = "system",
           progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
        """Blobs that no kept row references. Dry run lists them; ``apply`` deletes rows then files.

        Artifacts with no ``repository_content`` row (in any repository, any kept version) are deleted (one by one,
        each guarded by NOT EXISTS, so a row inserted meanwhile keeps it; a row of another table that references
        the artifact makes the database refuse, and it is kept), then blob rows that no artifact references.

        Guard against an upload of the same bytes racing the file deletion: an upload that finds its blob already
        stored touches the file (mtime) before recording it; GC moves a candidate file aside atomically and deletes
        it only if its mtime is older than ``grace`` seconds and no blob row for it exists (re-checked after the
        move), otherwise it moves it back. An upload whose touch comes after the move finds no file and stores
        its own bytes. So a blob is deleted only if no upload touched it within ``grace`` seconds, and uploads
        record their rows within seconds of touching."""
        core = self.core
        with core.sessions() as s:
            used = exists().where(RepositoryContent.artifact_id == Artifact.id)
            unref_art = list(s.scalars(select(Artifact.id).where(~used)))
            art_refs = set(s.scalars(select(Artifact.sha256).where(used).distinct()))
            art_refs |= {x for x in s.scalars(select(Artifact.metadata_sha256).where(
                Artifact.metadata_sha256.is_not(None), used).distinct()) if x}
            blob_rows = dict(s.execute(select(Blob.sha256, Blob.size)).all())
        stored = dict(core.blobs.iter_blobs())
        cutoff = time.time() - grace
        young = sorted(sha for sha in set(blob_rows) | set(stored)
                       if sha not in art_refs and self._mtime(sha) > cutoff)
        candidates = {sha: size for sha, size in blob_rows.items() if sha not in art_refs and sha not in young}
        orphans = {sha: size for sha, size in stored.items()
                   if sha not in blob_rows and sha not in art_refs and sha not in young}
        report: dict[str, Any] = {
            "applied": apply, "artifacts": len(unref_art),
            "blobs": sorted(set(candidates) | set(orphans)),
            "bytes": sum(candidates.values()) + sum(orphans.values()),
            "young": young, "grace_seconds": grace,
        }
        if not apply:
            return report
        deleted_art = kept_art = 0
        for art_id in unref_art:
            try:
                with core.sessions.begin() as s:
                    n = s.execute(delete(Artifact).where(
                        Artifact.id == art_id, ~exists().where(RepositoryContent.artifact_id == art_id))).rowcount
                deleted_art += n
                kept_art += 1 - n
            except IntegrityError:  # another table references it (e.g. provenance): keep it
                kept_art += 1
        deleted_rows: list[str] = []
        for sha in sorted(candidates):
            try:
                with core.sessions.begin() as s:
                    n = s.execute(delete(Blob).where(
                        Blob.sha256 == sha,
                        ~exists().where(or_(Artifact.sha256 == sha, Artifact.metadata_sha256 == sha)))).rowcount
            except IntegrityError:  # an upload's artifact row took a reference meanwhile (PostgreSQL's FK check)
                n = 0
            if n:
                deleted_rows.append(sha)
        todo = deleted_rows + sorted(orphans)
        removed, kept_files, freed = [], [], 0
        for i, sha in enumerate(todo):
            size = self._delete_blob_file(sha, grace)
            if size is None:
                kept_files.append(sha)
            else:
                removed.append(sha)
                freed += size
            if progress:
                progress(i + 1, len(todo))
        report.update({"artifacts_deleted": deleted_art, "artifacts_kept": kept_art, "deleted": removed,
                       "kept_young_or_referenced": kept_files, "bytes_freed": freed})
        with core.sessions.begin() as s:
            audit.record(s, SnapshotTag.GC, actor=actor, blobs=len(removed), bytes=freed,  # type: ignore[arg-type]
                         artifacts=deleted_art)
        return report

    def _mtime(self, sha: str) -> float:
        path = self.core.blobs.local_path(sha)
        try:
            return path.stat().st_mtime if path is not None else 0.0
        except FileNotFoundError:
            return 0.0

    def _delete_blob_file(self, sha: str, grace: float) -> int | None:
        """Delete one blob file under the guard (see ``gc``); its size, or None if it was kept."""
        blobs = self.core.blobs
        path = blobs.local_path(sha)
        if path is None:  # a backend without local files: the row check is the guard
            with self.core.sessions() as s:
                if s.get(Blob, sha) is not None:
                    return None
            blobs.delete(sha)
            return 0
        aside = getattr(blobs, "tmp_dir", path.parent) / f"gc-{sha}-{os.getpid()}"
        try:
            os.replace(path, aside)
        except FileNotFoundError:
            return None
        st = aside.stat()
        with self.core.sessions() as s:
            referenced = s.get(Blob, sha) is not None or s.scalar(select(Artifact.id).where(
                or_(Artifact.sha256 == sha, Artifact.metadata_sha256 == sha)).limit(1)) is not None
        if referenced or st.st_mtime > time.time() - grace:
            if path.exists():  # an upload stored the same bytes meanwhile: same content, keep theirs
                aside.unlink(missing_ok=True)
            else:
                os.replace(aside, path)
            return None
        aside.unlink(missing_ok=True)
        return int(st.st_size)


def _retention_task(core: "Core", payload: dict[str, Any]) -> None:
    """The scheduled retention run: prune, then queue the next run (also after a failure)."""
    try:
        done = [p for p in core.snapshots.apply_retention() if p["pruned_versions"]]
        if done:
            log.info("retention pruned versions", extra={"fields": {
                "repositories": {p["repository"]: len(p["pruned_versions"]) for p in done}}})
    finally:
        core.snapshots.schedule_retention()


def _alive_at(table: Any, v: int) -> Any:
    return and_(table.version_added <= v, or_(table.version_removed.is_(None), table.version_removed > v))


def _needed(kept: list[int], added: int, removed: int) -> bool:
    """Whether a row alive in ``added <= v < removed`` is alive in some kept version (``kept`` sorted)."""
    i = bisect.bisect_left(kept, added)
    return i < len(kept) and kept[i] < removed


def _chunks(items: list[Any], n: int = 500) -> Any:
    for i in range(0, len(items), n):
        yield items[i:i + n]

