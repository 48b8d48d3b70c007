"""Shared collector logic: scan a store (bucket or directory) for files, keep a state row
per file, decode them streamingly into journal records. ``bucket`` and ``directory`` are
thin sources over it (the loop, ``collector``, is imported only where it runs: the
delivering process, never the HTTP workers); ``sluice files`` (``cli``) inspects and retries the states."""

from sluiceway.sources.collect.config import CollectorConfig
from sluiceway.sources.collect.source import CollectorSource

__all__ = ["CollectorConfig", "CollectorSource"]
