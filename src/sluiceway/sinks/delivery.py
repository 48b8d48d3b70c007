"""The one delivery helper that drives every sink.

For each (journal partition, sink) pair a ``Delivery`` loop:

1. loads the sink's cursor; if a batch was pending when the process died, re-reads exactly
   that offset range so the sink sees the same batch (and derives the same keys);
2. collects a batch until ``max_records``, ``max_bytes`` or ``max_age`` is reached;
3. records the batch range as pending (durably), decodes it, filters by stream;
4. calls ``sink.send``; a ``TransientError`` (or any unexpected exception) is retried with
   exponential backoff and full jitter, honouring ``retry_after``; a ``PermanentError``
   splits the batch in halves until the refused records stand alone, and only those are
   dead-lettered (kept in the store, listable, retryable). Before each part of a split is
   sent, the cursor is moved to it (``acked`` up to the part, ``pending`` = the part) and the
   records refused so far are dead-lettered, so a restart re-sends exactly the part that was in
   flight, under the same key, and never stores an earlier part a second time;
5. acks the cursor only after ``send`` succeeded or the records were dead-lettered.

It also re-sends dead letters an operator asked to retry (``sluice deadletters retry``), split
the same way when the sink refuses them; the rows of each part are settled (deleted, or back to
"dead") before the next part is marked "sending" and sent, so a restart sends the part in flight
again alone, under its key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from typing import TYPE_CHECKING, Awaitable, Callable

from sluiceway.config.types import SinkConfigBase
from sluiceway.errors import JournalCorrupt, PermanentError, RejectedRecords, TransientError
from sluiceway.journal.base import Cursor, Entry, Partition
from sluiceway.record import RecordHead, decode_head
from sluiceway.sinks.base import Batch, Sink
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    from sluiceway.store import Store
    from sluiceway.telemetry.metrics import Metrics

log = get_logger("sluiceway.delivery")


def backoff(attempt: int, initial: float, maximum: float, multiplier: float = 2.0) -> float:
    """Full jitter: uniform(0, min(max, initial * multiplier**attempt))."""
    return random.uniform(0, min(maximum, initial * multiplier ** attempt))


class Delivery:
    def __init__(self, partition: Partition, sink: Sink, config: SinkConfigBase, store: "Store",
                 metrics: "Metrics | None" = None, *, dead_letter_poll: float = 2.0,
                 handle_dead_letters: bool = True, batch_prefix: str = ""):
        self.partition = partition
        self.sink = sink
        self.cfg = config
        self.store = store
        self.metrics = metrics
        self.consumer = config.name
        self.streams = frozenset(config.streams)
        self.dead_letter_poll = dead_letter_poll
        self.handle_dead_letters = handle_dead_letters  # one Delivery per sink re-sends dead letters
        # Prepended to Batch.partition (so to batch keys): the gateway's instance id, which
        # keeps keys of several gateways sharing a bucket apart.
        self.batch_prefix = batch_prefix
        self.acked = 0
        self._rejected: dict[int, str] = {}  # set by _send when the sink refused some records
        self._draining = False
        self._stopped = asyncio.Event()
        self._told = asyncio.Event()  # drain() or stop() was called

    # -- control --------------------------------------------------------------------------
    def drain(self) -> None:
        """Send what is in the journal now without waiting for batches to fill, then stop."""
        self._draining = True
        self._told.set()

    def stop(self) -> None:
        self._stopped.set()
        self._told.set()

    @property
    def draining(self) -> bool:
        return self._draining or self._stopped.is_set()

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if told to drain or stop meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._told.wait(), seconds)

    @property
    def lag(self) -> int:
        return max(0, self.partition.stats().last_offset - self.acked)

    # -- loop -----------------------------------------------------------------------------
    async def run(self) -> None:
        cursor = await self.partition.load_cursor(self.consumer)
        self.acked = cursor.acked
        if cursor.pending:
            first, last = cursor.pending
            entries = await self._read_range(first, last)
            if entries:
                await self._deliver(entries, first, last, resent=True)
            else:
                await self._ack(last)
        next_dl = time.monotonic()
        while not self._stopped.is_set():
            if self._draining and self.partition.stats().last_offset <= self.acked:
                return
            entries = await self._collect()
            if entries:
                await self._deliver(entries, entries[0].offset, entries[-1].offset)
            if self.handle_dead_letters and time.monotonic() >= next_dl:
                await self._retry_dead_letters()
                next_dl = time.monotonic() + self.dead_letter_poll

    async def _collect(self) -> list[Entry]:
        b = self.cfg.batch
        timeout = 0.0 if self._draining else min(self.dead_letter_poll, 0.5)
        if not await self._wait(self.acked, timeout):
            return []
        entries: list[Entry] = []
        size = 0
        deadline = time.monotonic() + b.max_age
        after = self.acked
        while True:
            try:
                more = await self.partition.read(after, b.max_records - len(entries), b.max_bytes - size)
            except JournalCorrupt:  # damage further on: what was read before it goes out first
                if entries:
                    return entries
                raise
            if more:
                entries.extend(more)
                size += sum(len(e.data) for e in more)
                after = more[-1].offset
            if len(entries) >= b.max_records or size >= b.max_bytes or self._draining:
                return entries
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._stopped.is_set():
                return entries
            await self._wait(after, remaining)

    async def _wait(self, after: int, timeout: float) -> bool:
        if timeout <= 0:
            return self.partition.stats().last_offset > after
        waiter = asyncio.ensure_future(self.partition.wait(after, timeout))
        stopper = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not waiter.done():
                waiter.cancel()
        return waiter.done() and not waiter.cancelled() and bool(waiter.result())

    async def _read_range(self, first: int, last: int) -> list[Entry]:
        out: list[Entry] = []
        after = first - 1
        while after < last:
            more = await self.partition.read(after, last - after, 1 << 62)
            more = [e for e in more if e.offset <= last]
            if not more:
                break
            out.extend(more)
            after = more[-1].offset
        return out

    async def _ack(self, offset: int) -> None:
        await self.partition.save_cursor(self.consumer, Cursor(acked=offset, pending=None))
        self.acked = offset  # sink_lag (summed over partitions) is set by the DeliveryManager

    async def _deliver(self, entries: list[Entry], first: int, last: int, resent: bool = False) -> None:
        await self.partition.save_cursor(self.consumer, Cursor(acked=self.acked, pending=(first, last)))
        raw: list[bytes] = []
        heads: list[RecordHead] = []
        offsets: list[int] = []
        undecodable: list[tuple[str, int, str | None, bytes]] = []
        streams = self.streams
        for e in entries:
            head = decode_head(e.data)
            if head is None:
                undecodable.append((self.partition.name, e.offset, None, e.data))
                log.error("undecodable journal entry", sink=self.consumer, offset=e.offset)
                continue
            if not streams or head.stream in streams:
                raw.append(e.data)
                heads.append(head)
                offsets.append(e.offset)
        if undecodable:
            await self._dead_letter(undecodable, "journal entry could not be decoded as a Record", resent)
        if heads:
            def batch(lo: int, hi: int) -> Batch:
                a, b = (first, last) if hi - lo == len(heads) else (offsets[lo], offsets[hi - 1])
                return Batch(self.batch_prefix + self.partition.name, a, b, raw=raw[lo:hi], heads=heads[lo:hi],
                             resent=resent)

            refused: dict[int, str] = {}
            filed: set[int] = set()

            async def file_refused() -> None:
                new = sorted(refused.keys() - filed)
                by_why: dict[str, list[tuple[str, int, str | None, bytes]]] = {}
                for i in new:
                    by_why.setdefault(refused[i], []).append((self.partition.name, offsets[i], heads[i].id, raw[i]))
                for why, items in by_why.items():
                    await self._dead_letter(items, why, resent)
                filed.update(new)

            async def checkpoint(lo: int, hi: int) -> None:
                # Every record before ``lo`` is settled (sent, or refused and now dead-lettered);
                # a restart re-sends ``lo:hi`` alone, as ``batch(lo, hi)`` named it.
                await file_refused()
                self.acked = max(self.acked, offsets[lo] - 1)
                await self.partition.save_cursor(
                    self.consumer, Cursor(acked=self.acked, pending=(offsets[lo], offsets[hi - 1])))

            if not await self._send_or_split(batch, 0, len(heads), refused, checkpoint):
                return  # stopping mid-retry: the pending range is re-sent on next start
            await file_refused()
        await self._ack(last)

    async def _send_or_split(self, batch: Callable[[int, int], Batch], lo: int, hi: int, refused: dict[int, str],
                             checkpoint: Callable[[int, int], Awaitable[None]] | None = None) -> bool:
        """Send records ``lo:hi`` of a delivery as one batch (``batch(lo, hi)`` makes it),
        retrying transient failures; add the records the sink refused to ``refused`` (index →
        why) and return True, or False if stopped meanwhile. A batch the sink refuses for good
        (``PermanentError``) is split in halves and each half sent the same way, left to right,
        so one bad record does not take the others to the dead letters: only a record refused
        on its own counts as refused. The halves' keys come from their first and last records,
        so a re-send splits the same way; ``checkpoint(lo, hi)`` is awaited before each half is
        sent (the caller records it as the range in flight)."""
        b = batch(lo, hi)
        ok, error = await self._send(b, give_up_on_stop=True)
        if ok is None:
            return False
        rejected, self._rejected = self._rejected, {}
        if ok:
            refused.update({lo + i: why for i, why in rejected.items()})
            return True
        if hi - lo == 1:
            refused[lo] = error
            return True
        mid = (lo + hi) // 2
        log.info("sending the refused batch in halves to find the records it cannot take", sink=self.consumer,
                 batch=b.key, records=hi - lo)
        for a, z in ((lo, mid), (mid, hi)):
            if checkpoint is not None:
                await checkpoint(a, z)
            if not await self._send_or_split(batch, a, z, refused, checkpoint):
                return False
        return True

    async def _send(self, batch: Batch, give_up_on_stop: bool) -> tuple[bool | None, str]:
        """Send with retries. (True, "") sent; (False, why) permanent; (None, why) stopped."""
        r = self.cfg.retry
        attempt = 0
        while True:
            try:
                await self.sink.send(batch)
                if self.metrics:
                    self.metrics.batches_sent.labels(self.consumer).inc()
                    self.metrics.records_sent.labels(self.consumer).inc(len(batch))
                return True, ""
            except RejectedRecords as e:
                log.error("sink refused some records; dead-lettering them", sink=self.consumer, batch=batch.key,
                          refused=len(e.rejected), records=len(batch), error=str(e))
                self._rejected = e.rejected
                return True, ""
            except PermanentError as e:
                log.error("permanent sink failure", sink=self.consumer, batch=batch.key, records=len(batch),
                          error=str(e))
                return False, f"{type(e).__name__}: {e}"
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - anything else is treated as transient
                delay = backoff(attempt, r.initial, r.max, r.multiplier)
                if isinstance(e, TransientError) and e.retry_after:
                    delay = max(delay, e.retry_after)
                if self.metrics:
                    self.metrics.sink_retries.labels(self.consumer).inc()
                logger = log.warning if isinstance(e, TransientError) else log.exception
                logger("sink failure; will retry", sink=self.consumer, batch=batch.key, attempt=attempt + 1,
                       retry_in=round(delay, 3), error=f"{type(e).__name__}: {e}")
                attempt += 1
                if give_up_on_stop and self._stopped.is_set():
                    return None, str(e)
                try:
                    await asyncio.wait_for(self._stopped.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                if give_up_on_stop and self._stopped.is_set():
                    return None, str(e)

    async def _dead_letter(self, items: list[tuple[str, int, str | None, bytes]], error: str,
                           resent: bool = False) -> None:
        # A re-sent range may hold records its first attempt dead-lettered just before the
        # process stopped: those are not filed twice.
        await self.store.add_dead_letters(self.consumer, items, error, skip_existing=resent)
        if self.metrics:
            self.metrics.dead_letters.labels(self.consumer).inc(len(items))

    async def _retry_dead_letters(self) -> None:
        try:
            rows = await self.store.take_retry(self.consumer, self.cfg.batch.max_records)
        except Exception as e:  # noqa: BLE001 - the store may be briefly unavailable
            log.warning("cannot read dead letters", sink=self.consumer, error=str(e))
            return
        if not rows:
            return
        good, raw, heads, bad = [], [], [], []
        for row in rows:
            data = row["data"].encode() if isinstance(row["data"], str) else row["data"]
            head = decode_head(data)
            if head is None:
                bad.append(row["id"])
            else:
                good.append(row["id"])
                raw.append(data)
                heads.append(head)
        if bad:
            await self.store.fail_retry(bad, "still not decodable as a Record")
        if not heads:
            return
        # The partition name carries a digest of the exact id set, so two retries over the
        # same id range with different members never share a key (and a re-send of the same
        # set overwrites itself). A set the sink refuses is split as in delivery.
        def batch(lo: int, hi: int) -> Batch:
            ids = good[lo:hi]
            digest = hashlib.sha1(",".join(map(str, ids)).encode()).hexdigest()[:12]
            return Batch(f"{self.batch_prefix}dl{digest}", min(ids), max(ids), raw=raw[lo:hi], heads=heads[lo:hi])

        refused: dict[int, str] = {}
        settled = 0

        async def settle(upto: int) -> None:
            # Rows before ``upto`` are through (a split sends its parts left to right): the
            # delivered leave the list, the refused go back to it, before the next part is
            # marked "sending" and sent. A stop meanwhile leaves that part "sending": it is
            # taken first, alone, at the next try and gets its key again.
            nonlocal settled
            by_error: dict[str, list[int]] = {}
            delivered = []
            for i in range(settled, upto):
                if i in refused:
                    by_error.setdefault(refused[i], []).append(good[i])
                else:
                    delivered.append(good[i])
            for why, ids in by_error.items():
                await self.store.fail_retry(ids, why)
            if delivered:
                await self.store.resolve_dead_letters(delivered)
                log.info("dead letters delivered", sink=self.consumer, count=len(delivered))
            settled = upto

        async def checkpoint(lo: int, hi: int) -> None:
            await settle(lo)
            await self.store.mark_sending(good[lo:hi], back=good[hi:])

        await self.store.mark_sending(good)
        if not await self._send_or_split(batch, 0, len(good), refused, checkpoint):
            return  # stopping: the part in flight is sent again first, then the rest
        await settle(len(good))
