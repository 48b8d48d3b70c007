"""Edge artifacts (LDOs): metadata plus an optional file (a video clip), the Context Edge
data-ingestion API persisted and made durable. See docs/ldo.md."""

from sluiceway.sources.ldo.config import LdoSourceConfig
from sluiceway.sources.ldo.receiver import LdoReceiver

__all__ = ["LdoReceiver", "LdoSourceConfig"]
