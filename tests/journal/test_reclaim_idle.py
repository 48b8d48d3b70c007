"""Rule 8 of the embedded journal: the last segment of a partition that no process writes any
more is deleted once every registered consumer has acked it, and only then; its cursors stay,
so a writer that takes the partition again never reuses an offset."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

import pytest

from sluiceway.journal import Cursor, EmbeddedJournal
from tests.journal.common import item, read_all


async def opened(path: Path, consumers=("a",), **kw) -> EmbeddedJournal:
    journal = EmbeddedJournal(path, **kw)
    await journal.open(list(consumers))
    return journal


def segments(path: Path, name: str) -> list[Path]:
    return sorted((path / "partitions" / name).glob("*.seg"))


async def written(path: Path, name: str, n: int, **kw) -> None:
    """``n`` records appended to partition ``name`` by a writer that then stops."""
    w = await opened(path, consumers=(), writer_name=name, **kw)
    for i in range(n):
        await w.writer().append([item(i)])
    await w.aclose()


async def test_a_fully_delivered_partition_without_a_writer_loses_its_last_segment(tmp_path):
    await written(tmp_path, "w1", 30, segment_bytes=512)
    assert len(segments(tmp_path, "w1")) > 2
    delivery = await opened(tmp_path, consumers=("a", "b"), writer=False)
    (part,) = delivery.partitions()
    assert [e.offset for e in await read_all(part)] == list(range(1, 31))
    await part.save_cursor("a", Cursor(acked=30))
    await part.save_cursor("b", Cursor(acked=29))
    assert await delivery.reclaim_idle() == 0  # b has not delivered the last record yet
    assert len(segments(tmp_path, "w1")) == 1  # rule 6 took all but the last
    await part.save_cursor("b", Cursor(acked=30))
    size = segments(tmp_path, "w1")[0].stat().st_size  # with the zeros written ahead
    assert await delivery.reclaim_idle() == size
    assert segments(tmp_path, "w1") == []
    cursors = sorted(p.name for p in (tmp_path / "partitions" / "w1" / "cursors").iterdir())
    assert cursors == ["a.json", "b.json"]  # kept: they carry the offsets already used (rule 7)
    assert await read_all(part, after=30) == [] and part.stats().bytes == 0
    assert await delivery.reclaim_idle() == 0

    # A writer that takes the partition again goes on after the acknowledged offsets, and the
    # delivery that followed it all along sees the new records.
    w = await opened(tmp_path, consumers=(), writer_name="w1", segment_bytes=512)
    assert await w.writer().append([b"again"]) == (31, 31)
    assert await part.wait(30, timeout=5)
    assert [(e.offset, e.data) for e in await read_all(part, after=30)] == [(31, b"again")]
    await w.aclose()
    await delivery.aclose()


async def test_nothing_is_removed_while_a_writer_holds_the_partition(tmp_path):
    w = await opened(tmp_path, consumers=(), writer_name="w1")
    await w.writer().append([item(1), item(2)])
    delivery = await opened(tmp_path, consumers=("a",), writer=False)
    (part,) = delivery.partitions()
    await part.save_cursor("a", Cursor(acked=2))
    assert await delivery.reclaim_idle() == 0
    assert len(segments(tmp_path, "w1")) == 1
    assert await w.writer().append([item(3)]) == (3, 3)
    await w.aclose()
    await delivery.aclose()


async def test_a_consumer_without_a_cursor_keeps_the_partition(tmp_path):
    await written(tmp_path, "w1", 3)
    delivery = await opened(tmp_path, consumers=("a", "b"), writer=False)
    (part,) = delivery.partitions()
    await part.save_cursor("a", Cursor(acked=3))
    assert await delivery.reclaim_idle() == 0
    assert len(segments(tmp_path, "w1")) == 1
    await delivery.aclose()
    # ... and with no registered consumer nothing is ever deleted (rule 6)
    reader = await opened(tmp_path, consumers=(), writer=False)
    assert await reader.reclaim_idle() == 0
    assert len(segments(tmp_path, "w1")) == 1
    await reader.aclose()


@pytest.mark.parametrize("tail", [b"\x07" * 40, b"\x00" * 16 + b"\x01"])
async def test_a_last_segment_with_bytes_after_its_frames_is_left_to_the_writer(tmp_path, tail):
    """Bytes after the last good frame that are not all zeros are a torn write (or damage): the
    writer's recovery or the repair decides about them, not a reclaim."""
    await written(tmp_path, "w1", 5, preallocate_bytes=0)
    (seg,) = segments(tmp_path, "w1")
    with seg.open("ab") as f:
        f.write(tail)
    before = seg.read_bytes()
    delivery = await opened(tmp_path, consumers=("a",), writer=False)
    (part,) = delivery.partitions()
    assert [e.offset for e in await read_all(part)] == [1, 2, 3, 4, 5]
    await part.save_cursor("a", Cursor(acked=5))
    assert await delivery.reclaim_idle() == 0
    assert seg.read_bytes() == before
    await delivery.aclose()


