"""Dead letters: journal entries a sink could not deliver. Kept until replayed, never dropped.

Life of a dead letter::

    add_dead_letters ──▶ "dead" ──request_retry──▶ "retry" ──mark_sending──▶ "sending" ──▶ (delivery tries)
                           ▲                                                    │
                           └──────────── fail_retry (attempts + 1) ◀────────────┤
                                         resolve_dead_letters (row deleted) ◀───┘

``take_retry`` only reads. The single delivery worker of a sink marks the set it sends
"sending" (``mark_sending``), then calls ``resolve_dead_letters`` or ``fail_retry`` for what it
took. When a refused set is split, each part is marked "sending" in turn and the rows of later
parts go back to "retry", so after a crash ``take_retry`` returns exactly the part that was in
flight (the rows still "sending"), which the sink gets again under the same batch key. ``data``
is the encoded record (JSON text) or, for entries that could not be decoded, their bytes
decoded as UTF-8 with replacement characters (NUL becomes U+FFFD too: PostgreSQL text cannot
hold it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from sluiceway.record import utcnow
from sluiceway.store.db import StoreBase, chunked, rfc3339
from sluiceway.store.schema import dead_letters

DEAD = "dead"
RETRY = "retry"
SENDING = "sending"
STATUSES = (DEAD, RETRY, SENDING)


def _text(value: bytes | str) -> str:
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = bytes(value).decode("utf-8", errors="replace")
    return value.replace("\x00", "\ufffd")


def _row(row: sa.RowMapping) -> dict[str, Any]:
    return {
        "id": row["id"],
        "sink": row["sink"],
        "partition": row["partition"],
        "offset": row["offset"],
        "record_id": row["record_id"],
        "data": row["data"],
        "error": row["error"],
        "created_at": rfc3339(row["created_at"]),
        "status": row["status"],
        "attempts": row["attempts"],
    }


class DeadLettersMixin(StoreBase):
    async def add_dead_letters(
        self, sink: str, items: list[tuple[str, int, str | None, bytes]], error: str, *, skip_existing: bool = False
    ) -> int:
        """Store ``(partition, offset, record_id, data)`` items with status "dead"; return how
        many were stored. With ``skip_existing``, an item this sink already has a dead letter
        for (same partition, offset and record id, in any status) is left out: a journal range
        re-sent after a crash may refuse records its first attempt already filed."""
        if skip_existing and items:
            items = await self._not_yet_dead(sink, items)
        if not items:
            return 0
        now = utcnow()
        err = _text(error)
        rows = [
            {
                "sink": sink,
                "partition": partition,
                "offset": offset,
                "record_id": record_id,
                "data": _text(data),
                "error": err,
                "created_at": now,
                "status": DEAD,
                "attempts": 0,
            }
            for partition, offset, record_id, data in items
        ]
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(dead_letters), rows)
        return len(rows)

    async def _not_yet_dead(
        self, sink: str, items: list[tuple[str, int, str | None, bytes]]
    ) -> list[tuple[str, int, str | None, bytes]]:
        t = dead_letters
        have: set[tuple[str, int, str | None]] = set()
        async with self.engine.connect() as conn:
            for partition in {p for p, *_ in items}:
                offsets = sorted({o for p, o, *_ in items if p == partition})
                for part in chunked(offsets, 500):
                    rows = await conn.execute(
                        sa.select(t.c.offset, t.c.record_id)
                        .where(t.c.sink == sink, t.c.partition == partition, t.c.offset.in_(part)))
                    have.update((partition, o, r) for o, r in rows)
        return [item for item in items if (item[0], item[1], item[2]) not in have]

    async def list_dead_letters(
        self, sink: str | None = None, status: str | None = None, limit: int = 100, after_id: int = 0
    ) -> list[dict[str, Any]]:
        """Dead letters oldest first; page with ``after_id`` = the last id seen."""
        t = dead_letters
        q = sa.select(t).where(t.c.id > after_id).order_by(t.c.id).limit(max(0, int(limit)))
        if sink is not None:
            q = q.where(t.c.sink == sink)
        if status is not None:
            q = q.where(t.c.status == status)
        async with self.engine.connect() as conn:
            return [_row(r) for r in (await conn.execute(q)).mappings()]

    async def sinks_with_dead_letters(self, status: str | None = None) -> dict[str, int]:
        """How many dead letters (in ``status``, or any) each sink has."""
        t = dead_letters
        q = sa.select(t.c.sink, sa.func.count()).group_by(t.c.sink)
        if status is not None:
            q = q.where(t.c.status == status)
        async with self.engine.connect() as conn:
            return {sink: int(n) for sink, n in await conn.execute(q)}

    async def count_dead_letters(self, sink: str | None = None, status: str | None = None) -> int:
        t = dead_letters
        q = sa.select(sa.func.count()).select_from(t)
        if sink is not None:
            q = q.where(t.c.sink == sink)
        if status is not None:
            q = q.where(t.c.status == status)
        async with self.engine.connect() as conn:
            return int((await conn.execute(q)).scalar_one())

    async def request_retry(self, sink: str | None = None, ids: list[int] | None = None) -> int:
        """Mark "dead" rows (of ``sink``, or with these ``ids``) for retry; returns how many."""
        t = dead_letters
        base = sa.update(t).where(t.c.status == DEAD).values(status=RETRY)
        if sink is not None:
            base = base.where(t.c.sink == sink)
        if ids is None:
            async with self.engine.begin() as conn:
                return (await conn.execute(base)).rowcount
        return await self._update_ids(base, ids)

    async def take_retry(self, sink: str, limit: int) -> list[dict[str, Any]]:
        """The rows of ``sink`` to send next, oldest first (status unchanged): all the rows
        still "sending" (the set in flight when the last process stopped: sent again as it
        was), else up to ``limit`` rows marked for retry."""
        t = dead_letters
        q = sa.select(t).where(t.c.sink == sink, t.c.status == SENDING).order_by(t.c.id)
        async with self.engine.connect() as conn:
            sending = [_row(r) for r in (await conn.execute(q)).mappings()]
        return sending or await self.list_dead_letters(sink=sink, status=RETRY, limit=limit)

    async def mark_sending(self, ids: Sequence[int], back: Sequence[int] = ()) -> None:
        """In one transaction: rows ``ids`` are now being sent; rows ``back`` that were, are
        not any more (they wait for retry)."""
        t = dead_letters
        async with self.engine.begin() as conn:
            for part in chunked(sorted(set(back))):
                await conn.execute(sa.update(t).where(t.c.id.in_(part), t.c.status == SENDING).values(status=RETRY))
            for part in chunked(sorted(set(ids))):
                await conn.execute(sa.update(t).where(t.c.id.in_(part)).values(status=SENDING))

    async def resolve_dead_letters(self, ids: list[int]) -> int:
        """Delete dead letters that have now been delivered."""
        return await self._update_ids(sa.delete(dead_letters), ids)

    async def fail_retry(self, ids: list[int], error: str) -> int:
        """A retry failed again: back to "dead", one more attempt, the new error."""
        t = dead_letters
        q = sa.update(t).values(status=DEAD, attempts=t.c.attempts + 1, error=_text(error))
        return await self._update_ids(q, ids)

    async def _update_ids(self, stmt: Any, ids: list[int]) -> int:
        if not ids:
            return 0
        n = 0
        async with self.engine.begin() as conn:
            for part in chunked(sorted(set(ids))):
                n += (await conn.execute(stmt.where(dead_letters.c.id.in_(part)))).rowcount
        return n
