"""The ``bucket`` source: every ``scan_interval`` list ``s3.bucket`` under ``s3.prefix`` (all
pages) and process new and changed objects (ETag). Everything else is ``sources.collect``."""

from __future__ import annotations

from typing import Literal

from sluiceway.config.blocks import S3Connection
from sluiceway.objectstore import ObjectStore, open_store
from sluiceway.sources.collect import CollectorConfig, CollectorSource


class BucketSourceConfig(CollectorConfig):
    type: Literal["bucket"] = "bucket"
    s3: S3Connection  # bucket, prefix, endpoint, credentials

    @property
    def location(self) -> str:
        return f"s3://{self.s3.bucket}/{self.s3.prefix}".rstrip("/")


class BucketSource(CollectorSource):
    config: BucketSourceConfig

    def objects(self) -> ObjectStore:
        return open_store(s3=self.config.s3)
