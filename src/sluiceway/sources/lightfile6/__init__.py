"""Lightfile6 Insights Gateway compatibility: its HTTP API as a receiver, its config format."""

from sluiceway.sources.lightfile6.config import Lightfile6SourceConfig
from sluiceway.sources.lightfile6.receiver import Lightfile6Receiver

__all__ = ["Lightfile6Receiver", "Lightfile6SourceConfig"]
