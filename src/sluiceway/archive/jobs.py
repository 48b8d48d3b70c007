"""Running archives: once (``sluice archive``) or on a schedule (``archive.jobs``, in the
delivering process of a gateway)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from sluiceway.archive.archiver import Archiver, ArchiveSummary
from sluiceway.objectstore import open_destination
from sluiceway.record import utcnow
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    from sluiceway.config import Config
    from sluiceway.config.model import ArchiveJob
    from sluiceway.store import Store

log = get_logger("sluiceway.archive")


def archiver(config: "Config", store: "Store", table: str, older_than: float,
             on_progress: Callable[[int], None] | None = None, file_format: str | None = None) -> Archiver:
    """``file_format``: ``jsonl.gz`` or ``parquet``; default ``archive.format``."""
    a = config.archive
    objects = open_destination(a, config.data_dir / "objects")
    return Archiver(store, objects, table, utcnow() - timedelta(seconds=older_than), chunk_rows=a.chunk_rows,
                    prefix=a.prefix, file_format=file_format or a.format, on_progress=on_progress)


async def run_job(config: "Config", store: "Store", job: "ArchiveJob") -> ArchiveSummary:
    summary = await archiver(config, store, job.table, job.older_than, file_format=job.format).run()
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
