"""Scheduled pulls (APScheduler), following the sources in the store as they change.

Every ``refresh_interval`` the enabled pull sources are read from the store and the jobs
brought in line: new sources get a job, removed or disabled ones lose it, a changed interval
reschedules it. Each job runs on an interval with jitter, never overlapping itself
(``max_instances=1``, ``coalesce``). With several gateways on one PostgreSQL database a run
takes the source's advisory lock and skips if another gateway holds it or ran the source
less than half an interval ago, so each scheduled run happens on one gateway.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sluiceway.feedback.connectors import CONNECTORS
from sluiceway.record import UTC, utcnow
from sluiceway.sources.feedback.runner import AppendRecords, run_source
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    from sluiceway.sources.feedback.config import FeedbackSourceConfig
    from sluiceway.store import Store
    from sluiceway.store.tenants import SourceRow

log = get_logger("sluiceway.scheduler")


class PullScheduler:
    def __init__(self, store: "Store", config: "FeedbackSourceConfig", append: AppendRecords):
        self.store = store
        self.config = config
        self.append = append
        self._sched: Any = None
        self._intervals: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.runs = 0  # completed runs (for tests and metrics)

    async def start(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self._sched = AsyncIOScheduler(timezone=UTC)
        self._sched.start()
        await self.refresh()
        self._task = asyncio.create_task(self._refresh_loop(), name="feedback-scheduler")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._sched is not None:
            self._sched.shutdown(wait=False)
            self._sched = None

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.refresh_interval)
            try:
                await self.refresh()
            except Exception as e:  # noqa: BLE001 - the store may be briefly unavailable
                log.warning("cannot refresh feedback sources", error=str(e))

    async def refresh(self) -> None:
        from apscheduler.triggers.interval import IntervalTrigger

        rows = [r for r in await self.store.list_sources() if r.enabled and r.type in CONNECTORS]
        wanted = {r.id: r for r in rows}
        for job_id in list(self._intervals):
            if job_id not in wanted:
                self._sched.remove_job(job_id)
                del self._intervals[job_id]
        for r in rows:
            if self._intervals.get(r.id) == r.interval_seconds:
                continue
            trigger = IntervalTrigger(seconds=r.interval_seconds, jitter=min(60.0, r.interval_seconds * 0.1))
            self._sched.add_job(self._job, trigger, args=[r.id], id=r.id, replace_existing=True, max_instances=1,
                                coalesce=True, next_run_time=self._first_run(r), misfire_grace_time=None)
            self._intervals[r.id] = r.interval_seconds
            log.info("feedback source scheduled", tenant=r.tenant, source=r.name, type=r.type,
                     interval_s=r.interval_seconds)

    @staticmethod
    def _first_run(r: "SourceRow") -> Any:
        now = utcnow()
        due = r.last_run_at + timedelta(seconds=r.interval_seconds) if r.last_run_at else now
        return max(due, now) + timedelta(seconds=random.uniform(0, min(5.0, r.interval_seconds * 0.1)))

    async def _job(self, source_id: str) -> None:
        async with self.store.source_lock(source_id) as mine:
            if not mine:
                return
            row = await self.store.get_source_by_id(source_id)
            if row is None or not row.enabled:
                return
            if row.last_run_at and (utcnow() - row.last_run_at).total_seconds() < row.interval_seconds / 2 \
                    and row.last_status and not row.last_status.startswith("running"):
                return  # another gateway ran it this interval
            try:
                await run_source(self.store, row, self.append, http_timeout=self.config.http_timeout,
                                 max_attempts=self.config.max_attempts, max_wait=self.config.max_wait)
            except Exception:  # noqa: BLE001 - logged and recorded by run_source; retried next interval
                pass
            finally:
                self.runs += 1
