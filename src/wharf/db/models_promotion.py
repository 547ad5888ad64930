"""Provenance of promotions (copy, move, promote between repositories) and proxy resync jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, utcnow

__all__ = ["PromotionEntry", "ResyncJob"]


class PromotionEntry(Base):
    """One package version copied, moved or promoted from one repository to another: who, when, from where to
    where, the files (with digests) and the policy decisions that allowed it. Repository names are kept as text so
    the trail survives the deletion of a repository."""

    __tablename__ = "promotions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str | None] = mapped_column(String(200))
    remote_addr: Mapped[str | None] = mapped_column(String(100))
    operation: Mapped[str] = mapped_column(String(16))  # copy | move | promote
    format: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(255))  # normalized package name
    version: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(100))
    destination: Mapped[str] = mapped_column(String(100))
    source_version: Mapped[int | None] = mapped_column(Integer)  # repository versions before / after
    destination_version: Mapped[int | None] = mapped_column(Integer)
    # [{"filename", "key", "sha256", "size", "status": "added" | "identical" | "skipped"}]
    files: Mapped[list[Any]] = mapped_column(default=list)
    # policy decisions returned by the ingest gates: [{"id"?, "policy"?, "action", "message"?}]
    decisions: Mapped[list[Any]] = mapped_column(default=list)
    __table_args__ = (Index("ix_promotions_package", "format", "name"),)


class ResyncJob(Base):
    """A re-fetch and re-verification of a proxied package's cached files from the upstream (retried with
    exponential backoff up to ``max_attempts``)."""

    __tablename__ = "resync_jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | retrying | ok | mismatch | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    backoff: Mapped[float] = mapped_column(Float, default=2.0)
    next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    # {"files": [{"filename", "sha256", "status": "verified" | "restored" | "mismatch" | "missing-upstream", ...}]}
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
