"""The HTTP workers' store: token lookup, idempotency and a ping, without SQLAlchemy.

SQLAlchemy's async engine is ≈25 MB of every process that imports it, and an HTTP worker of
``sluice serve`` needs only these few statements. ``LiteStore`` runs them on the drivers
directly (aiosqlite, asyncpg) against the schema the full ``Store`` migrated
(``store/schema.py``), reading and writing values in the same forms: on SQLite, times as
SQLAlchemy's UTC text ``YYYY-MM-DD HH:MM:SS.ffffff``; on PostgreSQL, ``timestamptz``. The
query API, rare on a worker, opens a full ``Store`` on first use.

A ``LiteStore`` is made from a URL where SQLAlchemy is loaded anyway (``from_url``, in the
supervisor: the driver arguments are exactly the ones SQLAlchemy would pass) and is picklable
until opened. This module also holds what both stores share and what must not import
SQLAlchemy: ``TokenInfo``, ``hash_secret``, the SQLite pragmas and the store's errors.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import sqlite3
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson

from sluiceway.errors import SluicewayError
from sluiceway.record import parse_time, utcnow

if TYPE_CHECKING:
    from sluiceway.store import Store

SECRET_PREFIX = "slw_"
SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",  # first: switching to WAL takes a lock another opener may hold
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
)


class StoreError(SluicewayError):
    """The store cannot be opened or migrated. The cause is chained (``__cause__``)."""


class StoreClosed(StoreError):
    """The store was used before ``open()`` or after ``aclose()``."""


def error_chain(e: BaseException) -> list[BaseException]:
    """The exception, what it wraps (``.orig``) and its explicit causes, without repeats.

    Implicit ``__context__`` is not followed: an error raised while cleaning up after
    another one must be judged on its own.
    """
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [e]
    while todo:
        cur = todo.pop(0)
        if cur is None or any(cur is s for s in seen):
            continue
        seen.append(cur)
        todo += [getattr(cur, "orig", None), cur.__cause__]
    return seen


# SQLSTATE classes of a database that is unreachable or busy, not of a wrong request:
# connection exception, transaction rollback (deadlock, serialization), insufficient
# resources, operator intervention (shutdown).
_UNAVAILABLE_SQLSTATE_CLASSES = {"08", "40", "53", "57"}
_UNAVAILABLE_SQLITE = ("locked", "busy", "unable to open", "disk i/o error", "database or disk is full")


def unavailable_reason(e: BaseException) -> str | None:
    """Why ``e`` means the store (or the system under it) cannot serve now, or None when it
    is something else (such as a bug). Callers answer 503 and the client retries. The
    description is the driver's error (never SQLAlchemy's, which quotes SQL and parameters).
    Does not import SQLAlchemy: its errors can only be in the chain where it is loaded."""
    sa_exc = sys.modules.get("sqlalchemy.exc")
    pool_errors = (sa_exc.DisconnectionError, sa_exc.TimeoutError) if sa_exc is not None else ()
    for c in error_chain(e):
        if isinstance(c, StoreClosed):
            return f"the store is not open: {c}"
        state = getattr(c, "sqlstate", None)
        if isinstance(state, str) and state[:2] in _UNAVAILABLE_SQLSTATE_CLASSES:
            return f"database unavailable ({state}): {type(c).__name__}: {c}"
        if isinstance(c, sqlite3.OperationalError) and any(m in str(c).lower() for m in _UNAVAILABLE_SQLITE):
            return f"database unavailable: {type(c).__name__}: {c}"
        if pool_errors and isinstance(c, pool_errors):
            return f"database unavailable: {type(c).__name__}: {c}"
        if getattr(c, "connection_invalidated", False):  # SQLAlchemy saw the connection drop
            root = error_chain(c)[-1]
            return f"database connection lost: {type(root).__name__}: {root}"
        if isinstance(c, OSError):  # connection refused or reset, timeouts, a full disk
            return f"{type(c).__name__}: {c}"
    return None


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    tenant: str
    scopes: frozenset[str]
    name: str | None
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


# Written with PostgreSQL's $n placeholders; SQLite reads them as ?n.
_LOOKUP_TOKEN = ("SELECT id, tenant, scopes, name, created_at, revoked_at FROM tokens "
                 "WHERE secret_sha256 = $1 AND revoked_at IS NULL")
_IDEMPOTENCY_GET = 'SELECT status, response FROM idempotency WHERE tenant = $1 AND "key" = $2 AND expires_at > $3'
_IDEMPOTENCY_PUT = (
    'INSERT INTO idempotency (tenant, "key", status, response, created_at, expires_at) '
    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant, \"key\") DO UPDATE SET "
    "status = excluded.status, response = excluded.response, created_at = excluded.created_at, "
    "expires_at = excluded.expires_at WHERE idempotency.expires_at <= $5"
)


def _sqlite_sql(sql: str) -> str:
    return re.sub(r"\$(\d+)", r"?\1", sql)


def _to_sqlite_time(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _from_db_time(v: Any) -> datetime | None:
    if v is None:
        return None
    t = v if isinstance(v, datetime) else datetime.fromisoformat(v)
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


class LiteStore:
    def __init__(self, dialect: str, connect_kwargs: dict[str, Any], url: str):
        self.dialect = dialect  # "sqlite" | "postgresql"
        self.connect_kwargs = connect_kwargs  # for aiosqlite.connect / asyncpg.create_pool
        self.url = url  # for the full Store of the query API
        self._db: Any = None  # an aiosqlite connection or an asyncpg pool
        self._full: Store | None = None
        self._full_lock: asyncio.Lock | None = None

    @classmethod
    def from_url(cls, url: str) -> "LiteStore":
        from sluiceway.store.urls import driver_kwargs, parse_url

        parsed = parse_url(url)
        return cls(parsed.dialect, driver_kwargs(parsed), url)

    def __getstate__(self) -> dict[str, Any]:
        if self._db is not None:
            raise TypeError("an open LiteStore cannot be pickled")
        return {"dialect": self.dialect, "connect_kwargs": self.connect_kwargs, "url": self.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["dialect"], state["connect_kwargs"], state["url"])  # type: ignore[misc]

    async def open(self, migrate: bool = False) -> "LiteStore":
        """Connect and check the database answers. ``migrate`` must be False: the full
        ``Store`` migrates."""
        if migrate:
            raise ValueError("LiteStore does not migrate; open a Store for that")
        if self._db is not None:
            return self
        try:
            if self.dialect == "sqlite":
                import aiosqlite

                db = await aiosqlite.connect(**self.connect_kwargs, isolation_level=None)
                try:
                    for pragma in SQLITE_PRAGMAS:
                        await db.execute(pragma)
                except BaseException:
                    await db.close()
                    raise
            else:
                import asyncpg

                db = await asyncpg.create_pool(**self.connect_kwargs, min_size=1, max_size=10)
        except Exception as e:
            raise StoreError(f"cannot open the store ({self.dialect}): {type(e).__name__}: {e}") from e
        self._db = db
        return self

    async def aclose(self) -> None:
        """Close the connection (pool) and the query API's store. Safe to call twice."""
        db, self._db = self._db, None
        full, self._full = self._full, None
        if db is not None:
            await db.close()
        if full is not None:
            await full.aclose()

    async def _fetch(self, sql: str, *args: Any) -> tuple[Any, ...] | None:
        if self._db is None:
            raise StoreClosed("store is not open")
        if self.dialect == "sqlite":
            async with self._db.execute(_sqlite_sql(sql), args) as cur:
                return await cur.fetchone()
        row = await self._db.fetchrow(sql, *args)
        return tuple(row) if row is not None else None

    async def _execute(self, sql: str, *args: Any) -> int:
        """Run one statement (its own transaction); returns the number of rows it changed."""
        if self._db is None:
            raise StoreClosed("store is not open")
        if self.dialect == "sqlite":
            async with self._db.execute(_sqlite_sql(sql), args) as cur:
                return cur.rowcount
        status = await self._db.execute(sql, *args)  # e.g. "INSERT 0 1"
        return int(status.rsplit(" ", 1)[-1])

    def _time(self, t: datetime) -> Any:
        t = parse_time(t)
        return _to_sqlite_time(t) if self.dialect == "sqlite" else t

    async def ping(self) -> None:
        await self._fetch("SELECT 1")

    async def lookup_token(self, secret: str) -> TokenInfo | None:
        """The live token with this secret, or None (unknown or revoked)."""
        if not secret or not secret.startswith(SECRET_PREFIX):
            return None
        row = await self._fetch(_LOOKUP_TOKEN, hash_secret(secret))
        if row is None:
            return None
        return TokenInfo(id=row[0], tenant=row[1], scopes=frozenset(orjson.loads(row[2])), name=row[3],
                         created_at=_from_db_time(row[4]), revoked_at=_from_db_time(row[5]))  # type: ignore[arg-type]

    async def idempotency_get(self, tenant: str, key: str, now: datetime | None = None) -> tuple[int, bytes] | None:
        """The stored ``(status, body)`` for this key, or None (unknown or expired)."""
        row = await self._fetch(_IDEMPOTENCY_GET, tenant, key, self._time(now or utcnow()))
        return (int(row[0]), bytes(row[1])) if row else None

    async def idempotency_put(self, tenant: str, key: str, status: int, body: bytes, expires_at: datetime,
                              now: datetime | None = None) -> bool:
        """Store a response. False when an unexpired entry exists (it is kept as is)."""
        return await self._execute(_IDEMPOTENCY_PUT, tenant, key, int(status), bytes(body),
                                   self._time(now or utcnow()), self._time(expires_at)) > 0

    async def full(self) -> "Store":
        """A full ``Store`` on the same database, opened on first use (the query and admin
        APIs, receivers that keep state: rare on a worker, so not paid for up front)."""
        if self._full_lock is None:
            self._full_lock = asyncio.Lock()
        async with self._full_lock:
            if self._full is None:
                from sluiceway.store import Store

                self._full = await Store.from_url(self.url).open(migrate=False)
        return self._full

    def __getattr__(self, name: str) -> Any:
        """Any other ``Store`` method, as a coroutine run on ``full()``."""
        if name.startswith("_"):
            raise AttributeError(name)

        async def call(*args: Any, **kw: Any) -> Any:
            return await getattr(await self.full(), name)(*args, **kw)

        call.__name__ = name
        return call
