"""SQLAlchemy models: the source of truth. Everything served is derived from these rows."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "Blob",
    "Repository",
    "RepositoryVersion",
    "Artifact",
    "RepositoryContent",
    "PackageAttribute",
    "Token",
    "AuditEvent",
    "Task",
    "Event",
    "ScanResult",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Blob(Base):
    """A content-addressed byte string in the blob store."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Repository(Base):
    __tablename__ = "repositories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    format: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # hosted | proxy | group
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # number of the latest RepositoryVersion; every change makes a new one
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RepositoryVersion(Base):
    """An immutable numbered state of a repository (contents are RepositoryContent rows alive at that number)."""

    __tablename__ = "repository_versions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(200))
    summary: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (UniqueConstraint("repository_id", "number"),)


class Artifact(Base):
    """A file of some format (a wheel, a tarball, ...). Immutable; shared by every repository that holds it."""

    __tablename__ = "artifacts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    format: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))  # normalized package name
    version: Mapped[str] = mapped_column(String(255))
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"))
    size: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str | None] = mapped_column(String(32))  # format-specific file type (sdist, bdist_wheel, ...)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    metadata_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))  # e.g. PEP 658 METADATA
    origin: Mapped[str] = mapped_column(String(500), default="upload")
    uploaded_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # the same bytes under two names (e.g. one jar under two Maven coordinates) are two artifacts
    __table_args__ = (UniqueConstraint("format", "name", "version", "filename", "sha256", name="uq_artifacts_identity"),)


class RepositoryContent(Base):
    """Membership of an artifact in a repository between two versions: alive in versions
    ``version_added <= v < version_removed`` (``version_removed`` NULL: still there)."""

    __tablename__ = "repository_content"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    artifact_id: Mapped[int] = mapped_column(ForeignKey("artifacts.id"))
    key: Mapped[str] = mapped_column(String(500))  # the format's repo key (Python: filename)
    name: Mapped[str] = mapped_column(String(255))  # normalized package name (denormalized for index queries)
    version_added: Mapped[int] = mapped_column(Integer)
    version_removed: Mapped[int | None] = mapped_column(Integer)
    yanked: Mapped[bool] = mapped_column(Boolean, default=False)
    yanked_reason: Mapped[str | None] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (
        Index(
            "uq_repository_content_live_key",
            "repository_id",
            "key",
            unique=True,
            sqlite_where=text("version_removed IS NULL"),
            postgresql_where=text("version_removed IS NULL"),
        ),
        Index("ix_repository_content_name", "repository_id", "name", "version_removed"),
        Index("ix_repository_content_key", "repository_id", "key"),
        Index("ix_repository_content_artifact", "artifact_id"),
        # what a repository version added (the typosquat check reads only the versions it has not seen: without this,
        # each scan walked all of a 100,000-name repository's rows, ~100 ms)
        Index("ix_repository_content_added", "repository_id", "version_added"),
    )


class PackageAttribute(Base):
    """Mutable per-package state that is not a file (npm dist-tags, deprecations, crate owners, ...), versioned
    with the repository like content: alive in versions ``version_added <= v < version_removed``."""

    __tablename__ = "package_attributes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))  # normalized package name
    attr: Mapped[str] = mapped_column(String(200))
    value: Mapped[Any] = mapped_column(JSON, nullable=True)
    version_added: Mapped[int] = mapped_column(Integer)
    version_removed: Mapped[int | None] = mapped_column(Integer)
    changed_by: Mapped[str | None] = mapped_column(String(200))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    __table_args__ = (
        Index(
            "uq_package_attributes_live",
            "repository_id",
            "name",
            "attr",
            unique=True,
            sqlite_where=text("version_removed IS NULL"),
            postgresql_where=text("version_removed IS NULL"),
        ),
        Index("ix_package_attributes_name", "repository_id", "name", "version_removed"),
    )


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the secret
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, for people to recognise a token
    # [{"repository": "*" | name, "actions": ["read", "write", "admin"]}]
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)  # source:subject:action
    repository: Mapped[str | None] = mapped_column(String(100), index=True)
    subject: Mapped[str | None] = mapped_column(String(500))
    remote_addr: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Task(Base):
    """Durable background work: run by a worker thread in every server process (or ``wharf worker``)."""

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="queued")  # queued | running | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    backoff: Mapped[float] = mapped_column(Float, default=2.0)
    run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dedupe_key: Mapped[str | None] = mapped_column(String(300))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # 0: run by any worker; 1: CPU-heavy work a server leaves to its niced task helper process (tasks/helper.py)
    lane: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    __table_args__ = (Index("ix_tasks_due", "state", "run_at"), Index("ix_tasks_dedupe", "dedupe_key"),
                      Index("ix_tasks_lane_due", "state", "lane", "run_at"))


class Event(Base):
    """The event stream: what happened to packages (created, promoted, quarantined, scanned, ...)."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    repository: Mapped[str | None] = mapped_column(String(100), index=True)
    format: Mapped[str | None] = mapped_column(String(32))
    package: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(255))
    actor: Mapped[str | None] = mapped_column(String(200))
    files: Mapped[list[Any]] = mapped_column(default=list)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ScanResult(Base):
    """The latest result of one analyzer for one package version in one repository."""

    __tablename__ = "scan_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str] = mapped_column(String(255))
    analyzer: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # pass | warn | fail | error
    summary: Mapped[dict[str, Any]] = mapped_column(default=dict)
    findings: Mapped[list[Any]] = mapped_column(default=list)
    digest: Mapped[str] = mapped_column(String(64))  # of status+summary+findings: a change fires scan.completed
    scanned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # the sha256 of every file the analyzer looked at (a file added to the version later is not covered until the
    # next scan); None for results stored before coverage was recorded
    files: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    __table_args__ = (UniqueConstraint("repository_id", "name", "version", "analyzer", name="uq_scan_results_identity"),)
