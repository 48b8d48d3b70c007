"""Object-store sink: gzip JSON Lines objects in a local directory or an S3 bucket."""

from sluiceway.sinks.object_store.sink import (
    DEFAULT_KEY_TEMPLATE,
    PLACEHOLDERS,
    ObjectStoreSink,
    ObjectStoreSinkConfig,
    validate_key_template,
)

__all__ = [
    "DEFAULT_KEY_TEMPLATE",
    "PLACEHOLDERS",
    "ObjectStoreSink",
    "ObjectStoreSinkConfig",
    "validate_key_template",
]
