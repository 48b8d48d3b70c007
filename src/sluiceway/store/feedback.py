"""Feedback rows: a real upsert on the identity key, and the query API's reads.

``upsert_feedback`` inserts new items, updates changed ones (an edited review, a replied
conversation) and writes nothing for unchanged ones: ``ON CONFLICT (identity) DO UPDATE …
WHERE <any content column> IS DISTINCT FROM excluded.<column>`` on both PostgreSQL and
SQLite (``IS NOT`` there). PostgreSQL bulk loads go through a staging table with COPY.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sluiceway.record import parse_time, utcnow
from sluiceway.store.db import StoreBase, chunked, rfc3339
from sluiceway.store.schema import feedback

CONTENT = ("author", "body", "rating", "language", "created_at", "updated_at", "metadata")
IDENTITY = ("tenant_id", "source_type", "source_instance", "external_id")


def _row(tenant: str, p: dict[str, Any], fetched_at: datetime) -> dict[str, Any]:
    return {
        "id": p["id"], "tenant_id": tenant, "source_type": p["source_type"],
        "source_instance": p.get("source_instance") or "", "external_id": str(p["external_id"]),
        "author": p.get("author"), "body": p.get("body"), "rating": p.get("rating"), "language": p.get("language"),
        "created_at": parse_time(p["created_at"]),
        "updated_at": parse_time(p["updated_at"]) if p.get("updated_at") else None,
        "fetched_at": fetched_at, "metadata": p.get("metadata") or {},
    }


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


class FeedbackMixin(StoreBase):
    async def upsert_feedback(self, items: list[tuple[str, dict[str, Any]]], fetched_at: datetime | None = None) -> int:
        """``(tenant, payload)`` pairs → rows written (new or changed). Unchanged items write
        nothing; within one call the last payload of an identity wins."""
        fetched_at = fetched_at or utcnow()
        rows: dict[tuple, dict[str, Any]] = {}
        for tenant, p in items:
            r = _row(tenant, p, fetched_at)
            rows[tuple(r[k] for k in IDENTITY)] = r
        if not rows:
            return 0
        if self.dialect == "postgresql":
            return await self._upsert_pg(list(rows.values()))
        written = 0
        async with self.engine.begin() as conn:
            for chunk in chunked(list(rows.values()), 500):
                written += max((await conn.execute(_upsert(sqlite_insert(feedback).values(chunk)))).rowcount, 0)
        return written

    async def _upsert_pg(self, rows: list[dict[str, Any]]) -> int:
        dumps = orjson.dumps
        tuples = [tuple(dumps(r[c]).decode() if c == "metadata" else r[c] for c in COLUMNS) for r in rows]
        async with self.engine.begin() as conn:
            await conn.exec_driver_sql(_PG_STAGING_DDL)
            raw = await conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(STAGING, records=tuples, columns=COLUMNS)
            return max((await conn.execute(_PG_UPSERT)).rowcount, 0)

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
