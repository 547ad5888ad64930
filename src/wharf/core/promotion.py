"""Copy, move and promote packages between repositories of one format, by reference.

No byte is uploaded again: the destination records the very artifacts (same blob, same metadata blob, same
sha256) the source holds, through the ingest path (policy gates apply with ``action="promotion"`` once the core
has them), then the format plugin publishes the destination's pages and download links. Every transfer leaves a
provenance entry (``promotions`` table); ``trail`` tells a package's whole story across repositories.

Operations:

* ``copy``: the files are added to the destination (event ``package.copied``).
* ``move``: copy, then the files the destination now holds are removed from the source (``package.moved``).
* ``promote``: a copy along the stage path (event ``package.promoted``). A repository's setting ``promote_to``
  names its next stage; ``promote`` without a destination goes there, and with one that differs it is refused.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import logging
import shlex
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Callable, Iterable

from sqlalchemy import and_, select
from sqlalchemy.orm import aliased

from ..db.models import Artifact, Blob, Repository, RepositoryContent, RepositoryVersion
from ..db.models_promotion import PromotionEntry
from ..storage import BlobRef
from .content import AddResult, LiveFile, NewArtifact
from .events import Event
from .errors import Conflict, FileExists, FileWasDeleted, InvalidInput, NotFound
from .interfaces import RepoInfo

if TYPE_CHECKING:  # pragma: no cover
    from .services import Core

__all__ = ["PromotionService", "PromotionConflict", "Query", "parse_query", "OPERATIONS", "EVENT_TYPES",
           "PromotionTag"]

log = logging.getLogger("wharf.promotion")

OPERATIONS = ("copy", "move", "promote")
EVENT_TYPES = {"copy": "package.copied", "move": "package.moved", "promote": "package.promoted"}


class PromotionTag(StrEnum):
    """Audit tags of this area (``source:subject:action``, like ``audit.AuditTag``)."""

    FILE_COPY = "repository:file:copy"
    FILE_MOVE = "repository:file:move"
    FILE_PROMOTE = "repository:file:promote"
    PACKAGE_RESYNC = "repository:package:resync"


_TAGS = {"copy": PromotionTag.FILE_COPY, "move": PromotionTag.FILE_MOVE, "promote": PromotionTag.FILE_PROMOTE}


class PromotionConflict(Conflict):
    """Files of the transfer already exist in the destination with other content (or were deleted there)."""

    reason = "promotion-conflict"

    def __init__(self, destination: str, conflicts: list[dict[str, Any]]):
        listed = "; ".join(f"{c['key']} ({c['reason']})" for c in conflicts[:20])
        more = f"; and {len(conflicts) - 20} more" if len(conflicts) > 20 else ""
        super().__init__(f"{len(conflicts)} file(s) conflict with repository '{destination}': {listed}{more}. "
                         "Nothing was copied; use --skip-existing (skip_existing) to copy the rest.")
        self.conflicts = conflicts


# -- queries: which packages a bulk operation takes ---------------------------------------------------------------
@dataclass(frozen=True)
class Query:
    """``name:GLOB`` and ``version:GLOB`` terms (a bare term is a name glob); terms of one field are alternatives
    (OR), different fields must all match (AND). Globs are shell-style (``*``, ``?``, ``[...]``), case-insensitive
    for names (matched against the normalized name)."""

    names: tuple[str, ...] = ()
    versions: tuple[str, ...] = ()

    def match_name(self, name: str) -> bool:
        return not self.names or any(fnmatch.fnmatchcase(name.lower(), g.lower()) for g in self.names)

    def match_version(self, version: str) -> bool:
        return not self.versions or any(fnmatch.fnmatchcase(version, g) for g in self.versions)


def parse_query(text: str | None) -> Query:
    if not text or not text.strip():
        return Query()
    names: list[str] = []
    versions: list[str] = []
    try:
        terms = shlex.split(text)
    except ValueError as exc:
        raise InvalidInput(f"cannot read the query {text!r}: {exc}")
    for term in terms:
        fieldname, sep, value = term.partition(":")
        if not sep:
            fieldname, value = "name", term
        if not value:
            raise InvalidInput(f"query term {term!r} has no value")
        if fieldname == "name":
            names.append(value)
        elif fieldname == "version":
            versions.append(value)
        else:
            raise InvalidInput(f"unknown query field {fieldname!r} in {term!r}: use name:GLOB and version:GLOB")
    return Query(tuple(names), tuple(versions))


# -- results --------------------------------------------------------------------------------------------------------
@dataclass
class Transfer:
    operation: str
    source: str
    destination: str
    name: str
    entries: list[int] = field(default_factory=list)  # promotion entry ids (one per package version)
    added: list[dict[str, Any]] = field(default_factory=list)
    identical: list[dict[str, Any]] = field(default_factory=list)  # already in the destination (same bytes)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # conflicting, left out (skip_existing)
    removed_from_source: list[str] = field(default_factory=list)
    decisions: list[Any] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)  # package attributes the format carried to the destination

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _file_info(f: LiveFile, **extra: Any) -> dict[str, Any]:
    return {"filename": f.filename, "key": f.key, "version": f.version, "sha256": f.sha256, "size": f.size, **extra}


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_json"):  # core.ingest.Decision
        value = value.to_json()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    elif hasattr(value, "as_dict"):
        value = value.as_dict()
    return json.loads(json.dumps(value, default=str))


class PromotionService:
    def __init__(self, core: "Core"):
        from .resync import ResyncService

        self.core = core
        self.resync = ResyncService(core)

    # -- the one place files enter the destination ------------------------------------------------------------
    def _ingest(self, dest: RepoInfo, new: NewArtifact, *, actor: str, remote_addr: str | None,
                operation: str) -> AddResult:
        """The one place files enter the destination: the core's ingest pipeline (policy gates with
        ``action="promotion"``, the record, ``package.created``, after-ingest follow-ups)."""
        return self.core.ingest(dest, new, actor=actor, remote_addr=remote_addr, action="promotion",
                                audit_tag=_TAGS[operation])

    # -- checks ---------------------------------------------------------------------------------------------------
    def resolve(self, source: str, destination: str | None, operation: str) -> tuple[RepoInfo, RepoInfo]:
        """The two repositories of a transfer, checked: same format, a hosted destination, a hosted or proxy source,
        and for ``promote`` the source's stage path."""
        if operation not in OPERATIONS:
            raise InvalidInput(f"unknown operation {operation!r}; one of {', '.join(OPERATIONS)}")
        src = self.core.repos.require(source)
        if operation == "promote":
            nxt = src.setting("promote_to")
            if destination is None:
                if not nxt:
                    raise InvalidInput(f"repository '{src.name}' has no next stage (setting 'promote_to'): "
                                       "name the destination")
                destination = nxt
            elif nxt and destination != nxt:
                raise InvalidInput(f"the stage path of '{src.name}' leads to '{nxt}', not '{destination}'")
        if destination is None:
            raise InvalidInput("name the destination repository")
        dest = self.core.repos.require(destination)
        if src.name == dest.name:
            raise InvalidInput("source and destination are the same repository")
        if src.format != dest.format:
            raise InvalidInput(f"'{src.name}' is a {src.format} repository and '{dest.name}' a {dest.format} "
                               "repository: packages move only between repositories of one format")
        if dest.kind != "hosted":
            raise InvalidInput(f"'{dest.name}' is a {dest.kind} repository: the destination must be a hosted "
                               "repository" + (" (a group's content is its members': copy into its default member)"
                                               if dest.kind == "group" else " (a proxy mirrors its upstream)"))
        if src.kind == "group":
            raise InvalidInput(f"'{src.name}' is a group: copy from the member that holds the package")
        return src, dest

    def _plan(self, dest: RepoInfo, files: list[LiveFile]) -> tuple[list[LiveFile], list[LiveFile], list[dict[str, Any]]]:
        """(to add, identical in the destination, conflicts) for files of the source."""
        keys = [f.key for f in files]
        q = (select(RepositoryContent.key, RepositoryContent.version_removed, Artifact.sha256)
             .join(Artifact, Artifact.id == RepositoryContent.artifact_id)
             .where(RepositoryContent.repository_id == dest.id, RepositoryContent.key.in_(keys)))
        live: dict[str, str] = {}
        ever: set[str] = set()
        with self.core.sessions() as s:
            for key, removed, sha in s.execute(q):
                ever.add(key)
                if removed is None:
                    live[key] = sha
        overwrite = bool(dest.setting("allow_overwrite", False))
        add, same, conflicts = [], [], []
        for f in files:
            there = live.get(f.key)
            if there == f.sha256:
                same.append(f)
            elif there is not None and not overwrite:
                conflicts.append(_file_info(f, reason=f"exists with sha256 {there}", existing_sha256=there))
            elif there is None and f.key in ever and not overwrite:
                conflicts.append(_file_info(f, reason="was deleted there; file names are not reused"))
            else:
                add.append(f)
        return add, same, conflicts

    def _artifact_rows(self, ids: Iterable[int]) -> dict[int, tuple[str, int | None]]:
        """artifact id -> (origin, size of its metadata blob)."""
        q = (select(Artifact.id, Artifact.origin, Blob.size).outerjoin(Blob, Blob.sha256 == Artifact.metadata_sha256)
             .where(Artifact.id.in_(list(ids))))
        with self.core.sessions() as s:
            return {i: (origin, size) for i, origin, size in s.execute(q)}

    @staticmethod
    def _new(fmt: str, f: LiveFile, origin: str, meta_size: int | None) -> NewArtifact:
        """The stored artifact as an ingest input: the same blob and metadata blob (no bytes move)."""
        meta_blob = BlobRef(f.metadata_sha256, meta_size or 0, {"sha256": f.metadata_sha256}) if f.metadata_sha256 else None
        return NewArtifact(format=fmt, name=f.name, version=f.version, filename=f.filename,
                           blob=BlobRef(f.sha256, f.size, {"sha256": f.sha256}), kind=f.kind, meta=dict(f.meta),
                           metadata_blob=meta_blob, origin=origin, key=f.key)

    # -- one package -------------------------------------------------------------------------------------------
    def select(self, repo: RepoInfo, package: str, version: str | None = None) -> tuple[str, list[LiveFile]]:
        name = self.core.plugin(repo).normalize_name(package)
        files = [f for f in self.core.content.files(repo.id, name) if version is None or f.version == version]
        if not files:
            what = f"{package} {version}" if version else package
            raise NotFound(f"no files of {what} in repository '{repo.name}'")
        return name, files

    def transfer(self, source: str, destination: str | None, package: str, version: str | None = None, *,
                 operation: str = "copy", actor: str, remote_addr: str | None = None,
                 skip_existing: bool = False) -> Transfer:
        src, dest = self.resolve(source, destination, operation)
        name, files = self.select(src, package, version)
        add, same, conflicts = self._plan(dest, files)
        if conflicts and not skip_existing:
            raise PromotionConflict(dest.name, conflicts)
        out = Transfer(operation, src.name, dest.name, name)
        out.identical = [_file_info(f) for f in same]
        out.skipped = conflicts
        rows = self._artifact_rows(f.artifact_id for f in add)
        added: list[tuple[LiveFile, AddResult]] = []
        failure: BaseException | None = None
        for f in add:
            origin, meta_size = rows.get(f.artifact_id, ("upload", None))
            try:
                result = self._ingest(dest, self._new(src.format, f, origin, meta_size), actor=actor,
                                      remote_addr=remote_addr, operation=operation)
            except (FileExists, FileWasDeleted) as exc:  # a concurrent writer took the key meanwhile
                if not skip_existing:
                    failure = PromotionConflict(dest.name, [_file_info(f, reason=exc.message)])
                    break
                out.skipped.append(_file_info(f, reason=exc.message))
                continue
            except BaseException as exc:  # e.g. a policy gate refused: what was added stays recorded and published
                failure = exc
                break
            added.append((f, result))
            out.decisions.extend(_jsonable(d) for d in getattr(result, "decisions", None) or ())
        out.added = [_file_info(f) for f, _r in added]
        if added:
            self._publish(dest, name, [r.file for _f, r in added])
        arrived = {f.key for f, _r in added} | {f.key for f in same}
        try:
            out.state = self._carry_state(src, dest, name, _whole_versions(files, arrived), actor, remote_addr)
        except Exception as exc:  # the files are in the destination: their provenance is still recorded below
            log.exception("could not carry the package's state to the destination",
                          extra={"fields": {"package": name, "from": src.name, "to": dest.name}})
            failure = failure or exc
        moved_keys = [f.key for f, _r in added] + [f.key for f in same]
        if operation == "move" and failure is None and moved_keys:
            removed = self.core.remove_files(src, keys=moved_keys, actor=actor, remote_addr=remote_addr)
            out.removed_from_source = [f.key for f in removed]
        if added or out.removed_from_source:  # a repeated copy (all identical) changes nothing: no entry, no event
            self._record(out, src, dest, files, added, same, actor, remote_addr, complete=failure is None)
        if failure is not None:
            raise failure
        return out

    def _publish(self, dest: RepoInfo, name: str, files: list[LiveFile]) -> None:
        """Make the new files downloadable (the plugin's ``link_files`` if it has one: publishing some names
        does not link files for every format) and re-render the package's pages."""
        plugin = self.core.plugin(dest)
        link = getattr(plugin, "link_files", None)
        if link is not None:
            link(self.core, dest, files)
        self.core.publish(dest, {name})

    def _carry_state(self, src: RepoInfo, dest: RepoInfo, name: str, versions: list[str], actor: str,
                     remote_addr: str | None) -> dict[str, Any]:
        """The format's package state that travels with these versions (its ``promote_state``, if it has one)."""
        carry = getattr(self.core.plugin(dest), "promote_state", None)
        if carry is None or not versions:
            return {}
        return carry(self.core, src, dest, name, versions, actor=actor, remote_addr=remote_addr)  # type: ignore[no-any-return]

    def _record(self, out: Transfer, src: RepoInfo, dest: RepoInfo, files: list[LiveFile],
                added: list[tuple[LiveFile, AddResult]], same: list[LiveFile], actor: str, remote_addr: str | None,
                *, complete: bool) -> None:
        status = {f.key: "added" for f, _r in added} | {f.key: "identical" for f in same}
        skipped = {c["key"] for c in out.skipped}
        by_version: dict[str, list[LiveFile]] = {}
        for f in files:
            by_version.setdefault(f.version, []).append(f)
        src_version = self.core.db_version(src.id)
        dest_version = self.core.db_version(dest.id)
        entries = []
        with self.core.sessions.begin() as s:
            for version, vfiles in by_version.items():
                listed = [_file_info(f, status=status.get(f.key, "skipped" if f.key in skipped else "not-copied"))
                          for f in vfiles]
                moved = out.operation == "move" and any(x["status"] == "identical" for x in listed)
                if not any(x["status"] == "added" for x in listed) and not moved:
                    continue
                entry = PromotionEntry(actor=actor, remote_addr=remote_addr, operation=out.operation, format=src.format,
                                       name=out.name, version=version, source=src.name, destination=dest.name,
                                       source_version=src_version, destination_version=dest_version, files=listed,
                                       decisions=out.decisions if complete else out.decisions + [{"incomplete": True}])
                s.add(entry)
                entries.append((entry, listed))
            s.flush()
            out.entries = [e.id for e, _l in entries]
        for entry, listed in entries:
            self._emit(out, src, dest, entry, listed, actor)

    def _emit(self, out: Transfer, src: RepoInfo, dest: RepoInfo, entry: PromotionEntry, listed: list[dict[str, Any]],
              actor: str) -> None:
        files = tuple({k: f[k] for k in ("filename", "key", "sha256", "size")} for f in listed
                      if f["status"] in ("added", "identical"))
        try:
            self.core.events.emit(Event(EVENT_TYPES[out.operation], dest.name, package=out.name, version=entry.version,
                                        files=files, actor=actor, format=dest.format,
                                        detail={"operation": out.operation, "from": src.name, "to": dest.name,
                                                "promotion_id": entry.id, "decisions": entry.decisions,
                                                "state": out.state}))
        except Exception:  # an event is a notification: the transfer itself is recorded
            log.exception("could not emit the promotion event", extra={"fields": {"promotion": entry.id}})

    # -- many packages -----------------------------------------------------------------------------------------
    def plan(self, source: str, query: str | None) -> list[dict[str, Any]]:
        """The package versions of a repository a bulk operation would take: ``[{"name", "version", "files"}]``."""
        src = self.core.repos.require(source)
        q = parse_query(query)
        out: dict[tuple[str, str], int] = {}
        for f in self.core.content.files(src.id, meta_keys=()):
            if q.match_name(f.name) and q.match_version(f.version):
                out[(f.name, f.version)] = out.get((f.name, f.version), 0) + 1
        return [{"name": n, "version": v, "files": c} for (n, v), c in sorted(out.items())]

    def bulk(self, source: str, destination: str | None, *, query: str | None = None, operation: str = "copy",
             actor: str, remote_addr: str | None = None, skip_existing: bool = False,
             progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Transfer every package version matching ``query`` (None: the whole repository). A failing item does
        not stop the others; the summary lists copied, skipped and failed files/items."""
        src, dest = self.resolve(source, destination, operation)
        items = self.plan(src.name, query)
        summary: dict[str, Any] = {"operation": operation, "source": src.name, "destination": dest.name,
                                   "query": query, "items": len(items), "copied": [], "identical": [], "skipped": [],
                                   "failed": [], "entries": []}
        for item in items:
            try:
                t = self.transfer(src.name, dest.name, item["name"], item["version"], operation=operation,
                                  actor=actor, remote_addr=remote_addr, skip_existing=skip_existing)
            except Exception as exc:
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                summary["failed"].append({"name": item["name"], "version": item["version"], "error": message,
                                          "status": getattr(exc, "status", 500)})
            else:
                summary["copied"].extend(t.added)
                summary["identical"].extend(t.identical)
                summary["skipped"].extend(t.skipped)
                summary["entries"].extend(t.entries)
            if progress is not None:
                progress(item)
        return summary

    # -- provenance -----------------------------------------------------------------------------------------------
    def entries(self, *, repository: str | None = None, name: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        q = select(PromotionEntry).order_by(PromotionEntry.id.desc()).limit(min(max(limit, 1), 1000))
        if repository:
            q = q.where((PromotionEntry.source == repository) | (PromotionEntry.destination == repository))
        if name:
            q = q.where(PromotionEntry.name == name)
        with self.core.sessions() as s:
            return [_entry_dict(e) for e in s.scalars(q)]

    def trail(self, fmt: str, name: str, *, visible: Callable[[str], bool]) -> dict[str, Any]:
        """Every arrival (upload, proxy fetch), copy, move, promotion and removal of a package's files, across the
        repositories the caller may read, oldest first."""
        added_v, removed_v = aliased(RepositoryVersion), aliased(RepositoryVersion)
        q = (select(RepositoryContent.key, RepositoryContent.version_added, RepositoryContent.version_removed,
                    RepositoryContent.added_at, Artifact.version, Artifact.filename, Artifact.sha256, Artifact.size,
                    Artifact.origin, Repository.name, Repository.kind, added_v.actor, added_v.created_at,
                    removed_v.actor, removed_v.created_at)
             .join(Artifact, Artifact.id == RepositoryContent.artifact_id)
             .join(Repository, Repository.id == RepositoryContent.repository_id)
             .outerjoin(added_v, and_(added_v.repository_id == RepositoryContent.repository_id,
                                      added_v.number == RepositoryContent.version_added))
             .outerjoin(removed_v, and_(removed_v.repository_id == RepositoryContent.repository_id,
                                        removed_v.number == RepositoryContent.version_removed))
             .where(Artifact.format == fmt, Artifact.name == name)
             .order_by(RepositoryContent.id))
        with self.core.sessions() as s:
            rows = s.execute(q).all()
            promotions = list(s.scalars(select(PromotionEntry).where(PromotionEntry.format == fmt,
                                                                     PromotionEntry.name == name)
                                        .order_by(PromotionEntry.id)))
        arrived_by_transfer = {(e.destination, f["sha256"]) for e in promotions for f in e.files
                               if f.get("status") == "added"}
        moved_away = {(e.source, f["sha256"]) for e in promotions if e.operation == "move" for f in e.files
                      if f.get("status") in ("added", "identical")}
        # one membership of a file in a repository may be several rows (a yank ends a row and starts another)
        spans: dict[tuple[str, str, str], list[Any]] = {}
        for r in rows:
            spans.setdefault((r[9], r[0], r[6]), []).append(r)
        events: list[dict[str, Any]] = []
        groups: dict[tuple[str, str, str, int], dict[str, Any]] = {}
        live: set[str] = set()
        for (repo_name, _key, sha), span in spans.items():
            if not visible(repo_name):
                continue
            first, last = span[0], span[-1]
            f = {"filename": first[5], "sha256": sha, "size": first[7]}
            if (repo_name, sha) not in arrived_by_transfer:
                kind = "upload" if first[10] == "hosted" or first[8] == "upload" else "proxy-fetch"
                g = groups.setdefault((kind, repo_name, first[4], first[1]), {
                    "event": kind, "at": first[12] or first[3], "repository": repo_name, "version": first[4],
                    "actor": first[11], "files": [], **({"origin": first[8]} if kind == "proxy-fetch" else {})})
                g["files"].append(f)
            if last[2] is None:
                live.add(repo_name)
            elif (repo_name, sha) not in moved_away:
                events.append({"event": "removal", "at": last[14], "repository": repo_name, "version": first[4],
                               "actor": last[13], "files": [f]})
        events.extend(groups.values())
        for e in promotions:
            if not visible(e.destination):
                continue
            d = _entry_dict(e)
            d["event"] = e.operation
            if not visible(e.source):
                d["source"] = None  # a repository the caller cannot read
            d["repository"] = e.destination
            events.append(d)
        events.sort(key=lambda ev: (str(ev.get("at") or ""), ev["event"] != "upload"))
        return {"format": fmt, "name": name, "live_in": sorted(live), "events": events}


def _whole_versions(files: list[LiveFile], arrived: set[str]) -> list[str]:
    """The versions every file of which is in the destination now (added or already there)."""
    out: dict[str, bool] = {}
    for f in files:
        out[f.version] = out.get(f.version, True) and f.key in arrived
    return [v for v, whole in out.items() if whole]


def _entry_dict(e: PromotionEntry) -> dict[str, Any]:
    return {"id": e.id, "at": e.at, "actor": e.actor, "remote_addr": e.remote_addr, "operation": e.operation,
            "format": e.format, "name": e.name, "version": e.version, "source": e.source,
            "destination": e.destination, "source_version": e.source_version,
            "destination_version": e.destination_version, "files": e.files, "decisions": e.decisions}
