"""Uploads: what became of each archive an ingress receiver was sent (its track endpoint).

A row is written once per request: ``accepted`` with the journal range holding the upload's
records, or ``rejected`` with the HTTP status and why. Delivery state is not stored here: it
is derived from the sinks' journal cursors and dead letters when asked.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from sluiceway.store.db import StoreBase, rfc3339
from sluiceway.store.schema import dead_letters, uploads


class UploadsMixin(StoreBase):
    async def add_upload(self, request_id: str, tenant: str, *, status: str, http_status: int,
                         received_at: datetime, info: dict[str, Any], error: str | None = None,
                         partition: str | None = None, first_offset: int | None = None,
                         last_offset: int | None = None) -> None:
        values = {"request_id": request_id, "tenant": tenant, "status": status, "http_status": http_status,
                  "error": error, "received_at": received_at, "partition": partition,
                  "first_offset": first_offset, "last_offset": last_offset, "info": info}
        async with self.engine.begin() as conn:
            await conn.execute(sa.insert(uploads).values(**values))

    async def get_upload(self, request_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(uploads).where(uploads.c.request_id == request_id))).mappings().first()
        if row is None:
            return None
        out = dict(row)
        out["received_at"] = rfc3339(row["received_at"])
        return out

    async def dead_letter_counts(self, partition: str, first: int, last: int) -> dict[str, int]:
        """Dead letters per sink among journal offsets ``first..last`` of ``partition``."""
        t = dead_letters
        q = (sa.select(t.c.sink, sa.func.count()).where(t.c.partition == partition, t.c.offset >= first,
                                                        t.c.offset <= last).group_by(t.c.sink))
        async with self.engine.connect() as conn:
            return {sink: int(n) for sink, n in (await conn.execute(q)).all()}
