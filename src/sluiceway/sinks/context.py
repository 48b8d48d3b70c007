"""What a sink may use besides its own config."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluiceway.store import Store


@dataclass
class SinkContext:
    data_dir: Path
    store: "Store"
    # Names of every ``attachments`` sink: a spooled blob is deleted once all of them that take
    # its record's stream have stored it.
    attachment_sinks: tuple[str, ...] = field(default_factory=tuple)
    # Their ``streams`` filters (name → streams; missing or empty: every stream).
    attachment_streams: dict[str, frozenset[str]] = field(default_factory=dict)

    def attachment_peers(self, stream: str) -> list[str]:
        """The attachments sinks that deliver the blobs of records of ``stream``."""
        return [n for n in self.attachment_sinks
                if not self.attachment_streams.get(n) or stream in self.attachment_streams[n]]
