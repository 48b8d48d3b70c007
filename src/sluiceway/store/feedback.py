"""Feedback rows: a real upsert on the identity key, and the query API's reads.

``upsert_feedback`` inserts new items, updates changed ones (an edited review, a replied
conversation) and writes nothing for unchanged ones: ``ON CONFLICT (identity) DO UPDATE …
WHERE <any content column> IS DISTINCT FROM excluded.<column>`` on both PostgreSQL and
SQLite (``IS NOT`` there). PostgreSQL bulk loads go through a staging table with COPY, in
chunks whose statements overlap the building of the next chunk's rows; migration 0006 leaves
room in the table's pages so edits are HOT updates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sluiceway.record import parse_time, utcnow
from sluiceway.store.db import StoreBase, chunked, pg_json_dumps, pg_text, rfc3339
from sluiceway.store.schema import feedback

CONTENT = ("author", "body", "rating", "language", "created_at", "updated_at", "metadata")
IDENTITY = ("tenant_id", "source_type", "source_instance", "external_id")


def _values(tenant: str, p: dict[str, Any], fetched_at: datetime, meta: Callable[[dict], Any] = dict) -> tuple:
    """One row in ``COLUMNS`` order; ``meta`` turns the metadata object into the column's value."""
    updated = p.get("updated_at")
    return (p["id"], tenant, p["source_type"], p.get("source_instance") or "", str(p["external_id"]),
            p.get("author"), p.get("body"), p.get("rating"), p.get("language"), parse_time(p["created_at"]),
            parse_time(updated) if updated else None, meta(p.get("metadata") or {}), fetched_at)  # fmt: skip


