"""LDOs: the registry of edge artifacts the ``ldo`` receiver accepted (sources/ldo).

A row is written once the upload's record is durable in the journal (never before: a row
always points to something), and answers the LDO API's reads. ``client_id`` is the caller's
``ldo_id``, unique per tenant: ``add_ldo`` inserts or, if that tenant already has the client
id (or the id exists), leaves the existing row alone and says so.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sluiceway.store.db import StoreBase, rfc3339
from sluiceway.store.schema import ldos


def _row(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["created_at"] = rfc3339(row["created_at"])
    return out


class LdosMixin(StoreBase):
    async def add_ldo(self, values: dict[str, Any]) -> bool:
        """Insert one row (all columns of ``ldos``). False if the id or the tenant's
        ``client_id`` exists already (the existing row is kept as it is)."""
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        stmt = insert(ldos).values(**values).on_conflict_do_nothing()
        async with self.engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount > 0

    async def get_ldo(self, tenant: str, ldo_id: str) -> dict[str, Any] | None:
        return await self._one(sa.and_(ldos.c.tenant == tenant, ldos.c.id == ldo_id))

    async def get_ldo_by_client_id(self, tenant: str, client_id: str) -> dict[str, Any] | None:
        return await self._one(sa.and_(ldos.c.tenant == tenant, ldos.c.client_id == client_id))

    async def _one(self, where: Any) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(ldos).where(where))).mappings().first()
        return _row(row) if row is not None else None

    async def list_ldos(self, tenant: str, *, skip: int = 0, limit: int = 100) -> tuple[int, list[dict[str, Any]]]:
        """(how many the tenant has, rows ``skip``..``skip + limit`` oldest first)."""
        t = ldos
        q = (sa.select(t).where(t.c.tenant == tenant).order_by(t.c.created_at, t.c.id).offset(skip).limit(limit))
        async with self.engine.connect() as conn:
            total = (await conn.execute(sa.select(sa.func.count()).select_from(t).where(t.c.tenant == tenant))).scalar()
            rows = (await conn.execute(q)).mappings().all()
        return int(total or 0), [_row(r) for r in rows]

    async def delete_ldo(self, tenant: str, ldo_id: str) -> bool:
        async with self.engine.begin() as conn:
            res = await conn.execute(sa.delete(ldos).where(ldos.c.tenant == tenant, ldos.c.id == ldo_id))
        return res.rowcount > 0
