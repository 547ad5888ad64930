"""The composition root: builds every service once per process and wires them together."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from pathlib import Path
from typing import Any, Collection, Mapping, cast

from sqlalchemy import select

from .. import __version__
from ..config import Settings
from ..db import make_engine, make_sessionmaker, upgrade
from ..db.models import Repository
from ..security.advisories import AdvisoryService
from ..security.vetting import VettingService
from ..storage import make_blob_store
from .audit import AuditLog
from .auth import TokenService
from .content import AddResult, ContentService, NewArtifact
from .events import Event, EventBus, file_entries
from .ingest import Admission, AfterIngest, Candidate, Decision, Gate
from .entitlements import EntitlementService
from .webhooks import WebhookService
from .interfaces import FormatPlugin, RepoInfo
from .pages import PageStore
from .proxying import PendingRecords
from .promotion import PromotionService
from .policy import PolicyService
from .repositories import RepositoryService
from .signal import ChangeSignal
from .singleflight import SingleFlight
from .snapshots import SnapshotService
from .upstream import Upstream

__all__ = ["Core"]

log = logging.getLogger("wharf.core")


class Core:
    def __init__(self, settings: Settings, *, plugins: Mapping[str, FormatPlugin] | None = None, migrate: bool = False):
        from ..formats import load_plugins

        self.settings = settings
        # absolute: download links are symlinks to blobs and must not depend on the working directory
        data = Path(settings.data).resolve()
        data.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(settings.db_url)
        if migrate:
            upgrade(self.engine)
        self.sessions = make_sessionmaker(self.engine)
        self.blobs = make_blob_store(settings.storage_backend, data)
        self.signal = ChangeSignal(data / "state" / "epoch")
        self.plugins: Mapping[str, FormatPlugin] = plugins or cast(Mapping[str, FormatPlugin], load_plugins())
        self.tokens = TokenService(self.sessions, cache_ttl=settings.token_cache_ttl)
        self.repos = RepositoryService(self.sessions, self.plugins, self.signal)
        self.content = ContentService(self.sessions)
        self.audit = AuditLog(self.sessions)
        self.pages = PageStore(data / "pages")
        self.flights = SingleFlight(data / "state" / "locks")
        self.pending_records = PendingRecords()  # proxied files sent but not yet recorded (snapshots wait for them)
        self._upstreams: dict[str, tuple[Any, str, Upstream]] = {}
        self._epoch = self.signal.current()
        # background work, the event stream and the ingest pipeline's extension points
        from ..security.scan import ScanService
        from ..tasks import TaskQueue

        self.tasks = TaskQueue(self.sessions)
        self.events = EventBus(self.sessions, self.tasks)
        self.gates: list[Gate] = []
        self.admissions: list[Admission] = []
        self.after_ingest: list[AfterIngest] = []
        self.scans = ScanService(self)
        # -- feature services --
        self.snapshots = SnapshotService(self)
        self.promotions = PromotionService(self)
        self.policy = PolicyService(self)  # quarantine (core.policy.quarantine) and policies
        self.entitlements = EntitlementService(self)
        self.webhooks = WebhookService(self)
        self.advisories = AdvisoryService(self)
        self.vetting = VettingService(self)  # licence, malware and typosquatting analyzers (security/vetting.py)

    # -- per request ---------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Drop per-process caches when another process changed settings or tokens."""
        epoch = self.signal.current()
        if epoch != self._epoch:
            self._epoch = epoch
            self.repos.invalidate()
            self.tokens.clear_cache()

    def plugin(self, repo: RepoInfo) -> FormatPlugin:
        return self.plugins[repo.format]

    def upstream(self, repo: RepoInfo) -> Upstream:
        """The pooled upstream client of a proxy repository (rebuilt when its settings change)."""
        cfg = repo.config["upstream"]
        hit = self._upstreams.get(repo.name)
        if hit is not None and hit[0] is cfg:  # the same settings object: no need to compare
            return hit[2]
        key = json.dumps(cfg, sort_keys=True)
        if hit is None or hit[1] != key:
            hit = (cfg, key, Upstream(cfg, user_agent=f"wharf/{__version__}"))
        else:
            hit = (cfg, key, hit[2])
        self._upstreams[repo.name] = hit
        return hit[2]

    def members(self, group: RepoInfo) -> list[RepoInfo]:
        return self.repos.flatten(group)

    # -- orchestration across services ---------------------------------------------------------------------
    def ingest(self, repo: RepoInfo, new: NewArtifact, *, actor: str, remote_addr: str | None = None,
               allow_overwrite: bool = False, action: str = "upload", audit_tag: Any = None) -> AddResult:
        """Record a validated file: gates (may refuse with PolicyDenied; nothing is kept), then the record with its
        ``package.created`` event (one transaction), then for a new file the follow-ups of the gates' decisions.
        Every upload, proxy fetch and promotion comes through here."""
        decisions: list[Decision] = []
        for gate in self.gates:
            decisions.extend(gate(self, repo, new, action, actor))
        kw: dict[str, Any] = {} if audit_tag is None else {"audit_tag": audit_tag}
        detail = {"action": action, "origin": new.origin, "decisions": [d.to_json() for d in decisions]}

        def created(session: Any, result: AddResult) -> None:  # the event commits with the file
            self.events.emit(Event("package.created", repo.name, new.name, new.version, file_entries([result.file]),
                                   actor=actor, format=repo.format, detail=detail), session=session)

        result = self.content.add(repo, new, actor=actor, remote_addr=remote_addr, allow_overwrite=allow_overwrite,
                                  on_record=created, **kw)
        if not result.created:
            return result
        self.tasks.wakeup.set()
        result = dataclasses.replace(result, decisions=tuple(decisions))
        for hook in self.after_ingest:
            hook(self, repo, result, decisions, action)
        return result

    def admit(self, repo: RepoInfo, candidate: Candidate, *, actor: str, action: str = "proxy_fetch") -> bool:
        """Before a proxy fetches a file: the admissions may refuse it (raise; nothing is fetched). True when one of
        them needs the gates' verdict on the bytes before any reaches the client."""
        hold = False
        for admission in self.admissions:
            hold = admission(self, repo, candidate, action, actor) or hold
        return hold

    def create_repository(self, **kw: Any) -> RepoInfo:
        info = self.repos.create(**kw)
        self.publish(info, None)
        return info

    def delete_repository(self, name: str, *, actor: str, remote_addr: str | None = None) -> None:
        self.repos.delete(name, actor=actor, remote_addr=remote_addr)
        self.pages.drop_repository(name)

    def remove_files(self, repo: RepoInfo, *, actor: str, remote_addr: str | None = None, **which: Any) -> list[Any]:
        """Delete files (by ``keys``, or ``name``[+``version``]) in a new version, unpublish them, re-render."""
        removed = self.content.remove(repo, actor=actor, remote_addr=remote_addr, **which)
        by_release: dict[tuple[str, str], list[Any]] = {}
        for f in removed:
            by_release.setdefault((f.name, f.version), []).append(f)
        for (name, version), files in by_release.items():
            self.events.emit(Event("package.deleted", repo.name, name, version, file_entries(files), actor=actor,
                                   format=repo.format))
        for f in removed:
            # the link is shared by every live key with the same bytes and file name (e.g. one file at two paths)
            if not self.content.is_live(repo.id, f.sha256, f.filename):
                self.pages.unlink_file(repo.name, f.sha256, f.filename)
        self.publish(repo, {f.name for f in removed})
        return removed

    def set_yanked(self, repo: RepoInfo, *, name: str, **kw: Any) -> list[str]:
        keys = self.content.set_yanked(repo, name=name, **kw)
        self.publish(repo, {name})
        return keys

    def set_attributes(self, repo: RepoInfo, name: str, changes: dict[str, Any], *, actor: str,
                       remote_addr: str | None = None) -> int | None:
        """Set/delete package attributes (None deletes) in a new version and re-render the package; None: no change."""
        version = self.content.set_attributes(repo, name, changes, actor=actor, remote_addr=remote_addr)
        if version is not None:
            self.publish(repo, {name})
        return version

    def publish(self, repo: RepoInfo, names: Collection[str] | None) -> None:
        """Re-render what changed; records the repository version the published tree reflects."""
        # the version is read before the plugin queries content, so a page never claims more than it shows
        fresh = dataclasses.replace(repo, version=self.db_version(repo))
        self.plugin(repo).publish(self, fresh, names)
        self._write_marker(repo.name, fresh.version)

    def mark_published(self, name: str, version: int) -> None:
        """Record that the published tree reflects ``version`` (for plugins that update pages themselves)."""
        self._write_marker(name, version)

    def db_version(self, repo: int | RepoInfo) -> int:
        """The repository's current version in the database (pages rendered now reflect at least this); a view's
        pinned version."""
        if isinstance(repo, RepoInfo):
            return repo.pinned if repo.pinned is not None else self._db_version(repo.id)
        return self._db_version(repo)

    def _db_version(self, repo_id: int) -> int:
        with self.sessions() as s:
            return int(s.scalar(select(Repository.version).where(Repository.id == repo_id)) or 0)

    def _marker(self, name: str) -> Path:
        return self.pages.root / name / ".published"

    def _write_marker(self, name: str, version: int) -> None:
        path = self._marker(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.pages._lock(name):  # concurrent publishes (threads, workers) must not move the marker back
            try:
                current = int(path.read_text())
            except (FileNotFoundError, ValueError):
                current = -1
            if version > current:
                tmp = path.with_suffix(f".{os.getpid()}")
                tmp.write_text(str(version))
                os.replace(tmp, path)

    def republish_stale(self, *, force: bool = False) -> list[str]:
        """After a crash (or with force) re-render every repository whose published tree lags its database version."""
        done = []
        for repo in self.repos.list():
            try:
                current = int(self._marker(repo.name).read_text())
            except (FileNotFoundError, ValueError):
                current = -1
            if force or current < repo.version:
                self.publish(repo, None)
                done.append(repo.name)
        return done

    # -- first start ---------------------------------------------------------------------------------------
    def bootstrap(self) -> str | None:
        """On an empty database, create the admin token (from WHARF_BOOTSTRAP_TOKEN if set). Returns it if created."""
        if self.tokens.any():
            return None
        secret = self.settings.bootstrap_token
        _tok, secret = self.tokens.create(name="admin", scopes=[{"repository": "*", "actions": ["admin"]}],
                                          expires_at=None, creator=None, secret=secret)
        path = Path(self.settings.data) / "admin-token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secret + "\n")
        os.chmod(path, 0o600)
        return secret

    def close(self) -> None:
        self.entitlements.close()  # pending download counts
        self.webhooks.close()
        self.engine.dispose()

