"""Move rows older than a cutoff from a store table to the object store, losing and
duplicating nothing even when interrupted at any step.

Rows are exported in chunks (``chunk_rows``, oldest first by ``(time, id)``) as gzip JSON
Lines or Parquet (``formats``), one object per chunk, named from the rows it holds:
``<prefix>/<table>/YYYY/MM/DD/<table>-<first time>-<digest of the ids>-<rows>.<jsonl.gz|parquet>``.
Each chunk goes through these steps, each one safe to repeat:

1. write the object, then its manifest ``<object>.manifest.json`` with ``state: exported``,
   the row count, the object's sha256, the time range and the ids;
2. verify: read the object back, check its sha256 and its row count;
3. delete exactly the manifest's ids, in one transaction;
4. rewrite the manifest with ``state: complete``.

A run first finishes what an earlier run left in ``exported`` state (steps 2–4: ids already
gone are simply not deleted again), so a crash between export and delete never leaves the
same rows in two objects, and a crash after the delete never loses the rows (they are in the
verified object). Only then are new chunks exported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa

from sluiceway.archive.formats import get_format
from sluiceway.record import utcnow
from sluiceway.store.db import chunked, rfc3339
from sluiceway.store.schema import metadata as schema

if TYPE_CHECKING:
    from sluiceway.objectstore import ObjectStore
    from sluiceway.store import Store

# table → its time column
TABLES: dict[str, str] = {"records": "received_at", "feedback": "created_at", "ldos": "created_at", "logs": "time"}


@dataclass
class ArchiveSummary:
    table: str
    cutoff: str
    chunks: int = 0
    rows: int = 0
    resumed: int = 0  # chunks an interrupted run had exported, finished by this one
    objects: list[str] | None = None


class Archiver:
    def __init__(self, store: "Store", objects: "ObjectStore", table: str, cutoff: datetime, *,
                 chunk_rows: int = 50_000, prefix: str = "archive", file_format: str = "jsonl.gz",
                 on_progress: Callable[[int], None] | None = None, exclusive: bool = False):
        """``exclusive``: the caller holds the table's archive lock (``jobs.archive_lock``), so
        no one else writes these objects now, and the staging files an interrupted run left
        beside an object it writes again are deleted first (a local store's ``<key>#<digits>``)."""
        if table not in TABLES:
            raise ValueError(f"cannot archive {table!r}; tables: {', '.join(TABLES)}")
        if table not in schema.tables:
            raise ValueError(f"table {table!r} is not part of this store's schema")
        self.store = store
        self.objects = objects
        self.table = schema.tables[table]
        self.time = self.table.c[TABLES[table]]
        self.id = self.table.c.id
        self.cutoff = cutoff
        self.chunk_rows = chunk_rows
        self.prefix = f"{prefix.strip('/')}/{table}"
        self.format_name = file_format
        self.format = get_format(file_format)
        self.on_progress = on_progress
        self.exclusive = exclusive

    async def count(self) -> int:
        q = sa.select(sa.func.count()).select_from(self.table).where(self.time < self.cutoff)
        async with self.store.engine.connect() as conn:
            return int((await conn.execute(q)).scalar() or 0)

    async def run(self) -> ArchiveSummary:
        summary = ArchiveSummary(self.table.name, rfc3339(self.cutoff) or "", objects=[])
        for manifest_key, manifest in await self._unfinished():
            await self._finish(manifest_key, manifest)
            summary.resumed += 1
            summary.objects.append(manifest["object"])
        while True:
            rows = await self._next_chunk()
            if not rows:
                return summary
            key, manifest = await self._export(rows)
            await self._finish(f"{key}.manifest.json", manifest)
            summary.chunks += 1
            summary.rows += len(rows)
            summary.objects.append(key)

    # -- steps ----------------------------------------------------------------------------
    async def _next_chunk(self) -> list[dict[str, Any]]:
        q = sa.select(self.table).where(self.time < self.cutoff).order_by(self.time, self.id).limit(self.chunk_rows)
        async with self.store.engine.connect() as conn:
            return [{str(k): v for k, v in r.items()} for r in (await conn.execute(q)).mappings().all()]

    async def _export(self, rows: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        ids = [str(r["id"]) for r in rows]
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
        first, last = rows[0][self.time.name], rows[-1][self.time.name]
        key = (f"{self.prefix}/{first:%Y/%m/%d}/{self.table.name}-{first:%Y%m%dT%H%M%S}-{digest}-{len(rows)}"
               f".{self.format.extension}")
        data = self.format.encode(self.table, rows)
        sha = hashlib.sha256(data).hexdigest()
        await self.objects.put(key, data, content_type=self.format.content_type, metadata={"sluice-sha256": sha},
                               resent=self.exclusive)
        manifest = {
            "state": "exported", "table": self.table.name, "object": key, "format": self.format_name,
            "rows": len(rows), "sha256": sha,
            "bytes": len(data), "min_time": rfc3339(first), "max_time": rfc3339(last),
            "cutoff": rfc3339(self.cutoff), "columns": list(rows[0]), "exported_at": rfc3339(utcnow()), "ids": ids,
        }
        await self.objects.put(f"{key}.manifest.json", orjson.dumps(manifest), content_type="application/json",
                               resent=self.exclusive)
        return key, manifest

    async def _finish(self, manifest_key: str, manifest: dict[str, Any]) -> None:
        data = await self.objects.get(manifest["object"])
        if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
            raise RuntimeError(f"archive object {manifest['object']} does not match its manifest's sha256; "
                               "rows were not deleted")
        n = get_format(manifest.get("format", "jsonl.gz")).count(data)
        if n != manifest["rows"]:
            raise RuntimeError(f"archive object {manifest['object']} has {n} rows, its manifest says "
                               f"{manifest['rows']}; rows were not deleted")
        deleted = 0
        async with self.store.engine.begin() as conn:
            for part in chunked(manifest["ids"], 1000):
                deleted += (await conn.execute(sa.delete(self.table).where(self.id.in_(part)))).rowcount or 0
        manifest = {**manifest, "state": "complete", "deleted": deleted, "completed_at": rfc3339(utcnow())}
        await self.objects.put(manifest_key, orjson.dumps(manifest), content_type="application/json",
                               resent=self.exclusive)
        if self.on_progress is not None:
            self.on_progress(manifest["rows"])

    async def _unfinished(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        async for info in self.objects.list(self.prefix):
            if info.key.endswith(".manifest.json"):
                m = orjson.loads(await self.objects.get(info.key))
                if m.get("state") == "exported":
                    out.append((info.key, m))
        return sorted(out, key=lambda km: km[1]["min_time"])
