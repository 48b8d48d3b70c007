"""``bucket`` source: collects log files from an S3-compatible bucket (under a prefix)."""

from sluiceway.sources.bucket.source import BucketSource, BucketSourceConfig

__all__ = ["BucketSource", "BucketSourceConfig"]
