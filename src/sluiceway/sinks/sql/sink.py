"""SQL sink: records into the ``records`` table of a store (SQLite or PostgreSQL).

With no ``url`` it writes to the gateway's own store (the one the query API reads); with
a ``url`` it opens its own ``Store`` on the first send, migrating that database to head.
Inserts are idempotent on record id, so a re-sent batch is harmless.

Failures are classified once, here: connection trouble, timeouts, a locked SQLite file,
deadlocks and serialization failures, missing tables or privileges (an operator can fix
those) are transient; data the database rejects (SQLSTATE classes 22, 23 and 54, values
the driver cannot encode) is permanent and the batch is dead-lettered.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING, Literal

from pydantic import field_validator
from sqlalchemy import exc as sa_exc

from sluiceway.config.types import Duration, SinkConfigBase
from sluiceway.errors import ConfigError, PermanentError, SinkError, TransientError
from sluiceway.sinks.base import Batch, Sink
from sluiceway.sinks.context import SinkContext
from sluiceway.store.db import describe_error
from sluiceway.store.lite import error_chain

if TYPE_CHECKING:
    from sluiceway.store import Store


class SqlSinkConfig(SinkConfigBase):
    type: Literal["sql"] = "sql"
    url: str | None = None  # None: the gateway's own store
    timeout: Duration = 60.0  # one send; past it the batch is retried

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None:
            from sluiceway.store.urls import parse_url

            try:
                parse_url(v)
            except ConfigError as e:
                raise ValueError(str(e)) from None
        return v


class SqlSink(Sink):
    def __init__(self, name: str, config: SqlSinkConfig, context: SinkContext):
        self.name = name
        self.config = config
        self._context = context
        self._own: Store | None = None  # a store this sink opened itself
        self._open_lock = asyncio.Lock()
        self._closed = False

    async def _store(self) -> "Store":
        if self._closed:
            raise TransientError(f"sql sink {self.name!r} is closed")
        if self.config.url is None:
            return self._context.store
        async with self._open_lock:
            if self._own is None:
                from sluiceway.store import Store

                store = Store.from_url(self.config.url)
                await store.open(migrate=True)
                self._own = store
            return self._own

    async def send(self, batch: Batch) -> None:
        if not len(batch):
            return
        try:
            async with asyncio.timeout(self.config.timeout):
                await self.write(await self._store(), batch)
        except SinkError:
            raise  # already classified by write()
        except Exception as e:  # noqa: BLE001 - every failure is classified
            raise classify(e) from e

    async def write(self, store: "Store", batch: Batch) -> None:
        """Store one batch (subclasses write other tables the same way)."""
        await store.insert_heads(batch.heads)

    async def healthcheck(self) -> None:
        try:
            async with asyncio.timeout(self.config.timeout):
                await (await self._store()).ping()
        except Exception as e:  # noqa: BLE001
            raise classify(e) from e

    async def aclose(self) -> None:
        self._closed = True
        own, self._own = self._own, None
        if own is not None:
            await own.aclose()


# -- failure classification -------------------------------------------------------------

# SQLSTATE classes: data exception, integrity violation, program limit exceeded (row or
# value too large). Everything else from the server (08 connection, 40 rollback/deadlock,
# 53 resources, 57 admin shutdown, 42 missing table/privilege, 25 read-only replica, …)
# is worth retrying.
_PERMANENT_SQLSTATE_CLASSES = {"22", "23", "54"}


def _permanent_type(c: BaseException) -> bool:
    if isinstance(c, (sa_exc.DataError, sa_exc.IntegrityError)):
        return True
    if isinstance(c, (sqlite3.DataError, sqlite3.IntegrityError)):
        return True
    # Client-side encoding: a payload orjson cannot serialise, a value the driver cannot
    # encode for its column (asyncpg raises ValueError/TypeError, or its DataError, which
    # is a ValueError, e.g. for an id that is not a uuid).
    return isinstance(c, (ValueError, TypeError)) and not isinstance(c, sa_exc.SQLAlchemyError)


def classify(e: BaseException) -> SinkError:
    """Map any failure of a send to TransientError (retry) or PermanentError (dead letter)."""
    if isinstance(e, SinkError):
        return e
    chain = error_chain(e)
    detail = describe_error(e)
    for c in chain:
        state = getattr(c, "sqlstate", None)
        if isinstance(state, str) and len(state) == 5:
            if state[:2] in _PERMANENT_SQLSTATE_CLASSES:
                return PermanentError(f"database rejected the batch ({state}): {detail}")
            return TransientError(f"database error ({state}): {detail}")
    if any(_permanent_type(c) for c in chain):
        return PermanentError(f"database rejected the batch: {detail}")
    if any(isinstance(c, sqlite3.OperationalError) and "locked" in str(c) for c in chain):
        return TransientError(f"database is locked: {detail}", retry_after=1.0)
    if any(isinstance(c, (TimeoutError, asyncio.TimeoutError)) for c in chain):
        return TransientError(f"database timed out: {detail}")
    if any(isinstance(c, (OSError, ConnectionError)) for c in chain):
        return TransientError(f"cannot reach the database: {detail}")
    return TransientError(detail)
