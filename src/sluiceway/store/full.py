"""The full store: ``Store``, SQLAlchemy Core over SQLite (aiosqlite) or PostgreSQL (asyncpg).

Import it as ``from sluiceway.store import Store`` (the package loads this module on first
use, so that ``sluiceway.store.lite`` can be imported without SQLAlchemy).
"""

from __future__ import annotations

import asyncio

from sluiceway.store.db import StoreBase, StoreClosed, StoreError
from sluiceway.store.deadletters import DeadLettersMixin
from sluiceway.store.feedback import FeedbackMixin
from sluiceway.store.files import FilesMixin
from sluiceway.store.idempotency import IdempotencyMixin
from sluiceway.store.ldos import LdosMixin
from sluiceway.store.logs import LogsMixin
from sluiceway.store.records import RecordsMixin
from sluiceway.store.tenants import TenantsMixin
from sluiceway.store.tokens import TokenInfo, TokensMixin
from sluiceway.store.uploads import UploadsMixin

__all__ = ["Store", "StoreClosed", "StoreError", "TokenInfo", "open_store", "upgrade", "current_revision"]


class Store(RecordsMixin, TokensMixin, DeadLettersMixin, IdempotencyMixin, UploadsMixin, TenantsMixin,
            FeedbackMixin, LdosMixin, FilesMixin, LogsMixin, StoreBase):
    """One class for SQLite and PostgreSQL. ``Store.from_url(url)`` then ``await open()``."""


async def open_store(url: str, migrate: bool = True) -> Store:
    """Create and open a store (migrating to head unless ``migrate=False``)."""
    return await Store.from_url(url).open(migrate=migrate)


def upgrade(url: str, revision: str = "head") -> str | None:
    """Synchronous ``sluice db upgrade``: migrate the database at ``url``; returns the revision."""

    async def run() -> str | None:
        store = await open_store(url, migrate=False)
        try:
            return await store.upgrade(revision)
        finally:
            await store.aclose()

    return asyncio.run(run())


def current_revision(url: str) -> str | None:
    """Synchronous ``sluice db current``: the revision the database at ``url`` is at."""

    async def run() -> str | None:
        store = await open_store(url, migrate=False)
        try:
            return await store.current_revision()
        finally:
            await store.aclose()

    return asyncio.run(run())
