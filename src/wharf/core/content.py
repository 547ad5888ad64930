"""Repository content and immutable versions.

Every change to a repository makes version N+1. An artifact is alive in a repository between
``version_added`` and ``version_removed``; any past version's contents are one query away (snapshots build on it).
A key (Python: the filename) that was ever in the repository stays reserved unless the repository allows overwrite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..db.models import Artifact, Blob, PackageAttribute, Repository, RepositoryContent, RepositoryVersion, utcnow
from ..storage import BlobRef
from . import audit
from .errors import FileExists, FileWasDeleted, NotFound
from .interfaces import RepoInfo

__all__ = ["ContentService", "NewArtifact", "LiveFile", "AddResult"]


@dataclass(frozen=True, slots=True)
class NewArtifact:
    """What a format's ingest hands to core after validating a file."""

    format: str
    name: str
    version: str
    filename: str
    blob: BlobRef
    kind: str | None = None
    meta: dict[str, Any] | None = None
    metadata_blob: BlobRef | None = None
    origin: str = "upload"
    key: str | None = None  # the repository key, unique among live files (default: the filename; a path for some formats)

    @property
    def repo_key(self) -> str:
        return self.key or self.filename


@dataclass(frozen=True, slots=True)
class LiveFile:
    """A file alive in a repository version, as index renderers need it."""

    artifact_id: int
    name: str
    version: str
    filename: str
    sha256: str
    size: int
    kind: str | None
    meta: dict[str, Any]
    metadata_sha256: str | None
    yanked: bool
    yanked_reason: str | None
    added_at: Any
    uploaded_by: str | None
    key: str


@dataclass(frozen=True, slots=True)
class AddResult:
    created: bool  # False: the identical file was already there (idempotent retry)
    version: int
    file: LiveFile
    decisions: tuple[Any, ...] = ()  # policy decisions that let it in (core.ingest fills them)


def _pin(repo: "int | RepoInfo", at_version: int | None) -> tuple[int, int | None]:
    """A read's repository id and version: a RepoInfo view pinned at a version reads that version."""
    if isinstance(repo, int):
        return repo, at_version
    return repo.id, at_version if at_version is not None else repo.pinned


def _alive(v: int | None, table: Any = RepositoryContent):  # type: ignore[no-untyped-def]
    if v is None:
        return table.version_removed.is_(None)
    return and_(table.version_added <= v, or_(table.version_removed.is_(None), table.version_removed > v))


_LIVE_COLUMNS = (
    Artifact.id, Artifact.name, Artifact.version, Artifact.filename, Artifact.sha256, Artifact.size, Artifact.kind,
    Artifact.meta, Artifact.metadata_sha256, RepositoryContent.yanked, RepositoryContent.yanked_reason,
    RepositoryContent.added_at, Artifact.uploaded_by, RepositoryContent.key,
)


# -- statements of the hot write path, built once ---------------------------------------------------------------
_rc, _art, _repo_t = RepositoryContent.__table__, Artifact.__table__, Repository.__table__
_Q_LOCK_REPO = select(_repo_t.c.id).where(_repo_t.c.id == bindparam("b_repo")).with_for_update()
_Q_KEY_ROWS = (select(_rc.c.id, _rc.c.version_removed, _art.c.sha256).join(_art, _art.c.id == _rc.c.artifact_id)
               .where(_rc.c.repository_id == bindparam("b_repo"), _rc.c.key == bindparam("b_key"))
               .order_by(_rc.c.version_removed.is_(None).desc()))
_U_BUMP = (update(_repo_t).where(_repo_t.c.id == bindparam("b_repo")).values(version=_repo_t.c.version + 1)
           .returning(_repo_t.c.version))
_I_VERSION = insert(RepositoryVersion.__table__)
_U_END_ROW = update(_rc).where(_rc.c.id == bindparam("b_id")).values(version_removed=bindparam("b_v"))
_I_CONTENT = insert(_rc)
_Q_ARTIFACT_ID = select(_art.c.id).where(*(_art.c[k] == bindparam(f"b_{k}")
                                           for k in ("format", "name", "version", "filename", "sha256")))
