"""Named snapshots: a name pinned to a repository version (served read-only at ``/<repo>/~<name>/``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, RepositoryContent, utcnow

__all__ = ["Snapshot"]


class Snapshot(Base):
    __tablename__ = "snapshots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))
    __table_args__ = (UniqueConstraint("repository_id", "name", name="uq_snapshots_repository_name"),)


# retention reads a repository's ended rows by the version that ended them
Index("ix_repository_content_removed", RepositoryContent.repository_id, RepositoryContent.version_removed)
