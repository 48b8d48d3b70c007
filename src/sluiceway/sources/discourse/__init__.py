"""Discourse forum posts: ``DiscourseConnector``."""

from sluiceway.sources.discourse.connector import DiscourseConnector

__all__ = ["DiscourseConnector"]
