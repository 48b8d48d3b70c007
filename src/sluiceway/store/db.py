"""The store's engine: opening, pragmas, migrations, health. Queries live in the mixins.

One ``Store`` class serves SQLite (``sqlite+aiosqlite``) and PostgreSQL
(``postgresql+asyncpg``). SQLite connections run in WAL mode with ``synchronous=FULL``
(a committed token or dead letter survives power loss, not just a process crash) and a
5 s ``busy_timeout`` so several processes can share the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from datetime import timezone
from pathlib import Path
from types import TracebackType
from typing import Any, AsyncIterator, Self

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from sluiceway.record import dumps_exact, loads_exact
from sluiceway.store.lite import SQLITE_PRAGMAS, StoreClosed, StoreError
from sluiceway.store.urls import DatabaseURL, parse_url

def json_dumps(value: Any) -> str:
    return dumps_exact(value).decode()


# A JSON string escape: "\\u0000", or a backslash and the character it escapes.
_ESCAPE = re.compile(r"\\(u0000|.)", re.DOTALL)


def pg_json_text(text: str) -> str:
    """JSON text PostgreSQL can store: its ``json``/``jsonb`` and ``text`` types cannot hold the
    NUL character, so a ``\\u0000`` escape becomes ``\\ufffd`` (the replacement character).
    Everything else is kept; the journal and the object store keep the payload as sent."""
    if "\\u0000" not in text:
        return text
    return _ESCAPE.sub(lambda m: "\\ufffd" if m.group(1) == "u0000" else m.group(0), text)


def pg_json_dumps(value: Any) -> str:
    return pg_json_text(json_dumps(value))


def pg_text(value: Any) -> Any:
    """A value for a PostgreSQL ``text`` column: a string's NUL characters become U+FFFD
    (``text`` cannot hold NUL either); any other value is returned as it is."""
    return value.replace("\x00", "\ufffd") if type(value) is str and "\x00" in value else value


def json_loads(text: str | bytes) -> Any:
    """JSON columns as stored: records keep their payload's text as sent, which may hold valid
    JSON that orjson refuses (a number beyond a double's range, an integer past 64 bits)."""
    return loads_exact(text)


def describe_error(e: BaseException, max_len: int = 500) -> str:
    """``Type: message`` of the driver's error, without SQLAlchemy's SQL and parameters
    (which would put record payloads into logs)."""
    from sqlalchemy.exc import SQLAlchemyError

    seen: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and not any(cur is s for s in seen):
        seen.append(cur)
        if not isinstance(cur, SQLAlchemyError):
            break
        cur = getattr(cur, "orig", None) or cur.__cause__
    last = seen[-1]
    text = f"{type(last).__name__}: {last}"
    return text if len(text) <= max_len else text[: max_len - 1] + "…"


class StoreBase:
    def __init__(self, url: str | DatabaseURL):
        self.url = url if isinstance(url, DatabaseURL) else parse_url(url)
        self._engine: AsyncEngine | None = None
        self._open_lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls(url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url.redacted()!r})"

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.url.dialect

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise StoreClosed(f"store {self.url.redacted()} is not open")
        return self._engine

    @property
    def is_open(self) -> bool:
        return self._engine is not None

    def _create_engine(self) -> AsyncEngine:
        common: dict[str, Any] = {"json_serializer": json_dumps, "json_deserializer": json_loads}
        if self.dialect == "sqlite":
            if self.url.is_memory:
                engine = create_async_engine(self.url.url, poolclass=StaticPool, **common)
            else:
                Path(self.url.url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                engine = create_async_engine(self.url.url, **common)
            event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
            return engine
        return create_async_engine(
            self.url.url,
            pool_pre_ping=True,
            connect_args=dict(self.url.connect_args),
            **{**common, "json_serializer": pg_json_dumps},
        )

    async def open(self, migrate: bool = True) -> Self:
        """Create the engine and (by default) migrate to head. Opening twice is a no-op."""
        async with self._open_lock:
            if self._engine is None:
                engine = self._create_engine()
                try:
                    if migrate:
                        await _migrations().upgrade_engine(engine)
                    else:
                        async with engine.connect() as conn:
                            await conn.execute(text("SELECT 1"))
                except Exception as e:
                    await engine.dispose()
                    raise StoreError(
                        f"cannot open the store at {self.url.redacted()}: {describe_error(e)}"
                    ) from e
                except BaseException:
                    await engine.dispose()
                    raise
                self._engine = engine
        return self

    async def aclose(self) -> None:
        """Dispose of the connection pool. Safe to call twice."""
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def ping(self) -> None:
        """Raise if the database cannot answer ``SELECT 1``."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    @contextlib.asynccontextmanager
    async def try_lock(self, name: str) -> AsyncIterator[bool]:
        """Hold the database-wide lock ``name`` for the block if no other session holds it;
        yields whether it was taken. PostgreSQL: a session-level advisory lock on a connection
        of its own, released at the end (or by the server if this process dies), so gateways
        with different data dirs sharing one database are kept apart. SQLite: always True (its
        database sits in one data dir, whose file locks already keep processes apart)."""
        if self.dialect != "postgresql":
            yield True
            return
        key = int.from_bytes(hashlib.sha256(f"sluiceway:{name}".encode()).digest()[:8], "big", signed=True)
        async with self.engine.connect() as conn:
            got = bool((await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar_one())
            await conn.commit()
            try:
                yield got
            finally:
                if got:
                    try:
                        await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                        await conn.commit()
                    except BaseException:
                        # Not back to the pool still holding the lock: closing the session frees it.
                        await conn.invalidate()
                        raise

    async def upgrade(self, revision: str = "head") -> str | None:
        """Run migrations to ``revision``; returns the revision now current."""
        return await _migrations().upgrade_engine(self.engine, revision)

    async def current_revision(self) -> str | None:
        return await _migrations().current_revision(self.engine)

    @staticmethod
    def head_revision() -> str | None:
        return _migrations().head_revision()


def _migrations() -> Any:
    """The ``migrate`` module, imported on first use: Alembic is ≈9 MB that a process which
    never migrates (``sluice serve``'s delivery process: see runtime/server.py) does without."""
    from sluiceway.store import migrate

    return migrate


def _sqlite_on_connect(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def rfc3339(value: Any) -> str | None:
    """A tz-aware datetime as RFC 3339 in UTC with ``Z`` (the Record encoding's form)."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def chunked(values: list[Any], size: int = 1000) -> list[list[Any]]:
    """Split long ``IN (...)`` lists: asyncpg allows at most 32767 bind parameters."""
    return [values[i : i + size] for i in range(0, len(values), size)]
