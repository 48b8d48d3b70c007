import asyncio

import pytest

from sluiceway.config.types import SinkConfigBase
from sluiceway.errors import PermanentError, TransientError
from sluiceway.journal import Cursor, EmbeddedJournal
from sluiceway.record import Record, new_id, utcnow
from sluiceway.sinks.base import Batch, Sink
from sluiceway.sinks.delivery import Delivery, backoff
from sluiceway.store import Store
from tests.helpers import eventually


class Recorder(Sink):
    """A sink double that records batches and fails as scripted."""

    def __init__(self, script=()):
        self.name = "rec"
        self.batches: list[Batch] = []
        self.script = list(script)
        self.calls = 0

    async def send(self, batch):
        self.calls += 1
        if self.script:
            exc = self.script.pop(0)
            if exc is not None:
                raise exc
        self.batches.append(batch)


def rec(stream="s", i=0):
    return Record(id=new_id(), tenant="t", stream=stream, source="test", received_at=utcnow(), payload={"i": i})


def cfg(**kw):
    base = {"name": "rec", "type": "test", "batch": {"max_records": 100, "max_age": "20ms"},
            "retry": {"initial": "1ms", "max": "5ms"}}
    base.update(kw)
    return SinkConfigBase.model_validate(base)


@pytest.fixture
async def env(tmp_path):
    j = EmbeddedJournal(tmp_path / "journal")
    await j.open(["rec"])
    store = Store.from_url(f"sqlite:///{tmp_path / 'db.sqlite'}")
    await store.open()
    yield j, store
    await j.aclose()
    await store.aclose()


async def run_until(d: Delivery, cond):
    task = asyncio.create_task(d.run())
    try:
        await eventually(cond)
    finally:
        d.stop()
        await asyncio.wait_for(task, 10)


def test_backoff_is_full_jitter():
    for attempt in range(10):
        v = backoff(attempt, 0.5, 8.0)
        assert 0 <= v <= min(8.0, 0.5 * 2 ** attempt)


async def test_batches_by_count_and_acks(env):
    j, store = env
    part = j.writer()
    await part.append([rec(i=i).encode() for i in range(250)])
    sink = Recorder()
    d = Delivery(part, sink, cfg(), store)

    async def done():
        return sum(len(b) for b in sink.batches) == 250

    await run_until(d, done)
    assert [len(b) for b in sink.batches][:2] == [100, 100]
    assert (await part.load_cursor("rec")) == Cursor(acked=250, pending=None)
    offsets = [(b.first_offset, b.last_offset) for b in sink.batches]
    assert offsets[0] == (1, 100) and offsets[1] == (101, 200)


async def test_transient_errors_are_retried(env):
    j, store = env
    part = j.writer()
    await part.append([rec().encode()])
    sink = Recorder([TransientError("down"), RuntimeError("surprise"), TransientError("429", retry_after=0.01)])
    d = Delivery(part, sink, cfg(), store)

    async def done():
        return sink.batches

    await run_until(d, done)
    assert sink.calls == 4 and await store.count_dead_letters() == 0


class Poisoned(Recorder):
    """Refuses for good (PermanentError) every batch holding a record whose payload ``i`` is in
    ``poison``, as a database refuses a whole batch for one bad row."""

    def __init__(self, poison):
        super().__init__()
        self.poison = set(poison)

    async def send(self, batch):
        self.calls += 1
        if any(r.payload["i"] in self.poison for r in batch.records):
            raise PermanentError("schema mismatch")
        self.batches.append(batch)


async def test_permanent_error_dead_letters_only_the_bad_records_then_retry(env):
    j, store = env
    part = j.writer()
    records = [rec(i=i) for i in range(7)]
    await part.append([r.encode() for r in records])
    sink = Poisoned({2, 5})
    d = Delivery(part, sink, cfg(), store, dead_letter_poll=0.02)

    async def dead():
        return await store.count_dead_letters("rec") == 2

    task = asyncio.create_task(d.run())
    await eventually(dead)
    assert (await part.load_cursor("rec")).acked == 7  # acked: nothing blocks behind it
    delivered = sorted(r.payload["i"] for b in sink.batches for r in b.records)
    assert delivered == [0, 1, 3, 4, 6]  # the batch was split until the bad records stood alone
    assert len({b.key for b in sink.batches}) == len(sink.batches)  # every part has its own key
    rows = await store.list_dead_letters(sink="rec")
    assert {r["record_id"] for r in rows} == {records[2].id, records[5].id}
    assert "schema mismatch" in rows[0]["error"]
    sink.poison.clear()  # the operator fixed the schema
    assert await store.request_retry(sink="rec") == 2

    async def redelivered():
        return await store.count_dead_letters("rec") == 0

    await eventually(redelivered)
    d.stop()
    await asyncio.wait_for(task, 10)
    assert sorted(r.payload["i"] for b in sink.batches for r in b.records) == list(range(7))