_Q_LAST_CHANGE = select(
    select(func.max(_rc.c.version_added)).where(_rc.c.repository_id == bindparam("b_repo"), _rc.c.name == bindparam("b_name"),
                                                _rc.c.version_added < bindparam("b_before")).scalar_subquery(),
    select(func.max(_rc.c.version_removed)).where(_rc.c.repository_id == bindparam("b_repo"),
                                                  _rc.c.name == bindparam("b_name"),
                                                  _rc.c.version_removed < bindparam("b_before")).scalar_subquery())
_UPSERTS = {
    name: (ins(Blob.__table__).on_conflict_do_nothing(), ins(_art).on_conflict_do_nothing().returning(_art.c.id))
    for name, ins in (("sqlite", sqlite_insert), ("postgresql", pg_insert))
}


class ContentService:
    def __init__(self, sessions: sessionmaker[Session]):
        self._sessions = sessions
        # optional overlay (quarantine): repo id -> {name: {version or None (every version): reason}} hidden from reads
        self.hide: Callable[[int], Mapping[str, Mapping[str | None, Any]]] | None = None

    # -- writes -----------------------------------------------------------------------------------------------
    def _lock_and_bump(self, s: Session, repo_id: int, actor: str, summary: str) -> int:
        """Serialise writers on one repository (row lock on PostgreSQL; BEGIN IMMEDIATE already on SQLite)
        and open version N+1."""
        repo = s.scalar(select(Repository).where(Repository.id == repo_id).with_for_update())
        if repo is None:
            raise NotFound("the repository was deleted")
        repo.version += 1
        s.add(RepositoryVersion(repository_id=repo_id, number=repo.version, actor=actor, summary=summary))
        return repo.version

    def add(self, repo: RepoInfo, new: NewArtifact, *, actor: str, remote_addr: str | None = None,
            allow_overwrite: bool = False, audit_tag: audit.AuditTag = audit.AuditTag.FILE_UPLOAD,
            on_record: Callable[[Session, AddResult], None] | None = None) -> AddResult:
        """Add a file in a new repository version. Uploads and proxy fetches are the hot write path: statements
        are built once (module level) and executed with parameters, so a call costs round trips, not SQL building.
        ``on_record(session, result)`` runs in the same transaction when a new file is recorded (e.g. its event)."""
        key = new.repo_key
        try:
            with self._sessions.begin() as s:
                postgres = s.get_bind().dialect.name == "postgresql"
                if postgres:
                    # Serialise writers on this repository *before* reading (SQLite's BEGIN IMMEDIATE already does):
                    # a concurrent upload of the same key then sees the winner's committed row, not a unique-index
                    # violation, so an identical retry is a no-op and a different file gets the usual FileExists.
                    s.execute(_Q_LOCK_REPO, {"b_repo": repo.id})
                rows = s.execute(_Q_KEY_ROWS, {"b_repo": repo.id, "b_key": key}).all()
                live = next((r for r in rows if r.version_removed is None), None)
                if live is not None and live.sha256 == new.blob.sha256:
                    return AddResult(False, repo.version, self._live_file_by_id(s, live.id))
                if live is not None and not allow_overwrite:
                    raise FileExists(f"File already exists ('{key}', with sha256 hash '{live.sha256}'). "
                                     "Files are immutable: upload a new version instead.")
                if live is None and rows and not allow_overwrite:
                    raise FileWasDeleted(f"File '{key}' was previously uploaded to this repository and deleted; "
                                         "a filename cannot be reused. Upload a new version instead.")
                version = s.execute(_U_BUMP, {"b_repo": repo.id}).scalar()
                if version is None:
                    raise NotFound("the repository was deleted")
                now = utcnow()
                s.execute(_I_VERSION, {"repository_id": repo.id, "number": version, "actor": actor,
                                       "summary": f"add {key}", "created_at": now})
                if live is not None:
                    s.execute(_U_END_ROW, {"b_id": live.id, "b_v": version})
                artifact_id = self._upsert_artifact(s, new, actor, postgres, now)
                s.execute(_I_CONTENT, {"repository_id": repo.id, "artifact_id": artifact_id, "key": key, "name": new.name,
                                       "version_added": version, "yanked": False, "added_at": now})
                audit.insert(s, audit_tag, actor=actor, repository=repo.name, subject=key, remote_addr=remote_addr,
                             at=now, sha256=new.blob.sha256, size=new.blob.size, name=new.name, version=new.version,
                             origin=new.origin)
                meta_sha = new.metadata_blob.sha256 if new.metadata_blob else None
                result = AddResult(True, version, LiveFile(artifact_id, new.name, new.version, new.filename,
                                                           new.blob.sha256, new.blob.size, new.kind, new.meta or {},
                                                           meta_sha, False, None, now, actor, key))
                if on_record is not None:
                    on_record(s, result)
                return result
        except IntegrityError:
            # a concurrent upload of the same key won the race (unique live-key index)
            raise FileExists(f"File already exists ('{key}'): another upload of it completed first.")

    def _live_file_by_id(self, s: Session, content_id: int) -> LiveFile:
        row = s.execute(select(*_LIVE_COLUMNS).join(Artifact, Artifact.id == RepositoryContent.artifact_id)
                        .where(RepositoryContent.id == content_id)).one()
        return LiveFile(*row)

    def _upsert_artifact(self, s: Session, new: NewArtifact, actor: str, postgres: bool, now: Any) -> int:
        # Blob and Artifact rows are shared across repositories, whose writers are not serialised with each other:
        # INSERT ... ON CONFLICT DO NOTHING lets concurrent uploads of one file to several repositories all succeed.
        stmts = _UPSERTS["postgresql" if postgres else "sqlite"]
        for ref in filter(None, (new.blob, new.metadata_blob)):
            s.execute(stmts[0], {"sha256": ref.sha256, "size": ref.size, "created_at": now})
        identity = {"format": new.format, "name": new.name, "version": new.version, "filename": new.filename,
                    "sha256": new.blob.sha256}
        art_id = s.execute(stmts[1], {
            **identity, "size": new.blob.size, "kind": new.kind, "meta": new.meta or {},
            "metadata_sha256": new.metadata_blob.sha256 if new.metadata_blob else None,
            "origin": new.origin, "uploaded_by": actor, "created_at": now}).scalar()
        if art_id is None:  # it existed (the same file in another repository, or uploaded before)
            art_id = s.execute(_Q_ARTIFACT_ID, {f"b_{k}": v for k, v in identity.items()}).scalar_one()
        return int(art_id)

    def remove(self, repo: RepoInfo, *, keys: Sequence[str] | None = None, name: str | None = None,
               version: str | None = None, actor: str, remote_addr: str | None = None,
               tag: audit.AuditTag = audit.AuditTag.FILE_DELETE) -> list[LiveFile]:
        """Remove files (by key, or all of a name[/version]) in a new repository version; returns what was removed."""
        with self._sessions.begin() as s:
            rows = self._select_live(s, repo.id, keys=keys, name=name, version=version)
            if not rows:
                raise NotFound("nothing matched in repository '%s'" % repo.name)
            v = self._lock_and_bump(s, repo.id, actor, f"remove {len(rows)} file(s)")
            for row, _art in rows:
                row.version_removed = v
            removed = [self._live_file(row, art) for row, art in rows]
            audit.record(s, tag, actor=actor, repository=repo.name, subject=name or ",".join(f.filename for f in removed),
                         remote_addr=remote_addr, keys=[f.filename for f in removed], version=version)
        return removed

    def set_yanked(self, repo: RepoInfo, *, name: str, version: str | None = None, keys: Sequence[str] | None = None,
                   yanked: bool, reason: str | None, actor: str, remote_addr: str | None = None) -> list[str]:
        """Yank/unyank files: the old rows end and new rows with the new flag start in version N+1."""
        with self._sessions.begin() as s:
            rows = self._select_live(s, repo.id, keys=keys, name=name, version=version)
            if not rows:
                raise NotFound(f"no files of {name} {version or ''} in repository '{repo.name}'".replace("  ", " "))
            # only files whose state changes; none left -> no new version, no audit entry
            rows = [(row, art) for row, art in rows
                    if row.yanked != yanked or (yanked and row.yanked_reason != reason)]
            if not rows:
                return []
            v = self._lock_and_bump(s, repo.id, actor, ("yank " if yanked else "unyank ") + name)
            for row, _art in rows:
                row.version_removed = v
            s.flush()
            for row, _art in rows:
                s.add(RepositoryContent(repository_id=repo.id, artifact_id=row.artifact_id, key=row.key, name=row.name,
                                        version_added=v, yanked=yanked, yanked_reason=reason if yanked else None,
                                        added_at=row.added_at))
            keys_done = [row.key for row, _a in rows]
            audit.record(s, audit.AuditTag.FILE_YANK if yanked else audit.AuditTag.FILE_UNYANK, actor=actor,
                         repository=repo.name, subject=name, remote_addr=remote_addr, keys=keys_done, reason=reason)
        return keys_done

    def _select_live(self, s: Session, repo_id: int, *, keys: Sequence[str] | None, name: str | None, version: str | None):  # type: ignore[no-untyped-def]
        q = (select(RepositoryContent, Artifact).join(Artifact, Artifact.id == RepositoryContent.artifact_id)
             .where(RepositoryContent.repository_id == repo_id, RepositoryContent.version_removed.is_(None)))
        if keys is not None:
            q = q.where(RepositoryContent.key.in_(list(keys)))
        if name is not None:
            q = q.where(RepositoryContent.name == name)
        if version is not None:
            q = q.where(Artifact.version == version)
        return list(s.execute(q).all())

    # -- package attributes (mutable per-package state, versioned like content) ------------------------------
    def set_attributes(self, repo: RepoInfo, name: str, changes: dict[str, Any], *, actor: str,
                       remote_addr: str | None = None) -> int | None:
        """Set (value) or delete (None) attributes of a package in a new repository version; None if nothing changed."""
        with self._sessions.begin() as s:
            if s.get_bind().dialect.name == "postgresql":
                s.execute(select(Repository.id).where(Repository.id == repo.id).with_for_update())
            live = {row.attr: row for row in s.scalars(select(PackageAttribute).where(
                PackageAttribute.repository_id == repo.id, PackageAttribute.name == name, _alive(None, PackageAttribute)))}
            todo = {k: v for k, v in changes.items()
                    if (v is None and k in live) or (v is not None and (k not in live or live[k].value != v))}
            if not todo:
                return None
            v = self._lock_and_bump(s, repo.id, actor, f"attributes of {name}: {', '.join(sorted(todo))}")
            now = utcnow()
            for k, value in todo.items():
                if k in live:
                    live[k].version_removed = v
            s.flush()
            for k, value in todo.items():
                if value is not None:
                    s.add(PackageAttribute(repository_id=repo.id, name=name, attr=k, value=value, version_added=v,
                                           changed_by=actor, changed_at=now))
            audit.record(s, audit.AuditTag.PACKAGE_ATTRIBUTES, actor=actor, repository=repo.name, subject=name,
                         remote_addr=remote_addr, changes=todo)
        return v

    def attributes(self, repo_id: int | RepoInfo, name: str, *, at_version: int | None = None) -> dict[str, Any]:
        repo_id, at_version = _pin(repo_id, at_version)
        q = select(PackageAttribute.attr, PackageAttribute.value).where(
            PackageAttribute.repository_id == repo_id, PackageAttribute.name == name, _alive(at_version, PackageAttribute))
        with self._sessions() as s:
            return {a: v for a, v in s.execute(q)}

    def all_attributes(self, repo_id: int | RepoInfo, attr: str | None = None, *,
                       at_version: int | None = None) -> dict[str, dict[str, Any]]:
        repo_id, at_version = _pin(repo_id, at_version)
        q = select(PackageAttribute.name, PackageAttribute.attr, PackageAttribute.value).where(
            PackageAttribute.repository_id == repo_id, _alive(at_version, PackageAttribute))
        if attr is not None:
            q = q.where(PackageAttribute.attr == attr)
        out: dict[str, dict[str, Any]] = {}
        with self._sessions() as s:
            for n, a, v in s.execute(q):
                out.setdefault(n, {})[a] = v
        return out

    # -- reads ------------------------------------------------------------------------------------------------
    @staticmethod
    def _live_file(row: RepositoryContent, art: Artifact) -> LiveFile:
        return LiveFile(art.id, art.name, art.version, art.filename, art.sha256, art.size, art.kind, art.meta or {},
                        art.metadata_sha256, row.yanked, row.yanked_reason, row.added_at, art.uploaded_by, row.key)

    def files(self, repo_id: int | RepoInfo, name: str | None = None, *, at_version: int | None = None,
              meta_keys: Sequence[str] | None = None, include_hidden: bool = False) -> list[LiveFile]:
        """Files alive in a repository (version; a pinned RepoInfo: its version). With ``meta_keys`` only those keys
        of ``meta`` are read (index rendering needs a few small fields, not every file's whole metadata). Files the
        ``hide`` overlay withholds (quarantine) are left out unless ``include_hidden`` (admin views)."""
        repo_id, at_version = _pin(repo_id, at_version)
        out = self._files(repo_id, name, at_version=at_version, meta_keys=meta_keys)
        if self.hide is not None and not include_hidden:
            hidden = self.hide(repo_id)
            if hidden:
                out = [f for f in out if not ((h := hidden.get(f.name)) and (None in h or f.version in h))]
        return out

    def _files(self, repo_id: int, name: str | None, *, at_version: int | None,
               meta_keys: Sequence[str] | None) -> list[LiveFile]:
        columns: list[Any] = list(_LIVE_COLUMNS)
        if meta_keys is not None:  # the meta column's place holds just those keys, read in SQL
            columns[7:8] = [Artifact.meta[k].as_string() for k in meta_keys]
        q = (select(*columns).join(Artifact, Artifact.id == RepositoryContent.artifact_id)
             .where(RepositoryContent.repository_id == repo_id, _alive(at_version)))
        if name is not None:
            q = q.where(RepositoryContent.name == name)
        q = q.order_by(Artifact.id)
        with self._sessions() as s:
            rows = s.execute(q).all()
        if meta_keys is None:
            return [LiveFile(*r) for r in rows]
        k = len(meta_keys)
        return [LiveFile(*r[:7], dict(zip(meta_keys, r[7:7 + k])), *r[7 + k:]) for r in rows]

    def last_change(self, repo_id: int | RepoInfo, name: str, before: int) -> int:
        """The newest repository version before ``before`` that added or removed a file of ``name`` (-1: none)."""
        repo_id, _v = _pin(repo_id, None)
        with self._sessions() as s:
            added, removed = s.execute(_Q_LAST_CHANGE, {"b_repo": repo_id, "b_name": name, "b_before": before}).one()
        return max(added if added is not None else -1, removed if removed is not None else -1)

    def names(self, repo_id: int | RepoInfo, *, at_version: int | None = None) -> list[str]:
        repo_id, at_version = _pin(repo_id, at_version)
        q = (select(RepositoryContent.name).where(RepositoryContent.repository_id == repo_id, _alive(at_version))
             .group_by(RepositoryContent.name).order_by(RepositoryContent.name))
        with self._sessions() as s:
            return list(s.scalars(q))

    def counts(self, repo_id: int) -> dict[str, int]:
        with self._sessions() as s:
            files, size = s.execute(select(func.count(RepositoryContent.id), func.coalesce(func.sum(Artifact.size), 0))
                                    .join(Artifact, Artifact.id == RepositoryContent.artifact_id)
                                    .where(RepositoryContent.repository_id == repo_id, _alive(None))).one()
            names = s.scalar(select(func.count(func.distinct(RepositoryContent.name)))
                             .where(RepositoryContent.repository_id == repo_id, _alive(None)))
        return {"files": int(files), "packages": int(names or 0), "bytes": int(size)}

    def is_live(self, repo_id: int, sha256: str, filename: str) -> bool:
        """Whether any live key of the repository holds these bytes under this file name."""
        q = (select(RepositoryContent.id).join(Artifact, Artifact.id == RepositoryContent.artifact_id)
             .where(RepositoryContent.repository_id == repo_id, RepositoryContent.version_removed.is_(None),
                    Artifact.sha256 == sha256, Artifact.filename == filename).limit(1))
        with self._sessions() as s:
            return s.scalar(q) is not None

    def live_sha256(self, repo_id: int, key: str) -> str | None:
        q = (select(Artifact.sha256).join(RepositoryContent, Artifact.id == RepositoryContent.artifact_id)
             .where(RepositoryContent.repository_id == repo_id, RepositoryContent.key == key,
                    RepositoryContent.version_removed.is_(None)))
        with self._sessions() as s:
            return s.scalar(q)

    def forget_blob_if_unreferenced(self, blobs: Any, sha256: str) -> None:
        """Delete a just-written blob that no row references (a rejected upload must leave nothing behind).

        Known narrow race: another repository's upload of the very same bytes that found the blob already stored
        and has not yet recorded it could lose it here. Closing it needs a per-blob lock shared by both paths
        (an advisory lock on PostgreSQL); until then ``wharf check`` reports such a row as a missing blob."""
        with self._sessions.begin() as s:
            if s.get(Blob, sha256) is None:
                blobs.delete(sha256)