def _latest(items: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The last ``(tenant, payload)`` of each identity, in first-seen order."""
    latest: dict[tuple, tuple[str, dict[str, Any]]] = {}
    for tenant, p in items:
        latest[(tenant, p["source_type"], p.get("source_instance") or "", str(p["external_id"]))] = (tenant, p)
    return list(latest.values())


def public(row: Any) -> dict[str, Any]:
    d = {str(k): v for k, v in dict(row).items()}  # plain str keys (SQLAlchemy gives quoted_name)
    for k in ("created_at", "updated_at", "fetched_at"):
        d[k] = rfc3339(d[k]) if d[k] is not None else None
    d["id"] = str(d["id"])
    return d


COLUMNS = ("id", *IDENTITY, *CONTENT, "fetched_at")
STAGING = "sluice_feedback_staging"
_PG_STAGING_DDL = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGING} (
    id uuid NOT NULL, tenant_id text NOT NULL, source_type text NOT NULL, source_instance text NOT NULL,
    external_id text NOT NULL, author text, body text, rating integer, language text,
    created_at timestamptz NOT NULL, updated_at timestamptz, metadata jsonb NOT NULL, fetched_at timestamptz NOT NULL
) ON COMMIT DELETE ROWS
"""
_staging = sa.table(STAGING, *(sa.column(c) for c in COLUMNS))


def _upsert(insert_stmt: Any) -> Any:
    t = feedback
    changed = sa.or_(*(t.c[k].is_distinct_from(insert_stmt.excluded[k]) for k in CONTENT))
    return insert_stmt.on_conflict_do_update(
        index_elements=[t.c[k] for k in IDENTITY],
        set_={**{k: insert_stmt.excluded[k] for k in CONTENT}, "fetched_at": insert_stmt.excluded.fetched_at},
        where=changed,
    )


_PG_UPSERT = _upsert(pg_insert(feedback).from_select(list(COLUMNS), sa.select(*_staging.c)))


_PG_UPSERT_SQL = str(_PG_UPSERT.compile(dialect=postgresql.dialect()))
PIPELINE_ROWS = 10_000  # rows per staged statement; the next chunk is built while PostgreSQL runs one


class FeedbackMixin(StoreBase):
    async def upsert_feedback(self, items: list[tuple[str, dict[str, Any]]], fetched_at: datetime | None = None) -> int:
        """``(tenant, payload)`` pairs → row writes (new or changed rows). Unchanged items
        write nothing; within one call the last payload of an identity wins."""
        fetched_at = fetched_at or utcnow()
        if not items:
            return 0
        if self.dialect == "postgresql":
            return await self._upsert_pg(items, fetched_at)
        written = 0
        async with self.engine.begin() as conn:
            for chunk in chunked(_latest(items), 500):
                rows = [dict(zip(COLUMNS, _values(t, p, fetched_at))) for t, p in chunk]
                written += max((await conn.execute(_upsert(sqlite_insert(feedback).values(rows)))).rowcount, 0)
        return written

    async def _upsert_pg(self, items: list[tuple[str, dict[str, Any]]], fetched_at: datetime) -> int:
        """One transaction: per chunk of the call, in order, COPY into the temp staging table,
        then the upsert statement from it. While PostgreSQL runs a chunk's statement this
        process builds the next chunk's rows (last payload per identity, times parsed,
        metadata encoded), so the two overlap. An identity is once per chunk (one statement
        cannot update a row twice); chunks run in order, so across chunks the last one wins
        too (and each chunk that changed the row counts as a write)."""

        def rows(chunk: list[tuple[str, dict[str, Any]]]) -> list[tuple]:
            return [tuple(map(pg_text, _values(t, p, fetched_at, pg_json_dumps))) for t, p in _latest(chunk)]

        chunks = chunked(items, PIPELINE_ROWS)
        written = 0
        async with self.engine.begin() as conn:
            await conn.exec_driver_sql(_PG_STAGING_DDL)
            pg = (await conn.get_raw_connection()).driver_connection
            staged = rows(chunks[0])
            for i in range(len(chunks)):
                if i:
                    await pg.execute(f"TRUNCATE {STAGING}")
                await pg.copy_records_to_table(STAGING, records=staged, columns=COLUMNS)
                statement = asyncio.ensure_future(pg.execute(_PG_UPSERT_SQL))
                await asyncio.sleep(0)  # let the statement go out before the CPU work below
                try:
                    staged = rows(chunks[i + 1]) if i + 1 < len(chunks) else []
                finally:  # even if a payload was bad: the connection must be idle before the rollback
                    written += int((await statement).rsplit(" ", 1)[1])  # "INSERT 0 <n>"
        return written

    async def get_feedback(self, tenant: str, feedback_id: str) -> dict[str, Any] | None:
        q = sa.select(feedback).where(feedback.c.tenant_id == tenant, feedback.c.id == feedback_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(q)).mappings().first()
        return public(row) if row else None

    async def query_feedback(self, tenant: str, *, source_type: str | None = None,
                             source_instance: str | None = None, since: datetime | None = None,
                             until: datetime | None = None, min_rating: int | None = None, q: str | None = None,
                             after: tuple[datetime, str] | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Oldest first by (created_at, id); ``after`` is the last row of the previous page."""
        t = feedback
        conds = [t.c.tenant_id == tenant]
        if source_type:
            conds.append(t.c.source_type == source_type)
        if source_instance is not None:
            conds.append(t.c.source_instance == source_instance)
        if since:
            conds.append(t.c.created_at >= since)
        if until:
            conds.append(t.c.created_at < until)
        if min_rating is not None:
            conds.append(t.c.rating >= min_rating)
        if q:
            like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            conds.append(sa.or_(t.c.body.ilike(like, escape="\\"), t.c.author.ilike(like, escape="\\")))
        if after is not None:
            at, aid = after
            conds.append(sa.or_(t.c.created_at > at, sa.and_(t.c.created_at == at, t.c.id > aid)))
        stmt = sa.select(t).where(*conds).order_by(t.c.created_at, t.c.id).limit(limit)
        async with self.engine.connect() as conn:
            return [public(r) for r in (await conn.execute(stmt)).mappings().all()]
