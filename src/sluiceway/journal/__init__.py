"""The journal: the durability point between sources and sinks (see ``base`` and ``embedded``)."""

from .base import Cursor, Entry, Journal, Partition, PartitionStats
from .embedded import EmbeddedJournal

__all__ = ["Cursor", "EmbeddedJournal", "Entry", "Journal", "Partition", "PartitionStats"]
