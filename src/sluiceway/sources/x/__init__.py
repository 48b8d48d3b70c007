"""X (Twitter) API v2 recent search: ``XConnector``."""

from sluiceway.sources.x.connector import XConnector

__all__ = ["XConnector"]
