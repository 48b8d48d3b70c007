"""The running gateway: journal, store, auth, metrics and (by role) delivery.

Roles: ``all`` (one process: HTTP + delivery), ``http`` (a worker of several: appends to
its own journal partition) and ``delivery`` (the supervisor of several workers: delivers
every partition, serves no HTTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import os
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Literal

from sluiceway import registry
from sluiceway.blobs import BlobSpool
from sluiceway.errors import ConfigError, JournalCorrupt, JournalError, JournalFull, Unavailable
from sluiceway.http.auth import Authenticator
from sluiceway.http.responses import send_json
from sluiceway.journal import build_journal
from sluiceway.record import utcnow
from sluiceway.telemetry.logging import AccessLog, get_logger
from sluiceway.telemetry.metrics import Metrics

if TYPE_CHECKING:
    from sluiceway.config import Config
    from sluiceway.runtime.deliveries import DeliveryManager
    from sluiceway.store import Store
    from sluiceway.store.lite import LiteStore

log = get_logger("sluiceway.gateway")
JOURNAL_ERROR_RETRY = 5.0  # Retry-After when a journal write failed (disk full, I/O error)
Role = Literal["all", "http", "delivery"]


class Gateway:
    """``store``: by default a full ``Store`` on ``config.store_url``; HTTP workers pass a
    ``LiteStore`` (store/lite.py), which keeps SQLAlchemy out of their memory."""

    def __init__(self, config: "Config", role: Role = "all", worker_index: int | None = None,
                 access_log: AccessLog | None = None, store: "Store | LiteStore | None" = None):
        self.config = config
        self.role = role
        self.worker_index = worker_index
        self.metrics = Metrics()
        if store is None:
            from sluiceway.store import Store

            store = Store.from_url(config.store_url)
        self.store = store
        j = config.journal
        # The delivering process of several also writes when a background source (pulls) runs there.
        background = any(c.background for c in config.sources)
        writer_name = f"w{worker_index}" if worker_index is not None else ("pull" if role == "delivery" else None)
        self.journal = build_journal(config, writer=role != "delivery" or background, writer_name=writer_name,
                                     fsync_observer=self.metrics.journal_fsync_seconds.observe)
        self.auth = Authenticator(self.store, ttl=config.server.token_cache_ttl)
        self.allowed_streams = frozenset(config.server.streams)
        self.max_body_bytes = config.server.max_body_bytes
        # Access lines are info-level records (as uvicorn's): a level above info leaves them out.
        self.access_log = access_log or AccessLog(config.log.format,
                                                  enabled=config.log.access and config.log.level in ("debug", "info"))
        self.blobs = BlobSpool(config.data_dir, fsync=j.fsync)
        self.sources = [registry.implementation("source", c.type)(c.name, c, self) for c in config.sources]
        self.deliveries: DeliveryManager | None = None
        self._writer = None
        self._idem_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._closed = False
        self._lock_fd: int | None = None
        # Several processes (sluice serve): each snapshots its metrics for /metrics to merge.
        self.metrics_dir = config.data_dir / "metrics" if role != "all" else None

    async def open(self) -> None:
        """Open the store, the journal and (by role) delivery, sources and background tasks.
        If any of it fails, what was opened is closed again before the error propagates: a
        store's connection thread left running would keep the process from exiting."""
        try:
            await self._open()
        except BaseException:
            with contextlib.suppress(Exception):
                await self.aclose(drain=False)
            raise

    async def _open(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        if self.role in ("all", "delivery"):
            self.acquire_lock()
        if self.role == "all":
            self.blobs.purge_partials()  # sluice serve does this before starting its workers
        # In `sluice serve` the supervisor migrates (in a child process) before any role opens.
        await self.store.open(migrate=self.role == "all")
        try:
            await self.journal.open([s.name for s in self.config.sinks])
        except JournalCorrupt as e:
            log.error("this process's journal partition is damaged; stop the gateway and run sluice journal repair "
                      "(docs/operations.md, Damaged journal files)", error=str(e))
            raise
        if self.journal.is_writer:
            self._writer = self.journal.writer()
        if self.role in ("all", "delivery"):
            from sluiceway.runtime.deliveries import DeliveryManager

            self.deliveries = DeliveryManager(self.config, self.journal, self.store, self.metrics)
            await self.deliveries.start()
            self._tasks.append(asyncio.create_task(self._purge_idempotency(), name="idempotency-purge"))
            from sluiceway.runtime import blobsweep

            self._tasks.append(asyncio.create_task(blobsweep.run(self.blobs, self.journal, self.store, self.metrics),
                                                   name="blob-sweep"))
            for source in self.sources:
                if source.config.background:
                    await source.start()
            if self.config.archive.jobs:
                from sluiceway.archive.jobs import schedule

                self._tasks.append(asyncio.create_task(schedule(self.config, self.store), name="archive"))
        if self.role != "delivery":
            self._tasks.append(asyncio.create_task(self.access_log.run(), name="access-log"))
        if self.metrics_dir is not None:
            self._tasks.append(asyncio.create_task(self._snapshot_metrics(), name="metrics-snapshot"))
        tune_gc()
        log.info("gateway started", role=self.role, worker=self.worker_index, data_dir=str(self.config.data_dir),
                 sinks=[s.name for s in self.config.sinks])

    async def aclose(self, drain: bool = True) -> bool:
        """Flush open batches (within shutdown_timeout), then close. Safe to call twice."""
        if self._closed:
            return True
        self._closed = True
        ok = True
        if self.role in ("all", "delivery"):
            for source in self.sources:
                if source.config.background:
                    with contextlib.suppress(Exception):
                        await source.aclose()
        if self.deliveries is not None:
            if drain:
                ok = await self.deliveries.drain(self.config.server.shutdown_timeout)
            await self.deliveries.aclose()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.auth.aclose()
        self.access_log.flush()
        if self.metrics_dir is not None:
            self.metrics.remove_snapshot(self.metrics_dir)
        await self.journal.aclose()
        await self.store.aclose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        log.info("gateway stopped", role=self.role, worker=self.worker_index, flushed=ok)
        return ok

    def acquire_lock(self) -> None:
        """Take the data dir's delivery lock (idempotent); ConfigError if another process has it."""
        if self._lock_fd is None:
            self.config.data_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = _lock_data_dir(self.config.data_dir)

    # -- hot path -----------------------------------------------------------------------
    async def append(self, items: list[bytes]) -> tuple[int, int]:
        return await self._writer.append(items)

    def check_room(self, events: int = 1) -> None:
        """503 with Retry-After if the journal is full (call before reading a large body)."""
        retry = self.journal.full()
        if retry is not None:
            self.metrics.events_rejected.labels(reason="journal_full").inc(events)
            raise Unavailable("journal is full; retry later", retry_after=retry, code="journal_full")

    async def accept(self, items: list[bytes], stream: str) -> tuple[int, int]:
        """Append encoded records durably (returns after the fsync) and count them; 503 if the
        journal is full or its write failed (nothing is stored then). Returns the journal
        offsets of the first and last item (in ``partition_name``)."""
        fut = self.accept_soon(items)
        try:
            await fut
        except JournalError:
            pass  # accepted() raises it as a 503
        return self.accepted(fut, len(items), stream)

    def accept_soon(self, items: list[bytes]) -> "asyncio.Future[tuple[int, int]]":
        """``accept`` in two steps, for callers that cannot await: this queues the records
        (503 at once if the journal is full); once the future is done, ``accepted`` gives
        the span or raises the 503."""
        try:
            return self._writer.append_soon(items)
        except JournalError as e:
            raise self._refused(e, len(items)) from None

    def accepted(self, fut: "asyncio.Future[tuple[int, int]]", n: int, stream: str) -> tuple[int, int]:
        exc = fut.exception()
        if exc is not None:
            if isinstance(exc, JournalError):
                raise self._refused(exc, n) from None
            raise exc
        self.metrics.accepted(stream, n)
        return fut.result()

    def _refused(self, e: JournalError, n: int) -> Unavailable:
        if isinstance(e, JournalFull):
            self.metrics.events_rejected.labels(reason="journal_full").inc(n)
            return Unavailable(str(e), retry_after=e.retry_after, code="journal_full")
        # the write or sync failed (disk full, I/O error): nothing was stored
        self.metrics.events_rejected.labels(reason="journal_error").inc(n)
        log.error("journal append failed", error=str(e), events=n)
        return Unavailable(f"cannot store the events now ({e}); retry later", retry_after=JOURNAL_ERROR_RETRY,
                           code="journal_unavailable")

    @property
    def partition_name(self) -> str:
        """The journal partition this process appends to."""
        return self._writer.name

    def observe_request(self, route: str, method: str, status: int, started: float, *,
                        request_id: str | None = None, tenant: str | None = None, stream: str | None = None) -> None:
        seconds = time.perf_counter() - started
        self.metrics.observe_request(route, method, status, seconds)
        self.access_log.log(method, route if stream is None else route.replace("{stream}", stream), status,
                            seconds, request_id, tenant, stream)

    async def idempotent(self, tenant: str, key: str, send: Any,
                         produce: Callable[[], Awaitable[tuple[int, bytes]]]) -> int:
        """Run ``produce`` once per (tenant, key) within the window; repeats get the first answer."""
        lk = (tenant, key)
        lock = self._idem_locks.setdefault(lk, asyncio.Lock())
        try:
            async with lock:
                now = utcnow()
                hit = await self.store.idempotency_get(tenant, key, now)
                if hit is not None:
                    status, body = hit
                    await send_json(send, status, body, {"Idempotent-Replayed": "true"})
                    return status
                status, body = await produce()
                await self.store.idempotency_put(tenant, key, status, body,
                                                 now + timedelta(seconds=self.config.server.idempotency_window))
        finally:
            if not lock.locked() and self._idem_locks.get(lk) is lock:
                del self._idem_locks[lk]
        await send_json(send, status, body)
        return status

    def render_metrics(self) -> bytes:
        return self.metrics.render(self.metrics_dir)

    async def _snapshot_metrics(self) -> None:
        while True:
            try:
                self.metrics.write_snapshot(self.metrics_dir)
            except OSError as e:
                log.warning("cannot write metrics snapshot", error=str(e))
            await asyncio.sleep(1.0)

    async def _purge_idempotency(self) -> None:
        while True:
            await asyncio.sleep(600)
            with contextlib.suppress(Exception):
                await self.store.idempotency_purge(utcnow())

    # -- health -------------------------------------------------------------------------
    async def readiness(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        if self._writer is not None:
            retry = self.journal.full()
            checks["journal"] = self.journal.unavailable() or ("ok" if retry is None else "full")
        try:
            await asyncio.wait_for(self.store.ping(), 2.0)
            checks["store"] = "ok"
        except Exception as e:  # noqa: BLE001
            checks["store"] = f"error: {type(e).__name__}"
        return checks


def tune_gc() -> None:
    """Move everything alive after start-up out of the collector's way and collect the young
    generation less often: the ingest path allocates many short-lived containers, and the
    default thresholds spend a tenth of a busy core in the cyclic collector."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _lock_data_dir(data_dir) -> int:
    """One delivering process per data dir: a second ``sluice serve`` on it is refused."""
    fd = os.open(data_dir / "delivery.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(f"another sluice process is serving the data dir {data_dir}; "
                          "use a different --data-dir or --workers for more processes") from None
    return fd
