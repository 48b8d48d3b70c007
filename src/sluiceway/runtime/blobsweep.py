"""Removing blobs from the spool that no record refers to.

Two things leave such blobs: a crash in the instant between a blob's rename into the spool and
the append of its record (the client got no 2xx), and blobs whose record some removed
``attachments`` sink never delivered. A blob is still needed while anything refers to it by
its key (``Attachment.key``):

* a journal entry still stored: a record a sink has not acknowledged yet (or not reclaimed);
* a dead letter: an upload refused for good is retried from the spool.

A request renames its blob into the spool and appends its record a moment later (after
unpacking it, for an ingress upload), so only blobs older than ``grace`` (a day) are
candidates, and the steps run in this order: list the candidates, read every partition of the
journal to its end, then read the dead letters. A record appended before the listing is in
the journal when it is read; one that leaves the journal meanwhile for the dead letters is a
dead letter by then (delivery stores the dead letter before it acknowledges the entry, and
only acknowledged entries are reclaimed). What is left is deleted, with any ``.done`` markers
of the blob, and ``.done`` markers whose blob is gone (a crash inside ``BlobSpool.done``)
older than ``grace`` go too.

The delivering process sweeps at start and then every ``SWEEP_INTERVAL`` seconds (an hour);
the sweep costs nothing while the spool holds no blob older than ``grace`` (the usual case:
blobs leave once uploaded). Otherwise it reads the whole journal, skipping entries without a
``"key"`` without decoding them.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import orjson

from sluiceway.record import decode_head
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    from sluiceway.blobs import BlobSpool
    from sluiceway.journal import Journal
    from sluiceway.store import Store
    from sluiceway.telemetry.metrics import Metrics

log = get_logger("sluiceway.blobs")

SWEEP_INTERVAL = 3600.0  # seconds between sweeps of the delivering process
SWEEP_GRACE = 86400.0  # a blob younger than this is never removed (room for any slow request)
READ_COUNT, READ_BYTES = 2000, 4 << 20  # journal entries per read while looking for references
DEAD_LETTER_PAGE = 500
GAUGE_INTERVAL = 30.0  # seconds between readings of the spool's size for the metrics (a stat per blob)


def attachment_keys(data: bytes | str) -> list[str]:
    """The blob keys an encoded record refers to (none for anything that is not a record)."""
    raw = data.encode() if isinstance(data, str) else data
    if b'"key"' not in raw:  # no attachment can be there: skip the decoding
        return []
    head = decode_head(raw)
    if head is None or bytes(head.attachments) in (b"[]", b"null"):
        return []
    try:
        items = orjson.loads(bytes(head.attachments))
    except orjson.JSONDecodeError:
        return []
    return [a["key"] for a in items if isinstance(a, dict) and isinstance(a.get("key"), str)] \
        if isinstance(items, list) else []


async def sweep(spool: "BlobSpool", journal: "Journal", store: "Store", grace: float = SWEEP_GRACE,
                now: float | None = None) -> tuple[int, int]:
    """Delete the spool's blobs older than ``grace`` that no journal entry and no dead letter
    refers to. Returns (blobs removed, bytes freed)."""
    cutoff = (time.time() if now is None else now) - grace
    candidates = await asyncio.to_thread(spool.older_than, cutoff)
    if not candidates:
        await asyncio.to_thread(spool.drop_stray_markers, cutoff)
        return 0, 0
    for part in await journal.refresh():
        stats = part.stats()
        after, last = max(stats.first_offset - 1, 0), stats.last_offset
        while candidates and after < last:
            entries = await part.read(after, READ_COUNT, READ_BYTES)
            if not entries:
                break
            for e in entries:
                for key in attachment_keys(e.data):
                    candidates.pop(key, None)
            after = entries[-1].offset
            await asyncio.sleep(0)  # let delivery run between reads
    after_id = 0
    while candidates:
        rows = await store.list_dead_letters(limit=DEAD_LETTER_PAGE, after_id=after_id)
        if not rows:
            break
        for row in rows:
            for key in attachment_keys(row["data"]):
                candidates.pop(key, None)
        after_id = rows[-1]["id"]
    removed = freed = 0
    for key, size in candidates.items():
        if await asyncio.to_thread(spool.remove, key):
            removed += 1
            freed += size
    await asyncio.to_thread(spool.drop_stray_markers, cutoff)
    if removed:
        log.warning("removed blobs no record refers to", blobs=removed, bytes=freed,
                    older_than_s=grace, keys=sorted(candidates)[:20])
    return removed, freed


async def run(spool: "BlobSpool", journal: "Journal", store: "Store", metrics: "Metrics | None" = None,
              interval: float = SWEEP_INTERVAL, grace: float = SWEEP_GRACE, gauge_every: float = GAUGE_INTERVAL) -> None:
    """Sweep now and then every ``interval`` seconds until cancelled; a failed sweep is logged
    and tried again at the next turn (nothing is removed unless a sweep completes). Meanwhile
    keep the spool's gauges (``sluice_blob_spool_blobs`` / ``_bytes``) current."""
    next_sweep = 0.0
    while True:
        if time.monotonic() >= next_sweep:
            next_sweep = time.monotonic() + interval
            try:
                removed, _ = await sweep(spool, journal, store, grace)
                if metrics is not None and removed:
                    metrics.blobs_swept.inc(removed)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - a sweep that fails removes nothing; try later
                log.error("blob sweep failed", error=str(e) or type(e).__name__)
        if metrics is not None:
            try:
                blobs, size = await asyncio.to_thread(spool.stats)
                metrics.spool_blobs.set(blobs)
                metrics.spool_bytes.set(size)
            except OSError as e:
                log.warning("cannot read the blob spool", error=str(e))
        await asyncio.sleep(min(gauge_every, max(0.0, next_sweep - time.monotonic())))
