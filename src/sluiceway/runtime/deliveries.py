"""Builds sinks from config and runs one Delivery per (journal partition, sink)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from sluiceway import registry
from sluiceway.errors import JournalCorrupt, JournalError
from sluiceway.runtime.instance import instance_id
from sluiceway.sinks.context import SinkContext
from sluiceway.sinks.delivery import Delivery
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    from sluiceway.config import Config
    from sluiceway.journal import Journal
    from sluiceway.sinks.base import Sink
    from sluiceway.store import Store
    from sluiceway.telemetry.metrics import Metrics

log = get_logger("sluiceway.deliveries")
RESTART_MAX = 30.0  # seconds: the longest wait before restarting a delivery loop that keeps crashing
REPEAT_LOG = 300.0  # seconds: the same journal error is logged again after this, not at every refresh
RECLAIM_IDLE_EVERY = 60.0  # seconds between looks for abandoned, fully delivered partitions (Journal.reclaim_idle)


def build_sinks(config: "Config", store: "Store") -> list[tuple["Sink", object]]:
    attachments = [c for c in config.sinks if c.type == "attachments"]
    ctx = SinkContext(data_dir=config.data_dir, store=store, attachment_sinks=tuple(c.name for c in attachments),
                      attachment_streams={c.name: frozenset(c.streams) for c in attachments})
    return [(registry.implementation("sink", c.type)(c.name, c, ctx), c) for c in config.sinks]


class DeliveryManager:
    def __init__(self, config: "Config", journal: "Journal", store: "Store", metrics: "Metrics",
                 refresh_interval: float = 2.0):
        self.config = config
        self.journal = journal
        self.store = store
        self.metrics = metrics
        self.refresh_interval = refresh_interval
        self.reclaim_idle_every = RECLAIM_IDLE_EVERY
        self._idle_reclaimed_at: float | None = None  # monotonic; None: not yet (done at the first refresh)
        self.sinks = build_sinks(config, store)
        self.batch_prefix = f"{instance_id(config.data_dir)}-"
        self.deliveries: dict[tuple[str, str], Delivery] = {}
        self.tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._watcher: asyncio.Task[None] | None = None
        self._journal_error: tuple[str, float] | None = None  # last logged (message, when)

    async def start(self) -> None:
        self._spawn(self.journal.partitions())
        self._watcher = asyncio.create_task(self._watch(), name="delivery-watch")

    def _spawn(self, partitions) -> None:
        for part in partitions:
            for sink, cfg in self.sinks:
                key = (part.name, sink.name)
                if key in self.tasks:
                    continue
                first_for_sink = not any(s == sink.name for _, s in self.deliveries)
                d = Delivery(part, sink, cfg, self.store, self.metrics, handle_dead_letters=first_for_sink,
                             batch_prefix=self.batch_prefix)
                self.deliveries[key] = d
                self.tasks[key] = asyncio.create_task(self._guard(key, d), name=f"deliver-{part.name}-{sink.name}")

    async def _guard(self, key: tuple[str, str], d: Delivery) -> None:
        """Keep a delivery loop alive: an unexpected crash (a cursor that cannot be saved on a
        full disk, say) is logged and the loop restarted, after 1 s, then 2, 4, … up to
        ``RESTART_MAX`` s while it keeps crashing; a loop that ran ``RESTART_MAX`` s without
        crashing starts again from 1 s. The traceback is logged at the first crash of a series.
        At shutdown the wait is cut short and the loop tried once more; if it crashes then, it is
        left (its records stay in the journal), so a partition that cannot be read does not hold
        the shutdown for its whole deadline."""
        crashes = 0
        while True:
            started = time.monotonic()
            try:
                await d.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001
                self.metrics.delivery_crashes.labels(key[1]).inc()
                if d.draining:
                    log.error("delivery loop crashed while shutting down; its records stay in the journal",
                              partition=key[0], sink=key[1], error=f"{type(e).__name__}: {e}")
                    return
                if time.monotonic() - started >= RESTART_MAX:
                    crashes = 0
                delay = min(RESTART_MAX, 2.0 ** crashes)
                crashes += 1
                if crashes == 1:
                    log.exception("delivery loop crashed; restarting", partition=key[0], sink=key[1], retry_in=delay)
                else:
                    log.error("delivery loop crashed again; restarting", partition=key[0], sink=key[1],
                              crashes=crashes, retry_in=delay, error=f"{type(e).__name__}: {e}")
                await d.pause(delay)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_interval)
            try:
                try:
                    parts = await self.journal.refresh()
                    self.metrics.journal_unreadable.set(0)
                    if self._journal_error is not None:
                        log.info("the journal's partitions can all be read again")
                        self._journal_error = None
                except JournalError as e:  # what could be read is delivered; the rest waits
                    if isinstance(e, JournalCorrupt):
                        self.metrics.journal_unreadable.set(1)
                    if not self._repeated(str(e)):
                        if isinstance(e, JournalCorrupt):
                            log.error("a journal partition cannot be read; its records wait until it is repaired "
                                      "(`sluice journal repair`, with the gateway stopped)", error=str(e),
                                      repeated_every=f"{REPEAT_LOG:g}s")
                        else:  # e.g. the NATS server is away: the partitions known so far go on
                            log.error("the journal's partitions cannot be listed now; tried again shortly",
                                      error=str(e), repeated_every=f"{REPEAT_LOG:g}s")
                    parts = self.journal.partitions()
                self._spawn(parts)
                for (part, sink), d in self.deliveries.items():
                    self.metrics.journal_bytes.labels(part).set(d.partition.stats().bytes)
                for sink, v in self.lag().items():
                    self.metrics.sink_lag.labels(sink).set(v)
                await self._reclaim_idle()
            except Exception:  # noqa: BLE001
                log.exception("delivery watcher failed")

    async def _reclaim_idle(self) -> None:
        """At the first refresh, then every ``reclaim_idle_every`` seconds: free the space of
        partitions no process writes any more once they are fully delivered (``Journal.reclaim_idle``)."""
        now = time.monotonic()
        if self._idle_reclaimed_at is not None and now - self._idle_reclaimed_at < self.reclaim_idle_every:
            return
        self._idle_reclaimed_at = now
        await self.journal.reclaim_idle()

    def _repeated(self, message: str) -> bool:
        """True if this journal error was logged less than ``REPEAT_LOG`` ago (it is refreshed
        every few seconds: once is enough, then a reminder now and then)."""
        now = time.monotonic()
        last = self._journal_error
        if last is not None and last[0] == message and now - last[1] < REPEAT_LOG:
            return True
        self._journal_error = (message, now)
        return False

    def lag(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for (_, sink), d in self.deliveries.items():
            out[sink] = out.get(sink, 0) + d.lag
        return out

    async def drain(self, timeout: float) -> bool:
        """Flush what the journal holds to every sink, within ``timeout``. True if all sent."""
        if self._watcher:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        # Pick up partitions other processes created since the last refresh.
        with contextlib.suppress(Exception):
            self._spawn(await self.journal.refresh())
        for d in self.deliveries.values():
            d.drain()
        started = time.monotonic()
        pending = [t for t in self.tasks.values() if not t.done()]
        done = True
        if pending:
            _, still = await asyncio.wait(pending, timeout=timeout)
            done = not still
        for d in self.deliveries.values():
            d.stop()
        rest = [t for t in self.tasks.values() if not t.done()]
        if rest:
            await asyncio.wait(rest, timeout=5.0)
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)
        lag = self.lag()
        if any(lag.values()):
            log.warning("shutdown left records in the journal for the next start", lag=lag,
                        seconds=round(time.monotonic() - started, 2))
            done = False
        return done

    async def aclose(self) -> None:
        for d in self.deliveries.values():
            d.stop()
        tasks = [t for t in self.tasks.values() if not t.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._watcher:
            self._watcher.cancel()
        for sink, _ in self.sinks:
            with contextlib.suppress(Exception):
                await sink.aclose()
