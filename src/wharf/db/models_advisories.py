"""Tables of the advisories feature: OSV records and the per-package index used to match them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base, utcnow

__all__ = ["Advisory", "AdvisoryPackage", "AdvisorySource"]


class Advisory(Base):
    """One OSV record as imported (``record`` is its JSON text, kept verbatim)."""

    __tablename__ = "advisories"
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    modified: Mapped[str] = mapped_column(String(64))  # RFC 3339 text as in the record: compared for equality only
    withdrawn: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)  # highest CVSS base score of the record
    level: Mapped[str | None] = mapped_column(String(16))  # none | low | medium | high | critical
    record: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AdvisoryPackage(Base):
    """Index: (OSV ecosystem, normalized package name) -> advisory. Withdrawn records have no rows."""

    __tablename__ = "advisory_packages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ecosystem: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(500))
    advisory_id: Mapped[str] = mapped_column(String(200))
    __table_args__ = (
        Index("ix_advisory_packages_name", "ecosystem", "name"),
        Index("ix_advisory_packages_advisory", "advisory_id"),
    )


class AdvisorySource(Base):
    """State of a scheduled import source (a URL): its validators, so an unchanged dump is not fetched again."""

    __tablename__ = "advisory_sources"
    url: Mapped[str] = mapped_column(String(2000), primary_key=True)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    imported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ok: Mapped[bool] = mapped_column(Boolean, default=True)
    message: Mapped[str | None] = mapped_column(Text)
