"""``directory`` source: collects log files from a local folder, recursively."""

from sluiceway.sources.directory.source import DirectorySource, DirectorySourceConfig

__all__ = ["DirectorySource", "DirectorySourceConfig"]
