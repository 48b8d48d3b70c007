"""Connector types → classes (lazy imports). Adding a platform: one line here and a folder
under ``sources/`` with its ``Connector`` subclass."""

from __future__ import annotations

import importlib
from typing import Any

from sluiceway.errors import ConfigError

CONNECTORS: dict[str, tuple[str, str]] = {
    "playstore": ("sluiceway.sources.playstore", "PlayStoreConnector"),
    "x": ("sluiceway.sources.x", "XConnector"),
    "discourse": ("sluiceway.sources.discourse", "DiscourseConnector"),
    "intercom": ("sluiceway.sources.intercom", "IntercomConnector"),
}


def connector_class(type_: str) -> Any:
    try:
        module, cls = CONNECTORS[type_]
    except KeyError:
        raise ConfigError(f"unknown source type {type_!r}; valid types: {', '.join(sorted(CONNECTORS))}, webhook") \
            from None
    return getattr(importlib.import_module(module), cls)
