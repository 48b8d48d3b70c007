"""Tenants and their feedback sources, kept in the store so they change at run time.

A source row holds non-secret ``settings`` (JSON), ``secrets`` encrypted by
``secrets.SecretBox`` (the store never sees them in clear), ``enabled``, its pull interval,
its ``origin`` (``config``: declared in the configuration file and refreshed from it at every
start; ``api``: added at run time and left alone by the file) and the connector's ``cursor``
with the outcome of its last run.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets as _secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from sluiceway.errors import Conflict, NotFound
from sluiceway.record import utcnow
from sluiceway.store.db import StoreBase, rfc3339
from sluiceway.store.schema import feedback_sources, tenants


@dataclass(frozen=True)
class SourceRow:
    id: str
    tenant: str
    name: str
    type: str
    settings: dict[str, Any]
    secrets: str | None  # encrypted
    enabled: bool
    interval_seconds: float
    origin: str
    created_at: datetime
    updated_at: datetime
    cursor: dict[str, Any]
    last_run_at: datetime | None
    last_status: str | None

    def public(self, secret_names: list[str] | None = None) -> dict[str, Any]:
        """As shown by the CLI and the admin API: secrets only as masked names."""
        return {
            "id": self.id, "tenant": self.tenant, "name": self.name, "type": self.type, "settings": self.settings,
            "secrets": {k: "**********" for k in (secret_names or [])}, "enabled": self.enabled,
            "interval_seconds": self.interval_seconds, "origin": self.origin, "cursor": self.cursor,
            "created_at": rfc3339(self.created_at), "updated_at": rfc3339(self.updated_at),
            "last_run_at": rfc3339(self.last_run_at) if self.last_run_at else None, "last_status": self.last_status,
        }


def _source(row: Any) -> SourceRow:
    return SourceRow(**{k: row[k] for k in SourceRow.__dataclass_fields__})


class TenantsMixin(StoreBase):
    # -- tenants --------------------------------------------------------------------------
    async def create_tenant(self, tenant_id: str, name: str | None = None, *, exist_ok: bool = False) -> dict[str, Any]:
        async with self.engine.begin() as conn:
            row = (await conn.execute(sa.select(tenants).where(tenants.c.id == tenant_id))).mappings().first()
            if row is not None:
                if not exist_ok:
                    raise Conflict(f"tenant {tenant_id!r} already exists")
                return {"id": row["id"], "name": row["name"], "created_at": rfc3339(row["created_at"])}
            now = utcnow()
            await conn.execute(sa.insert(tenants).values(id=tenant_id, name=name, created_at=now))
        return {"id": tenant_id, "name": name, "created_at": rfc3339(now)}

    async def list_tenants(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sa.select(tenants).order_by(tenants.c.id))).mappings().all()
        return [{"id": r["id"], "name": r["name"], "created_at": rfc3339(r["created_at"])} for r in rows]

    async def tenant_exists(self, tenant_id: str) -> bool:
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.select(tenants.c.id).where(tenants.c.id == tenant_id))).first() is not None

    # -- sources --------------------------------------------------------------------------
    async def add_source(self, tenant: str, name: str, type: str, *, settings: dict[str, Any], secrets: str | None,
                         enabled: bool = True, interval_seconds: float = 600.0, origin: str = "api") -> SourceRow:
        if not await self.tenant_exists(tenant):
            raise NotFound(f"unknown tenant {tenant!r}; create it first (sluice tenants create {tenant})")
        now = utcnow()
        values = {"id": _secrets.token_hex(8), "tenant": tenant, "name": name, "type": type, "settings": settings,
                  "secrets": secrets, "enabled": enabled, "interval_seconds": interval_seconds, "origin": origin,
                  "created_at": now, "updated_at": now, "cursor": {}, "last_run_at": None, "last_status": None}
        try:
            async with self.engine.begin() as conn:
                await conn.execute(sa.insert(feedback_sources).values(**values))
        except sa.exc.IntegrityError:
            raise Conflict(f"tenant {tenant!r} already has a source named {name!r}") from None
        return SourceRow(**values)

    async def put_config_source(self, tenant: str, name: str, type: str, *, settings: dict[str, Any],
                                secrets: str | None, enabled: bool, interval_seconds: float) -> SourceRow:
        """Create or refresh a source declared in the configuration file (its cursor is kept)."""
        existing = await self.get_source(tenant, name)
        if existing is None:
            return await self.add_source(tenant, name, type, settings=settings, secrets=secrets, enabled=enabled,
                                         interval_seconds=interval_seconds, origin="config")
        values = {"type": type, "settings": settings, "secrets": secrets, "enabled": enabled,
                  "interval_seconds": interval_seconds, "origin": "config", "updated_at": utcnow()}
        if existing.type != type:
            values["cursor"] = {}
        await self._update_source(existing.id, values)
        return await self.get_source(tenant, name)  # type: ignore[return-value]

    async def list_sources(self, tenant: str | None = None) -> list[SourceRow]:
        q = sa.select(feedback_sources).order_by(feedback_sources.c.tenant, feedback_sources.c.name)
        if tenant is not None:
            q = q.where(feedback_sources.c.tenant == tenant)
        async with self.engine.connect() as conn:
            return [_source(r) for r in (await conn.execute(q)).mappings().all()]

    async def get_source(self, tenant: str, name: str) -> SourceRow | None:
        q = sa.select(feedback_sources).where(feedback_sources.c.tenant == tenant, feedback_sources.c.name == name)
        async with self.engine.connect() as conn:
            row = (await conn.execute(q)).mappings().first()
        return _source(row) if row else None

    async def get_source_by_id(self, source_id: str) -> SourceRow | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(feedback_sources).where(feedback_sources.c.id == source_id))
                   ).mappings().first()
        return _source(row) if row else None

    async def update_source(self, tenant: str, name: str, **values: Any) -> SourceRow:
        """Change ``settings``, ``secrets``, ``enabled`` or ``interval_seconds``."""
        row = await self.get_source(tenant, name)
        if row is None:
            raise NotFound(f"tenant {tenant!r} has no source named {name!r}")
        allowed = {"settings", "secrets", "enabled", "interval_seconds"}
        bad = set(values) - allowed
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}")
        await self._update_source(row.id, {**values, "updated_at": utcnow()})
        return await self.get_source(tenant, name)  # type: ignore[return-value]

    async def remove_source(self, tenant: str, name: str) -> None:
        async with self.engine.begin() as conn:
            n = (await conn.execute(sa.delete(feedback_sources).where(
                feedback_sources.c.tenant == tenant, feedback_sources.c.name == name))).rowcount
        if not n:
            raise NotFound(f"tenant {tenant!r} has no source named {name!r}")

    async def save_source_run(self, source_id: str, *, status: str, cursor: dict[str, Any] | None = None,
                              at: datetime | None = None) -> None:
        """Record a run's outcome; ``cursor`` (when given) moves the high-water mark."""
        values: dict[str, Any] = {"last_run_at": at or utcnow(), "last_status": status}
        if cursor is not None:
            values["cursor"] = cursor
        await self._update_source(source_id, values)

    @contextlib.asynccontextmanager
    async def source_lock(self, source_id: str) -> AsyncIterator[bool]:
        """Whether this process may run the source now. PostgreSQL: a session advisory lock,
        so of several gateways on one database only one runs it; SQLite: always (one
        delivering process per data dir)."""
        if self.dialect != "postgresql":
            yield True
            return
        key = int.from_bytes(hashlib.sha256(b"sluice-source:" + source_id.encode()).digest()[:8], "big", signed=True)
        async with self.engine.connect() as conn:
            got = bool((await conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar())
            try:
                yield got
            finally:
                if got:
                    await conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})

    async def _update_source(self, source_id: str, values: dict[str, Any]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(sa.update(feedback_sources).where(feedback_sources.c.id == source_id).values(**values))
