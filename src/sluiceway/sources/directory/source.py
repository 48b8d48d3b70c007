"""The ``directory`` source: every ``scan_interval`` walk ``path`` recursively and process new
and changed files (the version is inode-mtime-size). Everything else is ``sources.collect``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from sluiceway.objectstore import ObjectStore, open_store
from sluiceway.sources.collect import CollectorConfig, CollectorSource


class DirectorySourceConfig(CollectorConfig):
    type: Literal["directory"] = "directory"
    path: str  # the folder to collect from (keys are paths relative to it)

    @property
    def location(self) -> str:
        return str(Path(self.path).expanduser().resolve())


class DirectorySource(CollectorSource):
    config: DirectorySourceConfig

    def objects(self) -> ObjectStore:
        return open_store(local_path=self.config.location)
