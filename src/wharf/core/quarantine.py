"""Quarantine: packages (or single versions) withheld from a repository without deleting anything.

A quarantine is an overlay, not a content change: the files stay recorded (admins see them and their reason), but
they are hidden from every index and snapshot (``ContentService.files`` drops them), their download links are removed
from the published tree, and a download that misses the tree answers 403 with the reason instead of 404 (so a proxy
never re-fetches the file and a group never serves it from another member). Releasing re-links and re-renders.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from sqlalchemy import and_, or_, select

from ..db.models import Artifact, Repository, RepositoryContent, utcnow
from ..db.models_policy import Quarantine
from . import audit
from .errors import Conflict, Forbidden, InvalidInput, NotFound
from .interfaces import RepoInfo

if TYPE_CHECKING:  # pragma: no cover
    from .services import Core

__all__ = ["QuarantineService", "Quarantined", "REQUEST_REPO", "QuarantineTag"]

log = logging.getLogger("wharf.quarantine")

# the repository a client asked for (set by the dispatcher): a download through a group checks the group's members
REQUEST_REPO: ContextVar[RepoInfo | None] = ContextVar("wharf_request_repo", default=None)


class QuarantineTag:
    ADD = "repository:package:quarantine"
    RELEASE = "repository:package:release"


class Quarantined(Forbidden):
    reason = "quarantined"


@dataclass(frozen=True, slots=True)
class _State:
    epoch: int
    # repo id -> package name -> {version or None (every version): reason}
    hidden: Mapping[int, Mapping[str, Mapping[str | None, str]]]
    # sha256 -> [(repo id, reason)] of every quarantined file known to the database
    shas: Mapping[str, list[tuple[int, str]]]


class QuarantineService:
    def __init__(self, core: "Core"):
        self.core = core
        self._state: _State | None = None

    # -- cached view (one stat of the change signal per use) -----------------------------------------------
    def _current(self) -> _State:
        epoch = self.core.signal.current()
        st = self._state
        if st is not None and st.epoch == epoch:
            return st
        # no lock around the load: callers may be inside a write transaction (content reads during a change), and
        # a thread lock held while waiting for the database would deadlock with them; two loads are harmless
        st = self._load(epoch)
        self._state = st
        return st

    def _load(self, epoch: int) -> _State:
        hidden: dict[int, dict[str, dict[str | None, str]]] = {}
        shas: dict[str, list[tuple[int, str]]] = {}
        with self.core.sessions() as s:
            rows = s.execute(select(Quarantine, Repository.format).join(Repository, Repository.id == Quarantine.repository_id)
                             .where(Quarantine.released_at.is_(None))).all()
            for q, fmt in rows:
                hidden.setdefault(q.repository_id, {}).setdefault(q.name, {})[q.version] = q.reason
                aq = select(Artifact.sha256).where(Artifact.format == fmt, Artifact.name == q.name)
                if q.version is not None:
                    aq = aq.where(Artifact.version == q.version)
                for sha in s.scalars(aq):
                    shas.setdefault(sha, []).append((q.repository_id, q.reason))
        return _State(epoch, hidden, shas)

    def invalidate(self) -> None:
        self._state = None

    def hidden(self, repo_id: int) -> Mapping[str, Mapping[str | None, str]]:
        """What ContentService hides from a repository: name -> {version or None: reason}."""
        return self._current().hidden.get(repo_id, {})

    def reason(self, repo_id: int, name: str, version: str | None) -> str | None:
        """Why a package version (None: the whole package) is quarantined in a repository, or None."""
        pkg = self.hidden(repo_id).get(name)
        if not pkg:
            return None
        if None in pkg:
            return pkg[None]
        return pkg.get(version) if version is not None else None

    def project_status(self, repo_id: int, name: str) -> tuple[str, str] | None:
        """PEP 792-style project status when the whole package is quarantined: ("quarantined", reason)."""
        pkg = self.hidden(repo_id).get(name)
        if pkg and None in pkg:
            return "quarantined", pkg[None]
        return None

    # -- download guard (core.published calls it) ------------------------------------------------------------
    def _scope_ids(self, repo_name: str) -> set[int]:
        """The repositories whose quarantine applies to a download served from ``repo_name`` for this request:
        that repository, and when the request came through a group, the group and every member."""
        ids: set[int] = set()
        for r in (self.core.repos.get(repo_name), REQUEST_REPO.get()):
            if r is not None:
                ids.add(r.id)
                if r.kind == "group":
                    ids.update(m.id for m in self.core.members(r))
        return ids

    def may_link(self, repo_name: str, sha256: str) -> bool:
        """Whether these bytes may be published in a repository (not while quarantined there)."""
        hits = self._current().shas.get(sha256)
        if not hits:
            return True
        repo = self.core.repos.get(repo_name)
        return repo is None or all(rid != repo.id for rid, _reason in hits)

    def on_hit(self, repo_name: str, sha256: str) -> None:
        """A published file is about to be served: through a group, refuse bytes quarantined in any member."""
        req = REQUEST_REPO.get()
        if req is None or req.name == repo_name:
            return  # served from the repository asked for: its own quarantine unlinked the file already
        st = self._current()
        hits = st.shas.get(sha256)
        if hits:
            ids = self._scope_ids(repo_name)
            for rid, reason in hits:
                if rid in ids:
                    raise Quarantined(f"this file is quarantined: {reason}")

    def on_miss(self, repo_name: str, sha256: str, filename: str) -> None:
        """A download found no published file: answer 403 with the reason when the bytes are quarantined (read
        from the database, not the cache: the miss path is cold, and this is what stops a proxy re-fetching)."""
        ids = self._scope_ids(repo_name)
        hidden = self._current().hidden
        if not any(hidden.get(i) for i in ids):
            return  # nothing is quarantined where this download looks (the usual case: no database query)
        with self.core.sessions() as s:
            arts = s.execute(select(Artifact.format, Artifact.name, Artifact.version)
                             .where(Artifact.sha256 == sha256).distinct()).all()
            if not arts:
                return
            conds = [and_(Quarantine.name == n, or_(Quarantine.version.is_(None), Quarantine.version == v))
                     for _f, n, v in arts]
            reason = s.scalar(select(Quarantine.reason).where(Quarantine.repository_id.in_(ids),
                                                              Quarantine.released_at.is_(None), or_(*conds)).limit(1))
        if reason is not None:
            raise Quarantined(f"{filename} is quarantined: {reason}")

    def check_package(self, repo: RepoInfo, name: str, version: str | None) -> None:
        """Raise 403 if a package version is quarantined in ``repo`` (or, through a group, in a member)."""
        for rid in self._scope_ids(repo.name) or {repo.id}:
            why = self.reason(rid, name, version)
            if why is not None:
                what = f"{name} {version}" if version else name
                raise Quarantined(f"{what} is quarantined: {why}")

    # -- changes ----------------------------------------------------------------------------------------------
    def add(self, repo: RepoInfo, name: str, version: str | None, *, reason: str, actor: str,
            remote_addr: str | None = None, source: str | None = None) -> dict[str, Any]:
        if repo.kind == "group":
            raise InvalidInput(f"'{repo.name}' is a group: quarantine the package in the member that holds it "
                               "(downloads through the group are refused too)")
        reason = (reason or "").strip()
        if not reason:
            raise InvalidInput("a quarantine needs a reason (--reason)")
        name = self.core.plugin(repo).normalize_name(name)
        with self.core.sessions.begin() as s:
            existing = s.scalar(select(Quarantine).where(
                Quarantine.repository_id == repo.id, Quarantine.name == name, Quarantine.released_at.is_(None),
                Quarantine.version.is_(None) if version is None else Quarantine.version == version))
            if existing is not None:
                raise Conflict(f"{_what(name, version)} is already quarantined in '{repo.name}': {existing.reason}")
            q = Quarantine(repository_id=repo.id, name=name, version=version, reason=reason, source=source,
                           created_by=actor, created_at=utcnow())
            s.add(q)
            files = self._files(s, repo.id, name, version)
            audit.record(s, QuarantineTag.ADD, actor=actor, repository=repo.name, subject=name,  # type: ignore[arg-type]
                         remote_addr=remote_addr, version=version, reason=reason, source=source,
                         files=[f["filename"] for f in files])
        self.core.snapshots.drop_views(repo.name)  # views re-render (lazily) without the quarantined files
        self._changed()
        # unpublish: every link of these bytes in this repository goes (derived files such as .metadata too)
        for f in files:
            if not self._still_visible(repo.id, f["sha256"], name, version):
                self._unlink_sha(repo.name, f["sha256"])
        self.core.publish(repo, {name})
        self._refresh_views(repo, name, files, full=False)
        self._emit("package.quarantined", repo, name, version, files, actor, {"reason": reason, "source": source})
        return self._out(q, repo.name, files)

    def release(self, repo: RepoInfo, name: str, version: str | None, *, actor: str, reason: str | None = None,
                remote_addr: str | None = None) -> dict[str, Any]:
        name = self.core.plugin(repo).normalize_name(name)
        with self.core.sessions.begin() as s:
            q = s.scalar(select(Quarantine).where(
                Quarantine.repository_id == repo.id, Quarantine.name == name, Quarantine.released_at.is_(None),
                Quarantine.version.is_(None) if version is None else Quarantine.version == version))
            if q is None:
                raise NotFound(f"{_what(name, version)} is not quarantined in '{repo.name}'")
            q.released_at, q.released_by, q.release_reason = utcnow(), actor, reason
            files = self._files(s, repo.id, name, version)
            audit.record(s, QuarantineTag.RELEASE, actor=actor, repository=repo.name, subject=name,  # type: ignore[arg-type]
                         remote_addr=remote_addr, version=version, reason=reason, quarantine_reason=q.reason)
        self.core.snapshots.drop_views(repo.name)  # views rendered during the quarantine re-render with the files
        self._changed()
        # re-link and re-render: a full publish for hosted repositories (per-name publishes do not link files);
        # a proxy's publish of the name links what it cached and refreshes its mirrored page
        self.core.publish(repo, {name} if repo.kind == "proxy" else None)
        self._refresh_views(repo, name, files, full=True)
        self._emit("package.released", repo, name, version, files, actor, {"reason": reason})
        return self._out(q, repo.name, files)

    def list(self, repo: RepoInfo | None = None, *, include_released: bool = False,
             name: str | None = None) -> list[dict[str, Any]]:
        q = select(Quarantine, Repository.name).join(Repository, Repository.id == Quarantine.repository_id)
        if repo is not None:
            q = q.where(Quarantine.repository_id == repo.id)
        if name is not None:
            q = q.where(Quarantine.name == name)
        if not include_released:
            q = q.where(Quarantine.released_at.is_(None))
        with self.core.sessions() as s:
            rows = s.execute(q.order_by(Quarantine.id)).all()
            return [self._out(row, rname, self._files(s, row.repository_id, row.name, row.version) if
                              row.released_at is None else []) for row, rname in rows]

    # -- helpers ----------------------------------------------------------------------------------------------
    def _changed(self) -> None:
        self.invalidate()
        self.core.signal.bump()  # other processes drop their cached view on their next request

    @staticmethod
    def _files(s: Any, repo_id: int, name: str, version: str | None) -> list[dict[str, Any]]:
        q = (select(RepositoryContent.key, Artifact.filename, Artifact.version, Artifact.sha256, Artifact.size)
             .join(Artifact, Artifact.id == RepositoryContent.artifact_id)
             .where(RepositoryContent.repository_id == repo_id, RepositoryContent.name == name,
                    RepositoryContent.version_removed.is_(None)))
        if version is not None:
            q = q.where(Artifact.version == version)
        return [{"key": k, "filename": fn, "version": v, "sha256": sha, "size": size} for k, fn, v, sha, size in s.execute(q)]

    def _still_visible(self, repo_id: int, sha256: str, name: str, version: str | None) -> bool:
        """Whether other live content of the repository (another package or version) holds the same bytes."""
        other = RepositoryContent.name != name
        if version is not None:
            other = or_(other, Artifact.version != version)
        q = (select(RepositoryContent.id).join(Artifact, Artifact.id == RepositoryContent.artifact_id)
             .where(RepositoryContent.repository_id == repo_id, RepositoryContent.version_removed.is_(None),
                    Artifact.sha256 == sha256, other).limit(1))
        with self.core.sessions() as s:
            return s.scalar(q) is not None

    def _refresh_views(self, repo: RepoInfo, name: str, files: list[dict[str, Any]], *, full: bool) -> None:
        """Snapshot views already rendered on this server: unlink the withheld files and re-render the package's
        pages (a release re-renders the whole view, which re-links). Views rendered later filter by themselves."""
        snapshots = getattr(self.core, "snapshots", None)
        if snapshots is None:
            return
        views = snapshots.rendered_views(repo.name)
        if not views:
            return
        if not full:
            for f in files:
                snapshots.unlink_from_views(repo.name, f["sha256"], f["filename"])
        for view_name in views:
            label = view_name.rpartition("/~")[2]
            try:
                view = snapshots.view(repo, label)
            except NotFound:
                continue
            try:
                self.core.publish(view, None if full else {name})
            except Exception:  # pragma: no cover - a view is re-rendered on its next use anyway
                log.exception("re-rendering view %s", view_name)

    def _unlink_sha(self, repo_name: str, sha256: str) -> None:
        d = self.core.pages.root / repo_name / "files" / sha256
        if not d.is_dir():
            return
        for entry in list(d.iterdir()):
            if not entry.name.startswith(".tmp-"):
                self.core.pages.unlink_file(repo_name, sha256, entry.name)

    def _emit(self, type_: str, repo: RepoInfo, name: str, version: str | None, files: list[dict[str, Any]],
              actor: str, detail: dict[str, Any]) -> None:
        emit_event(self.core, type_, repo.name, package=name, version=version,
                   files=[{k: f[k] for k in ("filename", "key", "sha256", "size")} for f in files],
                   actor=actor, detail=detail)

    @staticmethod
    def _out(q: Quarantine, repo_name: str, files: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": q.id, "repository": repo_name, "package": q.name, "version": q.version, "reason": q.reason,
                "source": q.source, "created_by": q.created_by, "created_at": q.created_at,
                "released_at": q.released_at, "released_by": q.released_by, "release_reason": q.release_reason,
                "files": files}


def _what(name: str, version: str | None) -> str:
    return f"{name} {version}" if version else name


def emit_event(core: "Core", type_: str, repository: str, **kw: Any) -> None:
    """Emit an event on the stream (``core.events``); never fails the caller."""
    events = getattr(core, "events", None)
    if events is None:  # pragma: no cover - a Core without the event stream
        return
    try:
        from .events import Event

        repo = core.repos.get(repository)
        kw["files"] = tuple(kw.get("files") or ())
        events.emit(Event(type_, repository, format=repo.format if repo else None, **kw))
    except Exception:  # pragma: no cover - an event must not undo the change it reports
        log.exception("could not emit %s", type_)
