"""The store: the SQL database behind the query API, tokens, dead letters and idempotency.

SQLite by default, PostgreSQL in production; one schema (Alembic migrations shipped in
``store/migrations``). Every method is async; times are tz-aware UTC.

::

    store = await open_store("sqlite:///data/sluice.db")     # migrates to head
    await store.insert_records(records)                       # idempotent on record id
    page = await store.query_records("acme", "usage", after_id=last_id)
    info, secret = await store.create_token("acme", ["ingest"])
    await store.aclose()

Modules: ``full`` (``Store``), ``db`` (engine, pragmas, migrations, health), ``records``,
``tokens``, ``deadletters``, ``idempotency``, ``uploads``, ``tenants`` (tenants and feedback
sources), ``feedback``, ``schema`` (tables), ``migrate`` (Alembic),
``urls``, and ``lite`` (the HTTP workers' token and idempotency queries without SQLAlchemy).
The names below are loaded on first use: importing a submodule such as ``lite`` does not
import SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluiceway.store.full import Store, StoreClosed, StoreError, TokenInfo, current_revision, open_store, upgrade

__all__ = ["Store", "StoreClosed", "StoreError", "TokenInfo", "open_store", "upgrade", "current_revision"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sluiceway.store import full

        return getattr(full, name)
    raise AttributeError(f"module 'sluiceway.store' has no attribute {name!r}")
