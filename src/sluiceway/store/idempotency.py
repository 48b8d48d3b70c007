"""Idempotency keys: the first response to ``(tenant, key)`` is replayed until it expires.

``idempotency_put`` is one upsert statement (``ON CONFLICT … DO UPDATE … WHERE expired``),
so two concurrent requests with the same key cannot both win: the loser gets False and
should answer with the winner's stored response (or 409 while it is being produced).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sluiceway.record import parse_time, utcnow
from sluiceway.store.db import StoreBase
from sluiceway.store.schema import idempotency


class IdempotencyMixin(StoreBase):
    async def idempotency_get(
        self, tenant: str, key: str, now: datetime | None = None
    ) -> tuple[int, bytes] | None:
        """The stored ``(status, body)`` for this key, or None (unknown or expired)."""
        t = idempotency
        now = parse_time(now) if now is not None else utcnow()
        q = sa.select(t.c.status, t.c.response).where(
            t.c.tenant == tenant, t.c.key == key, t.c.expires_at > now
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(q)).first()
        return (int(row[0]), bytes(row[1])) if row else None

    async def idempotency_put(
        self,
        tenant: str,
        key: str,
        status: int,
        body: bytes,
        expires_at: datetime,
        now: datetime | None = None,
    ) -> bool:
        """Store a response. False when an unexpired entry exists (it is kept as is)."""
        t = idempotency
        now = parse_time(now) if now is not None else utcnow()
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        values = {
            "tenant": tenant,
            "key": key,
            "status": int(status),
            "response": bytes(body),
            "created_at": now,
            "expires_at": parse_time(expires_at),
        }
        stmt = insert(t).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.tenant, t.c.key],
            set_={k: stmt.excluded[k] for k in ("status", "response", "created_at", "expires_at")},
            where=t.c.expires_at <= now,
        )
        async with self.engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount > 0

    async def idempotency_purge(self, now: datetime | None = None) -> int:
        """Delete expired entries; returns how many."""
        now = parse_time(now) if now is not None else utcnow()
        async with self.engine.begin() as conn:
            return (await conn.execute(sa.delete(idempotency).where(idempotency.c.expires_at <= now))).rowcount
