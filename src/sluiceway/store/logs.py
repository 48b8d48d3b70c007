"""Log rows: idempotent bulk insert on ``(time, id)``, daily partitions, the query API's reads.

PostgreSQL: ``logs`` is either natively partitioned by range of ``time`` or a TimescaleDB
hypertable (migration 0005 chose, by whether the extension is installed). For a partitioned
table, ``insert_logs`` makes sure, on its careful way (below), that a partition exists for
every UTC day in the batch (``CREATE TABLE IF NOT EXISTS sluice_log_partitions.logs_pYYYYMMDD PARTITION OF logs FOR
VALUES FROM (day) TO (day + 1)``, under a transaction-level advisory lock so that two
writers never race on the catalog), remembering the days it has seen.

The bulk path has two ways, tried in this order:

1. *Straight*: one binary COPY into ``logs`` in a transaction of its own. Rows are taken
   from ``rows`` (which may be a lazy iterable: the logs sink normalises inside it) as the
   COPY streams, so PostgreSQL stores the first 512 KiB while Python builds the next. This is
   the happy path: new lines, days already known.
2. *Careful*, when the COPY failed because a row is already stored (a re-delivered batch, a
   reprocessed file, a line twice in one batch: ``unique_violation``) or its day has no
   partition yet (``check_violation``; the straight way does not look at days first): the
   first way's transaction is rolled back whole, the partitions of every day of the batch are
   made sure of, and the rows are COPYed into a TEMP staging table and moved with ``INSERT …
   SELECT … ON CONFLICT (time, id) DO NOTHING``.

Either way a batch is stored whole or not at all, and storing it again changes nothing.
SQLite: ``INSERT … ON CONFLICT DO NOTHING`` in one transaction.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sluiceway.record import dumps_exact
from sluiceway.store.db import StoreBase, chunked, pg_json_text, pg_text, rfc3339
from sluiceway.store.schema import UTC, logs

COLUMNS = tuple(c.name for c in logs.columns)
JSON_COLUMNS = frozenset({"query", "headers", "params", "raw"})
PARTITION_SCHEMA = "sluice_log_partitions"
STAGING = "sluice_logs_staging"
_PG_STAGING_DDL = f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} (LIKE logs INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
_staging = sa.table(STAGING, *(sa.column(c) for c in COLUMNS))
_PG_INSERT = (pg_insert(logs).from_select(list(COLUMNS), sa.select(*_staging.c).order_by(_staging.c.time,
                                                                                         _staging.c.id))
              .on_conflict_do_nothing(index_elements=["time", "id"]))
_LOCK_KEY = 0x5F10_6C06  # advisory lock serialising partition creation
_values = operator.itemgetter(*COLUMNS)
_JSON_AT = tuple(i for i, c in enumerate(COLUMNS) if c in JSON_COLUMNS)
_TIME_AT = COLUMNS.index("time")
_TEXT_AT = tuple(i for i, c in enumerate(logs.columns) if isinstance(c.type, sa.String))  # Text is a String


def copy_tuple(row: dict[str, Any]) -> tuple[Any, ...]:
    """A ``logs`` row (column → value) as COPY into PostgreSQL takes it: values in column
    order, JSON as text; NUL characters, which PostgreSQL cannot store, as U+FFFD."""
    values = list(_values(row))
    dumps = dumps_exact  # integers past 64 bits too
    for i in _JSON_AT:
        v = values[i]
        if v is not None:
            values[i] = pg_json_text(dumps(v).decode())
    for i in _TEXT_AT:
        values[i] = pg_text(values[i])
    return tuple(values)


def partition_name(day: date) -> str:
    return f"logs_p{day:%Y%m%d}"


def public(row: Any) -> dict[str, Any]:
    d = {str(k): v for k, v in dict(row).items()}
    d["time"] = rfc3339(d["time"])
    d["id"] = str(d["id"])
    return d


class LogsMixin(StoreBase):
    _log_partitioned: bool | None = None
    _log_days: set[date]

    async def logs_partitioning(self) -> str:
        """``native`` (range partitions), ``timescaledb`` (hypertable) or ``none`` (SQLite)."""
        if self.dialect != "postgresql":
            return "none"
        async with self.engine.connect() as conn:
            native = (await conn.execute(sa.text(
                "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                "WHERE c.oid = to_regclass('logs')"))).first()
        return "native" if native else "timescaledb"

    async def ensure_log_partitions(self, days: set[date]) -> list[str]:
        """Create the daily partitions ``days`` need (PostgreSQL, native partitioning only);
        returns the names created or found."""
        if self._log_partitioned is None:
            self._log_partitioned = await self.logs_partitioning() == "native"
            self._log_days = set()
        if not self._log_partitioned:
            return []
        todo = sorted(days - self._log_days)
        if not todo:
            return []
        async with self.engine.begin() as conn:
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
            for day in todo:
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                end = start + timedelta(days=1)
                await conn.exec_driver_sql(
                    f"CREATE TABLE IF NOT EXISTS {PARTITION_SCHEMA}.{partition_name(day)} PARTITION OF logs "
                    f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')")
        self._log_days.update(todo)
        return [partition_name(d) for d in todo]

    async def insert_logs(self, rows: Iterable[dict[str, Any]]) -> int:
        """Insert ``logs`` rows (column → value), skipping ``(time, id)`` already stored.
        ``rows`` is read once, possibly while the rows are being sent. Returns the number newly
        inserted."""
        if self.dialect != "postgresql":
            rows = list(rows)
            if not rows:
                return 0
            async with self.engine.begin() as conn:
                n = 0
                for chunk in chunked(rows, 500):
                    n += max((await conn.execute(sqlite_insert(logs).values(chunk).on_conflict_do_nothing()))
                             .rowcount, 0)
                return n
        import asyncpg

        made: list[tuple[Any, ...]] = []  # what the straight way built, for the careful way

        def tuples() -> Iterator[tuple[Any, ...]]:
            for r in rows:
                t = copy_tuple(r)
                made.append(t)
                yield t

        pending = tuples()
        try:
            async with self.engine.begin() as conn:
                await conn.exec_driver_sql("SELECT 1")  # the driver's transaction begins here, not in COPY
                raw = await conn.get_raw_connection()
                await raw.driver_connection.copy_records_to_table("logs", records=pending, columns=COLUMNS)
            return len(made)
        except (asyncpg.UniqueViolationError, asyncpg.CheckViolationError):
            made.extend(pending)  # the rest, if the COPY stopped early
        if not made:
            return 0
        await self.ensure_log_partitions({t[_TIME_AT].astimezone(UTC).date() for t in made})
        async with self.engine.begin() as conn:
            await conn.exec_driver_sql(_PG_STAGING_DDL)
            raw = await conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(STAGING, records=made, columns=COLUMNS)
            return max((await conn.execute(_PG_INSERT)).rowcount, 0)

    async def query_logs(self, tenant: str, *, since: datetime | None = None, until: datetime | None = None,
                         min_severity: int | None = None, hostname: str | None = None,
                         context: str | None = None, q: str | None = None,
                         after: tuple[datetime, str] | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Oldest first by ``(time, id)``; ``after`` is the last row of the previous page."""
        t = logs.c
        conds = [t.tenant == tenant]
        if since:
            conds.append(t.time >= since)
        if until:
            conds.append(t.time < until)
        if min_severity is not None:
            conds.append(t.severity >= min_severity)
        if hostname:
            conds.append(t.hostname == hostname)
        if context:
            conds.append(t.context == context)
        if q:
            like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conds.append(t.message.ilike(like, escape="\\"))
        if after is not None:
            at, aid = after
            conds.append(sa.or_(t.time > at, sa.and_(t.time == at, t.id > aid)))
        stmt = sa.select(logs).where(*conds).order_by(t.time, t.id).limit(limit)
        async with self.engine.connect() as conn:
            return [public(r) for r in (await conn.execute(stmt)).mappings().all()]