async def test_retried_dead_letters_are_split_too(env):
    """Dead letters an operator re-queues are sent as one batch; if the sink still refuses one
    of them for good, the set is split like a delivery: the others are delivered and leave the
    dead letters, the refused one stays dead with one more attempt."""
    j, store = env
    part = j.writer()
    records = [rec(i=i) for i in range(5)]
    await part.append([r.encode() for r in records])
    sink = Poisoned({0, 1, 2, 3, 4})
    d = Delivery(part, sink, cfg(), store, dead_letter_poll=0.02)
    task = asyncio.create_task(d.run())

    async def dead():
        return await store.count_dead_letters("rec") == 5

    await eventually(dead)
    sink.poison = {3}  # fixed for all but one
    sink.batches.clear()
    assert await store.request_retry(sink="rec") == 5

    async def settled():
        rows = await store.list_dead_letters(sink="rec")
        return len(rows) == 1 and rows[0]["status"] == "dead" and rows[0]["attempts"] == 1

    await eventually(settled)
    d.stop()
    await asyncio.wait_for(task, 10)
    assert sorted(r.payload["i"] for b in sink.batches for r in b.records) == [0, 1, 2, 4]
    assert len({b.key for b in sink.batches}) == len(sink.batches)
    [row] = await store.list_dead_letters(sink="rec")
    assert row["record_id"] == records[3].id and "schema mismatch" in row["error"]


async def test_a_batch_refused_for_good_as_a_whole_is_dead_lettered_record_by_record(env):
    j, store = env
    part = j.writer()
    records = [rec(i=i) for i in range(3)]
    await part.append([r.encode() for r in records])
    sink = Poisoned({0, 1, 2})
    d = Delivery(part, sink, cfg(), store, dead_letter_poll=0.02)

    async def dead():
        return await store.count_dead_letters("rec") == 3

    await run_until(d, dead)
    assert not sink.batches and sink.calls == 5  # 3 records: the batch, then 1 + (2 → 1 + 1)
    assert (await part.load_cursor("rec")).acked == 3


async def test_pending_batch_resent_with_same_boundaries(env):
    j, store = env
    part = j.writer()
    await part.append([rec(i=i).encode() for i in range(10)])
    # A previous process recorded 3..7 as pending and died before acking.
    await part.save_cursor("rec", Cursor(acked=2, pending=(3, 7)))
    sink = Recorder()
    d = Delivery(part, sink, cfg(), store)

    async def done():
        return sum(len(b) for b in sink.batches) >= 8

    await run_until(d, done)
    assert (sink.batches[0].first_offset, sink.batches[0].last_offset) == (3, 7)
    assert sink.batches[0].key == "w0-000000000003-000000000007"
    assert [b.resent for b in sink.batches] == [True] + [False] * (len(sink.batches) - 1)


async def test_stream_filter(env):
    j, store = env
    part = j.writer()
    await part.append([rec("a").encode(), rec("b").encode(), rec("a").encode()])
    sink = Recorder()
    d = Delivery(part, sink, cfg(streams=["a"]), store)

    async def done():
        return d.acked == 3

    await run_until(d, done)
    assert [r.stream for b in sink.batches for r in b.records] == ["a", "a"]


async def test_undecodable_entry_is_dead_lettered(env):
    j, store = env
    part = j.writer()
    good = rec()
    bad_utf8 = good.encode().replace(b'"i":0', b'"i":"\xff"')
    await part.append([b"not json", good.encode(), bad_utf8, b'{"id":"x"}'])
    sink = Recorder()
    d = Delivery(part, sink, cfg(), store)

    async def done():
        return d.acked == 4

    await run_until(d, done)
    assert await store.count_dead_letters("rec") == 3
    assert [h.id for h in sink.batches[0].heads] == [good.id]


async def test_drain_flushes_without_waiting_for_age(env):
    j, store = env
    part = j.writer()
    await part.append([rec().encode()])
    sink = Recorder()
    d = Delivery(part, sink, cfg(batch={"max_records": 1000, "max_age": "1h"}), store)
    d.drain()
    await asyncio.wait_for(d.run(), 10)
    assert len(sink.batches) == 1 and d.acked == 1


class KeyedStore(Poisoned):
    """Stores each batch as an object store would: one object per batch key, a re-send to the
    same key overwriting it. ``crash_after`` stores that many batches, then dies (as ``kill -9``
    would: nothing after the sink's return runs)."""

    def __init__(self, poison, crash_after=None):
        super().__init__(poison)
        self.objects: dict[str, list[int]] = {}
        self.crash_after = crash_after

    async def send(self, batch):
        await super().send(batch)
        self.objects[batch.key] = [r.payload["i"] for r in batch.records]
        if self.crash_after is not None and len(self.batches) >= self.crash_after:
            raise asyncio.CancelledError("killed")


