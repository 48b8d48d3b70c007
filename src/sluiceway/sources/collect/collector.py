"""The collector loop shared by the ``bucket`` and ``directory`` sources.

Every ``scan_interval``: list the store (every page), record new and changed keys in the
``files`` table (``store.files``), then let ``concurrency`` workers claim eligible files one
at a time and process them (``process.FileJob``) until none is left. Outcomes:

- all batches durable and the bad-line share within ``max_bad_share`` → ``completed``
  (record count, bad-line count and the first bad lines kept on the row);
- any error (corrupt gzip, unreadable file, S3 or database trouble, too many bad lines) →
  ``failed`` with ``next_attempt_at`` after an exponential backoff with jitter, or
  ``parked`` on the ``max_attempts``-th attempt. ``sluice files retry`` un-parks;
- the file vanished → ``parked`` ("no longer exists"); a new version is rediscovered;
- the lease was taken back meanwhile → nothing (the new owner records the outcome).

Stopping (``aclose``) cancels the workers and hands their files back (``pending``) so the
next start does not wait for the lease to run out. A crash leaves them ``processing``:
they are taken back once their lease is over.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from sluiceway.logs.decoders import DecodeError
from sluiceway.record import utcnow
from sluiceway.sinks.delivery import backoff
from sluiceway.sources.collect.process import ClaimLost, FileJob, FileRejected, open_object, version_of
from sluiceway.store.files import Listed
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    from sluiceway.objectstore import ObjectStore
    from sluiceway.sources.collect.config import CollectorConfig
    from sluiceway.store import Store
    from sluiceway.store.files import FileRow

log = get_logger("sluiceway.collect")


class Collector:
    def __init__(self, config: "CollectorConfig", store: "Store", objects: "ObjectStore",
                 append: Callable[[list[bytes]], Awaitable[Any]]):
        self.cfg = config
        self.store = store
        self.objects = objects
        self.append = append
        self.location = config.location
        self._task: asyncio.Task[None] | None = None
        self._active: dict[str, "FileRow"] = {}
        self.scans = 0  # completed scans (tests, metrics)

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"collector-{self.cfg.name}")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for row in list(self._active.values()):  # hand interrupted files back
            with contextlib.suppress(Exception):
                await self.store.release_file(row)
        self._active.clear()
        await self.objects.aclose()

    async def _loop(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self.cfg.scan_interval)

    async def tick(self) -> None:
        """One scan, then process every eligible file. Errors are logged, never raised."""
        try:
            await self.scan()
        except Exception as e:  # noqa: BLE001 - retried next interval; files keep their states
            log.warning("cannot list files", source=self.cfg.name, location=self.location, error=str(e))
        try:
            await asyncio.gather(*(self._worker() for _ in range(self.cfg.concurrency)))
        except Exception as e:  # noqa: BLE001 - e.g. the store is briefly unavailable
            log.warning("cannot claim files", source=self.cfg.name, error=str(e))

    # -- discovery ------------------------------------------------------------------------
    def wanted(self, key: str) -> bool:
        return any(fnmatch.fnmatchcase(key, p) for p in self.cfg.include) and \
            not any(fnmatch.fnmatchcase(key, p) for p in self.cfg.exclude)

    async def scan(self) -> tuple[int, int]:
        newest = utcnow() - timedelta(seconds=self.cfg.min_age)
        listed = []
        async for info in self.objects.list():
            if self.wanted(info.key) and (not self.cfg.min_age or info.last_modified <= newest):
                listed.append(Listed(info.key, version_of(info.etag, info.size, info.last_modified), info.size,
                                     info.last_modified))
        new, changed = await self.store.sync_files(self.cfg.name, self.location, listed)
        self.scans += 1
        if new or changed:
            log.info("files discovered", source=self.cfg.name, new=new, changed=changed, listed=len(listed))
        return new, changed

    # -- processing -----------------------------------------------------------------------
    async def _worker(self) -> None:
        while True:
            rows = await self.store.claim_files(self.cfg.name, self.location, lease=self.cfg.lease,
                                                max_attempts=self.cfg.max_attempts, limit=1)
            if not rows:
                return
            await self.process(rows[0])

    async def process(self, row: "FileRow") -> str:
        """Process one claimed file and record its outcome; returns the status written."""
        self._active[row.key] = row
        try:
            return await self._process(row)
        finally:
            self._active.pop(row.key, None)

    async def _process(self, row: "FileRow") -> str:
        cfg = self.cfg
        job: FileJob | None = None
        try:
            version, modified, chunks = await open_object(self.objects, row.key, cfg.chunk_bytes)
            job = FileJob(cfg, row.key, version, modified, self.append,
                          lambda: self.store.renew_lease(row, cfg.lease))
            out = await job.run(chunks)
        except ClaimLost:
            log.warning("file taken back by another worker", source=cfg.name, key=row.key)
            return "lost"
        except FileNotFoundError:
            await self.store.finish_file(row, status="parked", error="file no longer exists")
            return "parked"
        except asyncio.CancelledError:
            raise
        except Exception as e:  # noqa: BLE001 - every failure of a file is recorded on its row
            return await self._failed(row, e, job.out if job is not None else None)
        await self.store.finish_file(row, status="completed", version=out.version, record_count=out.records,
                                     bad_line_count=out.bad, bad_lines=out.bad_lines or None)
        if out.bad:
            log.warning("file completed with bad lines", source=cfg.name, key=row.key, records=out.records,
                        bad=out.bad, first=out.bad_lines[0])
        return "completed"

    async def _failed(self, row: "FileRow", e: Exception, out: Any) -> str:
        cfg = self.cfg
        error = str(e) if isinstance(e, (DecodeError, FileRejected)) else f"{type(e).__name__}: {e}"
        parked = row.attempts >= cfg.max_attempts
        delay = min(cfg.retry_max, cfg.retry_initial + backoff(row.attempts - 1, cfg.retry_initial, cfg.retry_max))
        status = "parked" if parked else "failed"
        await self.store.finish_file(
            row, status=status, error=error, version=out.version if out else None,
            record_count=out.records if out else None, bad_line_count=out.bad if out else None,
            bad_lines=(out.bad_lines or None) if out else None,
            next_attempt_at=None if parked else utcnow() + timedelta(seconds=delay))
        log.warning("file failed", source=cfg.name, key=row.key, attempt=row.attempts, status=status, error=error)
        return status
