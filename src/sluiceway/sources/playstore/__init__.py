"""Google Play reviews (Android Publisher v3): ``PlayStoreConnector``."""

from sluiceway.sources.playstore.connector import PlayStoreConnector

__all__ = ["PlayStoreConnector"]
