"""Running archives: once (``sluice archive``) or on a schedule (``archive.jobs``, in the
delivering process of a gateway)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sluiceway.archive.archiver import Archiver, ArchiveSummary
from sluiceway.fsutil import exclusive_lock
from sluiceway.objectstore import open_destination
from sluiceway.record import utcnow
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    from sluiceway.config import Config
    from sluiceway.config.model import ArchiveJob
    from sluiceway.store import Store

log = get_logger("sluiceway.archive")


class ArchiveBusy(Exception):
    """Another run is archiving the same table of the same data dir, or of the same PostgreSQL
    database."""


@contextlib.contextmanager
def archive_lock(data_dir: Path, table: str) -> Iterator[None]:
    """One archive run per table and data dir at a time (``ArchiveBusy`` otherwise), e.g. a
    scheduled job and ``sluice archive``. Within it a run may clear the staging files an
    interrupted run left beside the objects it writes again: no one else is writing them."""
    data_dir.mkdir(parents=True, exist_ok=True)
    busy = f"another archive run of table {table!r} is in progress on {data_dir}"
    with exclusive_lock(data_dir / f"archive-{table}.lock", lambda: ArchiveBusy(busy)):
        yield


@contextlib.asynccontextmanager
async def archive_run_lock(data_dir: Path, store: "Store", table: str) -> AsyncIterator[None]:
    """``archive_lock`` and, on PostgreSQL, the same lock database-wide: gateways with their own
    data dirs sharing one database (and so one archive destination) run one archive of a table
    at a time between them."""
    with archive_lock(data_dir, table):
        async with store.try_lock(f"archive:{table}") as got:
            if not got:
                raise ArchiveBusy(f"another archive run of table {table!r} is in progress on a gateway sharing "
                                  "this database")
            yield


def archiver(config: "Config", store: "Store", table: str, older_than: float,
             on_progress: Callable[[int], None] | None = None, file_format: str | None = None) -> Archiver:
    """``file_format``: ``jsonl.gz`` or ``parquet``; default ``archive.format``. Run it inside
    ``archive_run_lock`` (it deletes what an interrupted run left beside the objects it writes)."""
    a = config.archive
    objects = open_destination(a, config.data_dir / "objects")
    return Archiver(store, objects, table, utcnow() - timedelta(seconds=older_than), chunk_rows=a.chunk_rows,
                    prefix=a.prefix, file_format=file_format or a.format, on_progress=on_progress, exclusive=True)


async def run_job(config: "Config", store: "Store", job: "ArchiveJob") -> ArchiveSummary | None:
    """Run one job; None when another run of its table is in progress (this turn is skipped)."""
    a = archiver(config, store, job.table, job.older_than, file_format=job.format)
    try:
        async with archive_run_lock(config.data_dir, store, job.table):
            summary = await a.run()
    except ArchiveBusy as e:
        log.info("archive skipped", table=job.table, reason=str(e))
        return None
    log.info("archive done", table=job.table, rows=summary.rows, chunks=summary.chunks, resumed=summary.resumed,
             cutoff=summary.cutoff)
    return summary


async def schedule(config: "Config", store: "Store", first_run_after: float = 60.0) -> None:
    """Run every job at its interval, forever (a failed run is logged and retried next time);
    the first runs ``first_run_after`` seconds after start."""
    jobs = config.archive.jobs
    due = {i: first_run_after for i in range(len(jobs))}
    while jobs:
        i = min(due, key=due.__getitem__)
        wait = due[i]
        await asyncio.sleep(wait)
        for k in due:
            due[k] -= wait
        try:
            await run_job(config, store, jobs[i])
        except Exception as e:  # noqa: BLE001 - resumable: the next run finishes what this one began
            log.warning("archive failed; retried at the next interval", table=jobs[i].table, error=str(e))
        due[i] = jobs[i].every
