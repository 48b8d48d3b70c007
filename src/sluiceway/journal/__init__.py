"""The journal: the durability point between sources and sinks (see ``base``, ``embedded`` and
``jetstream``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .base import Cursor, Entry, Journal, Partition, PartitionStats
from .embedded import EmbeddedJournal

if TYPE_CHECKING:
    from sluiceway.config import Config

__all__ = ["Cursor", "EmbeddedJournal", "Entry", "Journal", "Partition", "PartitionStats", "build_journal"]


def build_journal(config: "Config", *, writer: bool, writer_name: str | None,
                  fsync_observer: Callable[[float], None] | None = None) -> Journal:
    """The journal ``config.journal`` describes (``engine``), not yet opened."""
    j = config.journal
    if j.engine == "jetstream":
        from sluiceway.runtime.instance import instance_id

        from .jetstream import JetStreamJournal

        n = j.jetstream
        return JetStreamJournal(
            n.url, instance=instance_id(config.data_dir), max_bytes=config.journal_max_bytes(),
            stream_prefix=n.stream_prefix, subject_prefix=n.subject_prefix, replicas=n.replicas, timeout=n.timeout,
            monitor_url=n.monitor_url,
            user=n.user, password=n.password.get_secret_value() if n.password else None,
            token=n.token.get_secret_value() if n.token else None, writer=writer, writer_name=writer_name,
        )
    return EmbeddedJournal(
        config.journal_dir, segment_bytes=j.segment_bytes, max_bytes=config.journal_max_bytes(), fsync=j.fsync,
        writer=writer, writer_name=writer_name, fsync_observer=fsync_observer, page_cache_bytes=j.page_cache_bytes,
        commit_delay=j.commit_delay, preallocate_bytes=j.preallocate_bytes, when_damaged=j.when_damaged,
    )
