"""Records: idempotent bulk insert and paginated queries.

Insert is idempotent on the record id (delivery is at-least-once):

* PostgreSQL: COPY (binary, asyncpg ``copy_records_to_table``) into a per-session TEMP
  staging table (``ON COMMIT DELETE ROWS``), then ``INSERT … SELECT … ORDER BY id ON
  CONFLICT (id) DO NOTHING``, all in one transaction. Ordering by id gives concurrent
  writers the same lock order.
* SQLite: ``executemany`` of ``INSERT … ON CONFLICT(id) DO NOTHING``, in transactions of
  about ``SQLITE_COMMIT_BYTES`` of row data each rather than one per batch. A SQLite commit
  writes all its pages to the WAL and syncs them at once, and the WAL usually shares a disk
  with the gateway's journal: a sync that carries a few megabytes makes the journal's next
  sync, and every request waiting for it, wait behind it. ``bench/sync_contention.py``
  measures it (docs/benchmarks.md, notes): for ≈2 kB events, a batch in one transaction
  (4 MB) gave the journal's syncs a p99 of 2.7-4.2 ms and 1-30 syncs over 5 ms per 10 s,
  128 KiB transactions 1.7-2.2 ms and 0-2; for ≈300 B events the two are alike. Splitting a
  batch is safe because the insert is idempotent and the sink acknowledges the batch only
  after its last transaction: a batch cut short by a crash is sent again whole, and the
  rows already stored are skipped.

Both return how many rows were new.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from sluiceway.errors import BadRequest
from sluiceway.record import Record, RecordHead, decode_head, parse_time
from sluiceway.store.db import StoreBase, pg_json_text, rfc3339
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
_SQLITE_INSERT_SQL = (
    f"INSERT INTO records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
    "ON CONFLICT (id) DO NOTHING"
)


def _sqlite_time(value: str | None) -> str | None:
    """RFC 3339 → the text SQLAlchemy's SQLite DateTime stores (``YYYY-MM-DD HH:MM:SS.ffffff``,
    UTC), so raw inserts and SQLAlchemy queries agree and text order stays time order."""
    if value is None:
        return None
    if len(value) == 27 and value[-1] == "Z" and value[10] == "T":  # 2026-01-02T03:04:05.678901Z
        return f"{value[:10]} {value[11:26]}"
    t = parse_time(value)
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


def _pg_time(value: str | None) -> datetime | None:
    return None if value is None else parse_time(value)


def _rows(heads: Sequence[RecordHead], time: Any) -> list[tuple[Any, ...]]:
    """Record heads as parameter tuples in ``COLUMNS`` order; ``time`` converts times. The
    payload and attachments are bound as the JSON text the journal holds (no decode and
    re-encode); a missing or null payload is stored as ``{}``, missing attachments as ``[]``."""
    # Converted times, memoised: the records of a batch share few time strings (one
    # received_at per request, event times often repeated).
    memo: dict[str | None, Any] = {}
    return [
        (
            h.id, h.tenant, h.stream, h.source or "",
            memo[r] if (r := h.received_at) in memo else memo.setdefault(r, time(r)),
            memo[e] if (e := h.event_time) in memo else memo.setdefault(e, time(e)),
            h.idempotency_key, _json_text(h.payload, "{}"), _json_text(h.attachments, "[]"),
        )
        for h in heads
    ]


SQLITE_COMMIT_BYTES = 128 * 1024  # row data per SQLite transaction, about (see the docstring)
_ROW_OVERHEAD = 160  # bytes a row takes besides its JSON texts: id, names, times, index entries


def _commit_chunks(rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """``rows`` cut into runs of about ``SQLITE_COMMIT_BYTES`` (at least one row each)."""
    chunks: list[list[tuple[Any, ...]]] = []
    start = size = 0
    for i, row in enumerate(rows):
        size += len(row[7]) + len(row[8]) + _ROW_OVERHEAD
        if size >= SQLITE_COMMIT_BYTES:
            chunks.append(rows[start : i + 1])
            start, size = i + 1, 0
    if start < len(rows):
        chunks.append(rows[start:])
    return chunks


def _json_text(raw: msgspec.Raw, empty: str) -> str:
    text = bytes(raw).decode()
    return empty if text == "null" else text


class RecordsMixin(StoreBase):
    async def insert_records(self, batch: Sequence[Record]) -> int:
        """Insert records, skipping ids already stored. Returns the number newly inserted."""
        return await self.insert_heads([decode_head(r.encode()) for r in batch])  # type: ignore[misc]

    async def insert_heads(self, heads: Sequence[RecordHead]) -> int:
        """Insert records given as ``RecordHead``s (decoded from the journal's encoding),
        skipping ids already stored. The delivery hot path: no Record objects are built and
        no payload is decoded."""
        if not heads:
            return 0
        if self.dialect == "postgresql":
            return await self._insert_pg(heads)
        return await self._insert_sqlite(heads)

    async def _insert_sqlite(self, heads: Sequence[RecordHead]) -> int:
        inserted = 0
        async with self.engine.connect() as conn:
            for chunk in _commit_chunks(_rows(heads, _sqlite_time)):
                async with conn.begin():
                    # Plain DBAPI executemany: SQLAlchemy's per-row bind processing costs ~10x more.
                    result = await conn.exec_driver_sql(_SQLITE_INSERT_SQL, chunk)
                    inserted += max(result.rowcount, 0)
        return inserted

    async def _insert_pg(self, heads: Sequence[RecordHead]) -> int:
        rows = [r if "\\u0000" not in r[7] and "\\u0000" not in r[8]
                else (*r[:7], pg_json_text(r[7]), pg_json_text(r[8])) for r in _rows(heads, _pg_time)]
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
