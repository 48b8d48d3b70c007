"""The blob sweep removes only spooled blobs that nothing refers to and that are old enough."""

from __future__ import annotations

import asyncio
import os
import time

from sluiceway.blobs import BlobSpool
from sluiceway.journal import EmbeddedJournal
from sluiceway.record import Attachment, Record, new_id, utcnow
from sluiceway.runtime import blobsweep
from sluiceway.runtime.blobsweep import attachment_keys, sweep

HOUR = 3600.0


def record(*keys: str, payload: dict | None = None) -> bytes:
    return Record(id=new_id(), tenant="acme", stream="specimen", source="t", received_at=utcnow(),
                  payload=payload or {}, attachments=[Attachment(key=k, sha256="0" * 64, size=3) for k in keys]).encode()


def blob(spool: BlobSpool, key: str, age: float, data: bytes = b"abc") -> None:
    spool.open()
    path = spool.path(key)
    path.write_bytes(data)
    t = time.time() - age
    os.utime(path, (t, t))


def aged(path, age: float) -> None:
    path.touch()
    t = time.time() - age
    os.utime(path, (t, t))


async def journal_with(tmp_path, name: str, items: list[bytes]) -> EmbeddedJournal:
    j = EmbeddedJournal(tmp_path / "journal", writer_name=name)
    await j.open(["files"])
    if items:
        await j.writer().append(items)
    return j


def test_attachment_keys_of_records_and_of_anything_else():
    assert attachment_keys(record("k1", "k2")) == ["k1", "k2"]
    assert attachment_keys(record(payload={"key": "not a blob"})) == []
    assert attachment_keys(record()) == []
    assert attachment_keys(b'{"key": "x"}') == []  # not a record
    assert attachment_keys(b"\xff\xfe key") == []
    assert attachment_keys(record("k3").decode()) == ["k3"]  # a dead letter's text


async def test_sweep_keeps_what_is_referred_to_or_young(tmp_path, sqlite_store):
    spool = BlobSpool(tmp_path / "data")
    for key in ("injournal", "inother", "deadletter", "orphan", "young"):
        blob(spool, key, age=0 if key == "young" else 2 * HOUR)
    aged(spool.root / "orphan.files.done", 2 * HOUR)  # its markers go with it
    aged(spool.root / "gone.files.done", 2 * HOUR)  # a marker whose blob is gone
    aged(spool.root / "fresh.files.done", 0)  # … but not a young one
    aged(spool.root / "injournal.files.done", 2 * HOUR)  # a marker of a blob still needed
    (spool.root / "tmp" / "x.part").write_bytes(b"p")  # uploads in progress are not the sweep's

    other = await journal_with(tmp_path, "w1", [b"not a record", record("inother")])
    await other.aclose()
    journal = await journal_with(tmp_path, "w0", [record("injournal", "missing")])
    await sqlite_store.add_dead_letters("files", [("w0", 9, "r", record("deadletter"))], "403 Forbidden")
    try:
        assert await sweep(spool, journal, sqlite_store, grace=HOUR) == (1, 3)
        assert sorted(p.name for p in spool.root.iterdir() if p.is_file()) == [
            "deadletter", "fresh.files.done", "injournal", "injournal.files.done", "inother", "young"]
        assert (spool.root / "tmp" / "x.part").exists()
        assert await sweep(spool, journal, sqlite_store, grace=HOUR) == (0, 0)
    finally:
        await journal.aclose()


async def test_sweep_reads_past_acknowledged_entries_not_yet_reclaimed(tmp_path, sqlite_store):
    spool = BlobSpool(tmp_path / "data")
    blob(spool, "kept", age=2 * HOUR)
    journal = await journal_with(tmp_path, "w0", [record("kept")] + [record() for _ in range(4500)])
    try:
        assert await sweep(spool, journal, sqlite_store, grace=HOUR) == (0, 0)  # several reads
        assert spool.path("kept").exists()
    finally:
        await journal.aclose()


async def test_an_empty_or_young_spool_does_not_read_the_journal(tmp_path, sqlite_store):
    spool = BlobSpool(tmp_path / "data")
    blob(spool, "young", age=10)

    class NoJournal:
        async def refresh(self):
            raise AssertionError("the journal was read")

    assert await sweep(spool, NoJournal(), sqlite_store, grace=HOUR) == (0, 0)  # type: ignore[arg-type]
    assert spool.path("young").exists()


async def test_the_gateway_sweeps_at_start(tmp_path, monkeypatch):
    from sluiceway.config.loader import validate_tree
    from sluiceway.runtime.gateway import Gateway

    cfg = validate_tree({"data_dir": str(tmp_path / "data"), "sources": [{"type": "lightfile6"}]})
    spool = BlobSpool(cfg.data_dir)
    blob(spool, "orphan", age=blobsweep.SWEEP_GRACE + HOUR)
    blob(spool, "recent", age=blobsweep.SWEEP_GRACE - HOUR)
    swept = []
    real = blobsweep.sweep

    async def recorded(*args, **kwargs):
        swept.append(await real(*args, **kwargs))
        return swept[-1]

    monkeypatch.setattr(blobsweep, "sweep", recorded)
    gw = Gateway(cfg, role="all")
    await gw.open()
    try:
        for _ in range(200):
            if swept:
                break
            await asyncio.sleep(0.01)
        assert swept == [(1, 3)] and not spool.path("orphan").exists() and spool.path("recent").exists()
    finally:
        await gw.aclose()


async def test_run_keeps_the_spool_gauges_and_counts_what_it_removes(tmp_path, sqlite_store):
    from sluiceway.telemetry.metrics import Metrics

    spool = BlobSpool(tmp_path / "data")
    blob(spool, "orphan", age=2 * HOUR)
    blob(spool, "waiting", age=0, data=b"12345")
    journal = await journal_with(tmp_path, "w0", [])
    metrics = Metrics()
    task = asyncio.create_task(blobsweep.run(spool, journal, sqlite_store, metrics, grace=HOUR, gauge_every=0.01))
    try:
        for _ in range(300):
            if metrics.spool_blobs._value.get() == 1 and metrics.blobs_swept._value.get() == 1:
                break
            await asyncio.sleep(0.01)
        assert metrics.spool_bytes._value.get() == 5
        text = metrics.render().decode()
        assert "sluice_blobs_swept_total 1.0" in text and "sluice_blob_spool_blobs 1.0" in text
        blob(spool, "another", age=0)
        for _ in range(300):
            if metrics.spool_blobs._value.get() == 2:
                break
            await asyncio.sleep(0.01)
        assert metrics.spool_blobs._value.get() == 2 and metrics.blobs_swept._value.get() == 1  # hourly
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await journal.aclose()
