"""Name → class for sinks (and, later, sources). Imports are lazy: a heavy client is loaded
only when a configuration uses it. Unknown names produce an error listing the valid ones.

Adding a sink: one line in ``SINKS`` pointing at its module, config class and sink class.
"""

from __future__ import annotations

import importlib
from typing import Any

from sluiceway.errors import ConfigError

# type name → (module, config class, implementation class)
SINKS: dict[str, tuple[str, str, str]] = {
    "object_store": ("sluiceway.sinks.object_store", "ObjectStoreSinkConfig", "ObjectStoreSink"),
    "sql": ("sluiceway.sinks.sql", "SqlSinkConfig", "SqlSink"),
}


def _entry(kind: str, table: dict[str, tuple[str, str, str]], name: str) -> tuple[str, str, str]:
    try:
        return table[name]
    except KeyError:
        valid = ", ".join(sorted(table))
        raise ConfigError(f"unknown {kind} type {name!r}; valid types: {valid}") from None


def sink_config_class(name: str) -> type[Any]:
    module, cfg, _ = _entry("sink", SINKS, name)
    return getattr(importlib.import_module(module), cfg)


def sink_class(name: str) -> type[Any]:
    module, _, impl = _entry("sink", SINKS, name)
    return getattr(importlib.import_module(module), impl)
