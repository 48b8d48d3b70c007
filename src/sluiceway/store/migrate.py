"""Alembic migrations, run from inside the package (no alembic.ini needed).

The Alembic ``Config`` is built in code with ``script_location`` pointing at
``sluiceway/store/migrations``. Migrations run on the store's own async engine: the sync
face of an async connection is handed to ``env.py`` through
``config.attributes["connection"]``.

Several processes may open the same store at once, so an upgrade holds a lock for its
whole transaction: ``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN IMMEDIATE`` (the write
lock, waited for through busy_timeout) on SQLite. The second process then finds the
schema at head and does nothing.
"""

from __future__ import annotations

import asyncio
import sys
import weakref
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Arbitrary constant shared by every sluiceway process: the advisory lock key.
_PG_LOCK_KEY = 5_110_001


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config for the packaged migrations (``url`` only matters offline)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def lock_for_migration(conn: AsyncConnection) -> None:
    """Take the migration lock; must be the first statement of the transaction."""
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})


def _upgrade_sync(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


def _current_sync(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


_IN_PROCESS: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = weakref.WeakKeyDictionary()


def _in_process_lock() -> asyncio.Lock:
    """Alembic keeps the running migration in module-level state: two upgrades interleaved on
    one event loop would mix their contexts, so they take turns (per loop)."""
    loop = asyncio.get_running_loop()
    lock = _IN_PROCESS.get(loop)
    if lock is None:
        lock = _IN_PROCESS[loop] = asyncio.Lock()
    return lock


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> str | None:
    """Run migrations up to ``revision`` in one locked transaction (a lock in the database for
    other processes, one in this process for Alembic's sake); return the new revision."""
    async with _in_process_lock(), engine.begin() as conn:
        await lock_for_migration(conn)
        if await conn.run_sync(_current_sync) != head_revision() or revision != "head":
            await conn.run_sync(_upgrade_sync, revision)
        return await conn.run_sync(_current_sync)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current_sync)


def main() -> None:
    """``python -m sluiceway.store.migrate`` with the database URL on stdin: migrate to head.
    ``sluice serve`` migrates this way, so that Alembic never loads in its long-lived processes."""
    from sluiceway.errors import SluicewayError
    from sluiceway.store import upgrade

    try:
        upgrade(sys.stdin.read().strip())
    except SluicewayError as e:
        print(e, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
