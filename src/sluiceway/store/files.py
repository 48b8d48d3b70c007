"""Collector file states: discovery, claims with a lease, outcomes, the CLI's list and retry.

One row per ``(source, location, key)``. The state machine (docs/logs.md)::

    discovered ─▶ pending ──claim──▶ processing ──▶ completed
                    ▲                 │   │
                    │    lease over ──┘   └──▶ failed ──(next_attempt_at)──▶ processing …
                    │                               └──(attempts = max)──▶ parked
                    └── version changed (any state), or ``sluice files retry``

- ``sync_files``: keys seen in a listing. New keys are inserted ``pending``; a key whose
  version (ETag, or inode-mtime-size) changed goes back to ``pending`` with its counters
  reset, whatever its state; unchanged keys are not touched.
- ``claim_files``: one statement marks up to ``limit`` eligible rows ``processing`` under a
  fresh claim id and lease, counting an attempt (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
  so several gateways never claim the same row). Eligible: ``pending``; ``failed`` whose
  ``next_attempt_at`` has come; ``processing`` whose lease is over (a crashed worker) —
  unless that was its last attempt, then it is ``parked``.
- ``renew_lease`` / ``finish_file``: only the current claim may extend or finish a row, so a
  worker whose lease was taken back cannot overwrite its successor's outcome.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from sluiceway.record import utcnow
from sluiceway.store.db import StoreBase, chunked, rfc3339
from sluiceway.store.schema import files

STATUSES = ("pending", "processing", "completed", "failed", "parked")


class Listed(NamedTuple):
    key: str
    version: str
    size: int | None
    modified_at: datetime | None


class FileRow(NamedTuple):
    source: str
    location: str
    key: str
    version: str
    size: int | None
    modified_at: datetime | None
    status: str
    attempts: int
    claim: str | None

    @classmethod
    def of(cls, row: Any) -> "FileRow":
        return cls(*(row[f] for f in cls._fields))


def _eligible(now: datetime) -> Any:
    f = files.c
    return sa.or_(
        f.status == "pending",
        sa.and_(f.status == "failed", sa.or_(f.next_attempt_at.is_(None), f.next_attempt_at <= now)),
        sa.and_(f.status == "processing", f.lease_until < now),
    )


def public(row: Any) -> dict[str, Any]:
    d = {str(k): v for k, v in dict(row).items() if k != "claim"}
    for k in ("modified_at", "lease_until", "next_attempt_at", "discovered_at", "updated_at", "started_at",
              "completed_at"):
        d[k] = rfc3339(d[k])
    return d


class FilesMixin(StoreBase):
    async def file_versions(self, source: str, location: str) -> dict[str, str]:
        q = sa.select(files.c.key, files.c.version).where(files.c.source == source, files.c.location == location)
        async with self.engine.connect() as conn:
            return {k: v for k, v in (await conn.execute(q)).all()}

    async def sync_files(self, source: str, location: str, listed: Iterable[Listed]) -> tuple[int, int]:
        """Record a listing: returns (new keys, changed keys)."""
        known = await self.file_versions(source, location)
        now = utcnow()
        new, changed = [], []
        for item in listed:
            v = known.get(item.key)
            if v is None:
                new.append({"source": source, "location": location, "key": item.key, "version": item.version,
                            "size": item.size, "modified_at": item.modified_at, "status": "pending", "attempts": 0,
                            "discovered_at": now, "updated_at": now})
            elif v != item.version:
                changed.append(item)
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        async with self.engine.begin() as conn:
            for chunk in chunked(new, 500):
                await conn.execute(insert(files).values(chunk).on_conflict_do_nothing())
            for item in changed:
                await conn.execute(
                    sa.update(files).where(files.c.source == source, files.c.location == location,
                                           files.c.key == item.key)
                    .values(version=item.version, size=item.size, modified_at=item.modified_at, status="pending",
                            attempts=0, claim=None, lease_until=None, next_attempt_at=None, last_error=None,
                            record_count=None, bad_line_count=None, bad_lines=None, updated_at=now,
                            completed_at=None))
        return len(new), len(changed)

    async def claim_files(self, source: str, location: str, *, lease: float, max_attempts: int,
                          limit: int = 1, now: datetime | None = None) -> list[FileRow]:
        now = now or utcnow()
        f = files.c
        mine = (f.source == source, f.location == location)
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.update(files).where(*mine, f.status == "processing", f.lease_until < now,
                                       f.attempts >= max_attempts)
                .values(status="parked", claim=None, lease_until=None, updated_at=now,
                        last_error=sa.func.coalesce(f.last_error + "; ", "")
                        + "lease expired on the last attempt (worker crashed or stalled?)"))
            sub = sa.select(f.key).where(*mine, _eligible(now)).order_by(f.discovered_at, f.key).limit(limit)
            if self.dialect == "postgresql":
                sub = sub.with_for_update(skip_locked=True)
            picked = sub.cte("picked")  # evaluated once (a subquery in IN may be rescanned)
            claim = str(uuid.uuid4())
            stmt = (sa.update(files).where(*mine, _eligible(now), f.key.in_(sa.select(picked.c.key)))
                    .values(status="processing", claim=claim, attempts=f.attempts + 1, started_at=now,
                            lease_until=now + timedelta(seconds=lease), updated_at=now)
                    .returning(*(f[c] for c in FileRow._fields)))
            rows = (await conn.execute(stmt)).mappings().all()
        return [FileRow.of(r) for r in rows]

    async def renew_lease(self, row: FileRow, lease: float) -> bool:
        """Extend the lease of a claimed row; False if the claim was lost."""
        now = utcnow()
        return await self._update_claimed(row, lease_until=now + timedelta(seconds=lease), updated_at=now)

    async def finish_file(self, row: FileRow, *, status: str, version: str | None = None,
                          record_count: int | None = None, bad_line_count: int | None = None,
                          bad_lines: list[dict[str, Any]] | None = None, error: str | None = None,
                          next_attempt_at: datetime | None = None) -> bool:
        """Record the outcome of a claim (``completed``, ``failed`` or ``parked``); False if
        the claim was lost meanwhile (the row is then left to its new owner)."""
        now = utcnow()
        return await self._update_claimed(
            row, status=status, version=version or row.version, claim=None, lease_until=None,
            record_count=record_count, bad_line_count=bad_line_count, bad_lines=bad_lines,
            last_error=error[:2000] if error else None, next_attempt_at=next_attempt_at, updated_at=now,
            completed_at=now if status == "completed" else None)

    async def release_file(self, row: FileRow) -> bool:
        """Hand a claimed file back (``pending``, the attempt not counted): a clean shutdown."""
        return await self._update_claimed(row, status="pending", claim=None, lease_until=None,
                                          attempts=files.c.attempts - 1, updated_at=utcnow())

    async def _update_claimed(self, row: FileRow, **values: Any) -> bool:
        f = files.c
        async with self.engine.begin() as conn:
            result = await conn.execute(
                sa.update(files).where(f.source == row.source, f.location == row.location, f.key == row.key,
                                       f.claim == row.claim, f.status == "processing").values(**values))
        return result.rowcount == 1

    async def list_files(self, *, source: str | None = None, status: str | None = None,
                         limit: int = 1000) -> list[dict[str, Any]]:
        f = files.c
        q = sa.select(files)
        if source:
            q = q.where(f.source == source)
        if status:
            q = q.where(f.status == status)
        q = q.order_by(f.source, f.location, f.key).limit(limit)
        async with self.engine.connect() as conn:
            return [public(r) for r in (await conn.execute(q)).mappings().all()]

    async def retry_files(self, *, key: str | None = None, source: str | None = None,
                          all_failed: bool = False) -> int:
        """Back to ``pending`` with attempts reset: one key (any state but ``processing``), or
        with ``all_failed`` every ``failed`` and ``parked`` file. Returns the rows changed."""
        f = files.c
        conds = [f.status != "processing"]
        if key is not None:
            conds.append(f.key == key)
        if all_failed:
            conds.append(f.status.in_(("failed", "parked")))
        if source:
            conds.append(f.source == source)
        if key is None and not all_failed:
            raise ValueError("retry_files needs a key or all_failed")
        async with self.engine.begin() as conn:
            result = await conn.execute(sa.update(files).where(*conds).values(
                status="pending", attempts=0, next_attempt_at=None, claim=None, lease_until=None,
                updated_at=utcnow()))
        return max(result.rowcount, 0)
