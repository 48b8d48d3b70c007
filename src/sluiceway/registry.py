"""Name → class for sinks and sources. Imports are lazy: a heavy client is loaded only when
a configuration uses it. Unknown names produce an error listing the valid ones.

Adding a sink or a source: one line in ``SINKS`` / ``SOURCES`` pointing at its module,
config class and implementation class.
"""

from __future__ import annotations

import importlib
from typing import Any

from sluiceway.errors import ConfigError

# type name → (module, config class, implementation class)
SINKS: dict[str, tuple[str, str, str]] = {
    "object_store": ("sluiceway.sinks.object_store", "ObjectStoreSinkConfig", "ObjectStoreSink"),
    "sql": ("sluiceway.sinks.sql", "SqlSinkConfig", "SqlSink"),
    "attachments": ("sluiceway.sinks.attachments", "AttachmentsSinkConfig", "AttachmentsSink"),
    "feedback": ("sluiceway.sinks.feedback", "FeedbackSinkConfig", "FeedbackSink"),
    "logs": ("sluiceway.sinks.logs", "LogsSinkConfig", "LogsSink"),
}

SOURCES: dict[str, tuple[str, str, str]] = {
    "lightfile6": ("sluiceway.sources.lightfile6", "Lightfile6SourceConfig", "Lightfile6Receiver"),
    "ingress": ("sluiceway.sources.ingress", "IngressSourceConfig", "IngressReceiver"),
    "feedback": ("sluiceway.sources.feedback", "FeedbackSourceConfig", "FeedbackHub"),
    "bucket": ("sluiceway.sources.bucket", "BucketSourceConfig", "BucketSource"),
    "directory": ("sluiceway.sources.directory", "DirectorySourceConfig", "DirectorySource"),
    "ldo": ("sluiceway.sources.ldo", "LdoSourceConfig", "LdoReceiver"),
}
TABLES = {"sink": SINKS, "source": SOURCES}


def _entry(kind: str, table: dict[str, tuple[str, str, str]], name: str) -> tuple[str, str, str]:
    try:
        return table[name]
    except KeyError:
        valid = ", ".join(sorted(table))
        raise ConfigError(f"unknown {kind} type {name!r}; valid types: {valid}") from None


def config_class(kind: str, name: str) -> type[Any]:
    """The config class of sink or source type ``name`` (``kind`` is "sink" or "source")."""
    module, cfg, _ = _entry(kind, TABLES[kind], name)
    return getattr(importlib.import_module(module), cfg)


def implementation(kind: str, name: str) -> type[Any]:
    module, _, impl = _entry(kind, TABLES[kind], name)
    return getattr(importlib.import_module(module), impl)
