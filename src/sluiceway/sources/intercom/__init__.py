"""Intercom conversations: ``IntercomConnector`` (pull) and ``webhook`` (push notifications)."""

from sluiceway.sources.intercom.connector import IntercomConnector

__all__ = ["IntercomConnector"]
