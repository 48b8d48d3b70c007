"""Records: idempotent bulk insert and paginated queries.

Insert is idempotent on the record id (delivery is at-least-once):

* PostgreSQL: COPY (binary, asyncpg ``copy_records_to_table``) into a per-session TEMP
  staging table (``ON COMMIT DELETE ROWS``), then ``INSERT … SELECT … ORDER BY id ON
  CONFLICT (id) DO NOTHING``, all in one transaction. Ordering by id gives concurrent
  writers the same lock order.
* SQLite: ``executemany`` of ``INSERT … ON CONFLICT(id) DO NOTHING`` in one transaction.

Both return how many rows were new.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sluiceway.errors import BadRequest
from sluiceway.record import Attachment, Record, parse_time
from sluiceway.store.db import StoreBase, rfc3339
from sluiceway.store.schema import records

COLUMNS = (
    "id", "tenant", "stream", "source", "received_at",
    "event_time", "idempotency_key", "payload", "attachments",
)

STAGING = "sluice_records_staging"
_PG_STAGING_DDL = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGING} (
    id uuid NOT NULL,
    tenant text NOT NULL,
    stream text NOT NULL,
    source text NOT NULL,
    received_at timestamptz NOT NULL,
    event_time timestamptz,
    idempotency_key text,
    payload jsonb NOT NULL,
    attachments jsonb NOT NULL
) ON COMMIT DELETE ROWS
"""
_staging = sa.table(STAGING, *(sa.column(c) for c in COLUMNS))
_PG_INSERT_SELECT = (
    postgresql.insert(records)
    .from_select(list(COLUMNS), sa.select(*_staging.c).order_by(_staging.c.id))
    .on_conflict_do_nothing(index_elements=["id"])
)
_SQLITE_INSERT = sqlite_insert(records).on_conflict_do_nothing(index_elements=["id"])


def _attachments(atts: list[Attachment]) -> list[dict[str, Any]]:
    return [
        {"key": a.key, "sha256": a.sha256, "size": a.size, "content_type": a.content_type}
        for a in atts
    ]


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else parse_time(value)


class RecordsMixin(StoreBase):
    async def insert_records(self, batch: Sequence[Record]) -> int:
        """Insert records, skipping ids already stored. Returns the number newly inserted."""
        if not batch:
            return 0
        if self.dialect == "postgresql":
            return await self._insert_records_pg(batch)
        return await self._insert_records_sqlite(batch)

    async def _insert_records_sqlite(self, batch: Sequence[Record]) -> int:
        rows = [
            {
                "id": r.id,
                "tenant": r.tenant,
                "stream": r.stream,
                "source": r.source,
                "received_at": _utc(r.received_at),
                "event_time": _utc(r.event_time),
                "idempotency_key": r.idempotency_key,
                "payload": r.payload,
                "attachments": _attachments(r.attachments),
            }
            for r in batch
        ]
        async with self.engine.begin() as conn:
            result = await conn.execute(_SQLITE_INSERT, rows)
            return max(result.rowcount, 0)

    async def _insert_records_pg(self, batch: Sequence[Record]) -> int:
        dumps = orjson.dumps
        rows = [
            (
                r.id,
                r.tenant,
                r.stream,
                r.source,
                _utc(r.received_at),
                _utc(r.event_time),
                r.idempotency_key,
                dumps(r.payload).decode(),
                dumps(_attachments(r.attachments)).decode(),
            )
            for r in batch
        ]
        async with self.engine.begin() as conn:
            # The first statement through SQLAlchemy opens the asyncpg transaction that the
            # raw COPY below then joins.
            await conn.exec_driver_sql(_PG_STAGING_DDL)
            raw = await conn.get_raw_connection()
            await raw.driver_connection.copy_records_to_table(STAGING, records=rows, columns=COLUMNS)
            result = await conn.execute(_PG_INSERT_SELECT)
            return max(result.rowcount, 0)

    async def query_records(
        self,
        tenant: str,
        stream: str,
        since: datetime | None = None,
        until: datetime | None = None,
        after_id: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Records of one tenant's stream, oldest first by id.

        ``since``/``until`` bound ``received_at`` (``since <= received_at < until``);
        ``after_id`` is the last id of the previous page.
        """
        t = records
        q = sa.select(t).where(t.c.tenant == tenant, t.c.stream == stream)
        if since is not None:
            q = q.where(t.c.received_at >= parse_time(since))
        if until is not None:
            q = q.where(t.c.received_at < parse_time(until))
        if after_id:
            try:
                after_id = str(uuid.UUID(after_id))
            except (ValueError, TypeError, AttributeError):
                raise BadRequest(f"after_id {after_id!r} is not a record id") from None
            q = q.where(t.c.id > after_id)
        q = q.order_by(t.c.id).limit(max(0, int(limit)))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).mappings().all()
        return [
            {
                "id": str(row["id"]),
                "tenant": row["tenant"],
                "stream": row["stream"],
                "source": row["source"],
                "received_at": rfc3339(row["received_at"]),
                "event_time": rfc3339(row["event_time"]),
                "idempotency_key": row["idempotency_key"],
                "payload": row["payload"],
                "attachments": row["attachments"],
            }
            for row in rows
        ]
