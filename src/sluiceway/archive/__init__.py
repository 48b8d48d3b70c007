"""Archiving old rows to the object store: export, verify, then delete."""

from sluiceway.archive.archiver import TABLES, Archiver, ArchiveSummary

__all__ = ["TABLES", "ArchiveSummary", "Archiver"]