async def test_frames_written_since_the_last_look_are_read_before_deciding(tmp_path):
    """The delivery's view may be behind the file: once it holds the lock it reads the partition
    to its end, and records it had not seen keep the segment."""
    w = await opened(tmp_path, consumers=(), writer_name="w1")
    await w.writer().append([item(1), item(2)])
    delivery = await opened(tmp_path, consumers=("a",), writer=False)
    (part,) = delivery.partitions()
    await part.save_cursor("a", Cursor(acked=2))
    await w.writer().append([item(3)])  # not seen by the delivery yet
    await w.aclose()
    assert await delivery.reclaim_idle() == 0
    assert len(segments(tmp_path, "w1")) == 1 and part.stats().last_offset == 3
    await delivery.aclose()


async def test_the_own_partition_keeps_its_last_segment(tmp_path):
    j = await opened(tmp_path, consumers=("a",))
    await j.writer().append([item(1)])
    await j.writer().save_cursor("a", Cursor(acked=1))
    assert await j.reclaim_idle() == 0
    assert len(segments(tmp_path, "w0")) == 1
    await j.aclose()


async def test_a_fixed_writer_name_waits_for_a_lock_held_by_a_reclaim(tmp_path):
    await written(tmp_path, "edge", 1)
    fd = os.open(tmp_path / "partitions" / "edge" / "writer.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as reclaim_abandoned does, for a moment
    released: list[bool] = []

    def release() -> None:
        released.append(True)
        os.close(fd)

    asyncio.get_running_loop().call_later(0.2, release)
    j = await opened(tmp_path, consumers=(), writer_name="edge")
    assert released  # it waited for the lock rather than refusing to start
    assert await j.writer().append([b"x"]) == (2, 2)
    await j.aclose()


async def test_a_chosen_name_moves_on_when_its_lock_is_held(tmp_path):
    await written(tmp_path, "w0", 1)
    fd = os.open(tmp_path / "partitions" / "w0" / "writer.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        j = await opened(tmp_path, consumers=())
        assert j.writer().name == "w1"
        await j.aclose()
    finally:
        os.close(fd)


@pytest.mark.parametrize("seed", range(4))
async def test_writers_coming_and_going_beside_a_delivery_that_frees_idle_partitions(tmp_path, seed):
    """Rounds of: a writer takes the partition (recovering what the last one left, a torn write
    included), appends and stops; the delivery reads and acks some or all of it, and frees the
    partition when it can. Every record is delivered exactly once, in order, and offsets only
    ever grow (rule 7), however the rounds fall."""
    import random

    rnd = random.Random(seed)
    delivery = await opened(tmp_path, consumers=("a",), writer=False, poll_interval=0.01)
    written: list[tuple[int, bytes]] = []
    delivered: list[tuple[int, bytes]] = []
    acked, freed = 0, 0
    for round_ in range(25):
        w = await opened(tmp_path, consumers=(), writer_name="w1", segment_bytes=256,
                         preallocate_bytes=rnd.choice([0, 64]))
        for k in range(rnd.randrange(0, 6)):
            data = b"r%d-%d" % (round_, k)
            first, _ = await w.writer().append([data])
            assert not written or first > written[-1][0]
            written.append((first, data))
        await w.aclose()
        if rnd.random() < 0.3:  # a write the crash cut short: never acknowledged
            seg = segments(tmp_path, "w1")
            if seg:
                with seg[-1].open("r+b") as f:
                    f.seek(0, 2)
                    f.write(b"\x05\x00\x00\x00torn")
        if not delivery.partitions():
            await delivery.refresh()
        for part in delivery.partitions():
            assert await part.wait(acked, 0) == (bool(written) and written[-1][0] > acked)
            got = await read_all(part, after=acked)
            if got and rnd.random() < 0.3:
                got = got[:rnd.randrange(len(got))]  # delivered only in part this time
            delivered += [(e.offset, e.data) for e in got]
            if got:
                acked = got[-1].offset
                await part.save_cursor("a", Cursor(acked=acked))
        freed += await delivery.reclaim_idle() > 0
    for part in delivery.partitions():
        delivered += [(e.offset, e.data) for e in await read_all(part, after=acked)]
    assert delivered == written
    assert freed  # the rounds did free the partition at least once
    await delivery.aclose()