@pytest.mark.parametrize("crash_after", [1, 2, 3])
async def test_a_kill_during_a_split_stores_no_record_twice(env, crash_after):
    """A batch refused for good as a whole is being split when the process dies; on restart the
    refusal is gone (the operator fixed the cause). Only the part that was in flight is sent
    again, under its own key: no record lands in two objects, none is lost."""
    j, store = env
    part = j.writer()
    await part.append([rec(i=i).encode() for i in range(8)])
    sink = KeyedStore({5}, crash_after=crash_after)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(Delivery(part, sink, cfg(), store).run(), 10)
    stored_before = dict(sink.objects)
    sink.poison.clear()
    sink.crash_after = None
    d = Delivery(part, sink, cfg(), store)

    async def done():
        return d.acked == 8

    await run_until(d, done)
    assert all(sink.objects[k] == v for k, v in stored_before.items())  # re-sent keys: same content
    held = sorted(i for records in sink.objects.values() for i in records)
    dead = [r["record_id"] for r in await store.list_dead_letters(sink="rec")]
    assert len(held) + len(dead) == 8 and len(set(held)) == len(held)
    assert len(dead) == (1 if crash_after == 3 else 0)  # the third part is sent after 5 was refused alone


async def test_a_resent_range_does_not_file_a_dead_letter_twice(env):
    j, store = env
    part = j.writer()
    records = [rec(i=i) for i in range(3)]
    await part.append([r.encode() for r in records])
    # The last process dead-lettered record 1 (offset 2), then died before moving its cursor.
    await store.add_dead_letters("rec", [("w0", 2, records[1].id, records[1].encode())], "PermanentError: schema")
    await part.save_cursor("rec", Cursor(acked=0, pending=(1, 3)))
    sink = Poisoned({1})
    d = Delivery(part, sink, cfg(), store)

    async def done():
        return d.acked == 3

    await run_until(d, done)
    assert [r["record_id"] for r in await store.list_dead_letters(sink="rec")] == [records[1].id]
    assert sorted(r.payload["i"] for b in sink.batches for r in b.records) == [0, 2]


async def test_a_kill_during_a_split_retry_sends_the_part_in_flight_again_alone(env):
    """Re-queued dead letters refused as a set are split; the parts already through leave the
    list (or go back to it) before the next part is marked "sending" and sent. A process killed
    meanwhile sends that part again first, alone and under the same key, then the rest: no
    record reaches the sink under two keys."""
    j, store = env
    part = j.writer()
    records = [rec(i=i) for i in range(5)]
    await store.add_dead_letters("rec", [("w0", n + 1, r.id, r.encode()) for n, r in enumerate(records)], "old")
    assert await store.request_retry(sink="rec") == 5
    sink = KeyedStore({3}, crash_after=2)  # [0:2] stored, then [2:5] refused, [2:3] stored: killed
    d = Delivery(part, sink, cfg(), store, dead_letter_poll=0.02)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(d._retry_dead_letters(), 10)
    rows = await store.list_dead_letters(sink="rec")
    assert [(r["record_id"], r["status"]) for r in rows] == [
        (records[2].id, "sending"), (records[3].id, "retry"), (records[4].id, "retry")]
    in_flight = sink.batches[-1].key
    sink.poison.clear()
    sink.crash_after = None
    await d._retry_dead_letters()
    assert sink.batches[-1].key == in_flight and [r.payload["i"] for r in sink.batches[-1].records] == [2]
    await d._retry_dead_letters()
    assert await store.count_dead_letters("rec") == 0
    assert sorted(i for records in sink.objects.values() for i in records) == [0, 1, 2, 3, 4]


async def test_records_before_a_damaged_frame_are_delivered_then_the_loop_stops_there(env):
    """A read that meets damage further on returns what it read before it; the batch goes out,
    the next read raises JournalCorrupt and the loop fails there (its guard logs and retries)."""
    from sluiceway.errors import JournalCorrupt

    j, store = env
    part = j.writer()
    await part.append([rec(i=i).encode() for i in range(5)])
    calls = 0
    real = part.read

    async def read(after, max_count, max_bytes):
        nonlocal calls
        calls += 1
        if after >= 3:  # offset 4 is damaged
            raise JournalCorrupt("w0/00000000000000000001.seg: damaged frame at byte 400 (offset 4)")
        return (await real(after, min(max_count, 3 - after), max_bytes))

    part.read = read  # type: ignore[method-assign]
    sink = Recorder()
    d = Delivery(part, sink, cfg(), store)
    with pytest.raises(JournalCorrupt, match="offset 4"):
        await asyncio.wait_for(d.run(), 10)
    assert [(b.first_offset, b.last_offset) for b in sink.batches] == [(1, 3)]
    assert (await part.load_cursor("rec")) == Cursor(acked=3, pending=None)
