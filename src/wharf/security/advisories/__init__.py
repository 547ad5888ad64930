"""Vulnerability advisories: OSV records imported into the database, matched against stored package versions."""

from .service import ANALYZER, AdvisoryService, ImportReport, Match

__all__ = ["AdvisoryService", "ImportReport", "Match", "ANALYZER"]
