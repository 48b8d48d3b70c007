"""The embedded journal: durability, recovery, cursors, reclaim, group commit, processes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import struct
import sys
import zlib
from pathlib import Path

import orjson
import pytest

import sluiceway
from sluiceway.errors import JournalCorrupt, JournalError, JournalFull
from sluiceway.journal import Cursor, EmbeddedJournal, Entry
from tests.journal.common import item, read_all

HDR = struct.Struct("<IIQ")


async def opened(path: Path, consumers=("a",), **kw) -> EmbeddedJournal:
    journal = EmbeddedJournal(path, **kw)
    await journal.open(list(consumers))
    return journal


def segments(path: Path, name: str = "w0") -> list[Path]:
    return sorted((path / "partitions" / name).glob("*.seg"))


def frames(seg: Path) -> list[tuple[int, int]]:
    """(position, length) of every frame in a segment file (up to the zeros written ahead)."""
    data, pos, out = seg.read_bytes(), 0, []
    while pos + HDR.size <= len(data) and data[pos:pos + HDR.size] != bytes(HDR.size):
        length, _, _ = HDR.unpack_from(data, pos)
        out.append((pos, HDR.size + length))
        pos += HDR.size + length
    return out


def data_end(seg: Path) -> int:
    """Where the last frame of a segment file ends."""
    fr = frames(seg)
    return fr[-1][0] + fr[-1][1] if fr else 0


async def test_round_trip_across_segment_rolls(tmp_path):
    j = await opened(tmp_path, segment_bytes=1024)
    part = j.writer()
    expected, n = [], 0
    for size in [1, 5, 17, 3, 40, 1, 9, 60, 2]:
        items = [item(n + k) for k in range(size)]
        first, last = await part.append(items)
        assert (first, last) == (n + 1, n + size)
        expected += items
        n += size
    assert len(segments(tmp_path)) > 3
    got = await read_all(part)
    assert [e.offset for e in got] == list(range(1, n + 1))
    assert [e.data for e in got] == expected
    # from the middle, with a count limit, and a byte limit smaller than one entry
    mid = await part.read(57, 5, 1 << 20)
    assert [e.offset for e in mid] == [58, 59, 60, 61, 62]
    assert [e.offset for e in await part.read(10, 100, 1)] == [11]
    assert await part.read(n, 10, 1 << 20) == []
    stats = part.stats()
    assert (stats.name, stats.first_offset, stats.last_offset) == ("w0", 1, n)
    segs = segments(tmp_path)
    assert stats.bytes == sum(p.stat().st_size for p in segs[:-1]) + data_end(segs[-1])
    assert all(p.stat().st_size == data_end(p) for p in segs[:-1])  # zeros only after the last frame
    assert set(segs[-1].read_bytes()[data_end(segs[-1]):]) <= {0}
    await j.aclose()


async def test_offsets_continue_after_reopen(tmp_path):
    j = await opened(tmp_path, segment_bytes=512)
    await j.writer().append([item(i) for i in range(30)])
    await j.aclose()
    j = await opened(tmp_path, segment_bytes=512)
    assert j.writer().stats().last_offset == 30
    assert await j.writer().append([b"next"]) == (31, 31)
    got = await read_all(j.writer())
    assert [e.data for e in got] == [item(i) for i in range(30)] + [b"next"]
    await j.aclose()


async def test_frames_carry_zlibs_crc32_of_offset_and_payload(tmp_path):
    """The on-disk format: crc32 as zlib computes it over the offset bytes and the payload (the
    journal uses zlib-ng's implementation), so a frame written by hand, or by an earlier
    version, is read back."""
    j = await opened(tmp_path, preallocate_bytes=0)
    await j.writer().append([item(i) for i in range(3)])
    await j.aclose()
    (seg,) = segments(tmp_path)
    data = seg.read_bytes()
    for pos, size in frames(seg):
        _, crc, _ = HDR.unpack_from(data, pos)
        assert crc == zlib.crc32(data[pos + 8 : pos + size])
    frame = struct.pack("<Q", 4) + b"by hand"
    with open(seg, "ab") as f:  # appended exactly as the journal frames an entry
        f.write(struct.pack("<II", 7, zlib.crc32(frame)) + frame)
    j = await opened(tmp_path, preallocate_bytes=0)
    assert [e.data for e in await read_all(j.writer())] == [item(0), item(1), item(2), b"by hand"]
    await j.aclose()


@pytest.mark.parametrize("damage", ["garbage", "partial_frame", "flipped_byte", "partial_header"])
async def test_torn_tail_is_truncated_on_open(tmp_path, damage):
    j = await opened(tmp_path, segment_bytes=1024)
    for i in range(40):
        await j.writer().append([item(i)])
    await j.aclose()
    last = segments(tmp_path)[-1]
    size = data_end(last)
    fr = frames(last)
    if damage == "garbage":
        last.write_bytes(last.read_bytes() + os.urandom(50))
        survivors = 40
    elif damage == "partial_frame":
        os.truncate(last, size - 3)
        survivors = 39
    elif damage == "flipped_byte":
        data = bytearray(last.read_bytes())
        data[fr[-1][0] + HDR.size + 2] ^= 0x40
        last.write_bytes(bytes(data))
        survivors = 39
    else:  # the whole last segment is a torn header: it goes away
        os.truncate(last, 7)
        survivors = 40 - len(fr)
    j = await opened(tmp_path, segment_bytes=1024)
    part = j.writer()
    if damage == "partial_header":
        assert not last.exists()
    else:
        assert last.stat().st_size == (size if survivors == 40 else fr[-1][0])
    got = await read_all(part)
    assert [e.data for e in got] == [item(i) for i in range(survivors)]
    assert part.stats().last_offset == survivors
    assert await part.append([b"after"]) == (survivors + 1, survivors + 1)
    await j.aclose()


async def test_good_frames_after_a_torn_one_are_cut_but_kept_in_quarantine(tmp_path, caplog):
    """A bad frame with good ones after it at the end of the last segment: a write torn across
    pages by a power loss (never acknowledged), or a bad sector before acknowledged frames. It
    is cut like any torn tail, but the bytes are copied aside first."""
    j = await opened(tmp_path, segment_bytes=1 << 20, preallocate_bytes=65536)
    for i in range(10):
        await j.writer().append([item(i)])
    await j.aclose()
    (last,) = segments(tmp_path)
    fr = frames(last)
    data = bytearray(last.read_bytes())
    data[fr[6][0] + HDR.size + 1] ^= 0x40  # frame of offset 7
    last.write_bytes(bytes(data))
    cut = bytes(data[fr[6][0]:data_end(last)])
    j = await opened(tmp_path, segment_bytes=1 << 20)
    assert [e.offset for e in await read_all(j.writer())] == [1, 2, 3, 4, 5, 6]
    await j.aclose()
    (kept,) = (tmp_path / "quarantine" / "w0").iterdir()
    assert kept.name == f"{last.name}.cut-at-{fr[6][0]}" and kept.read_bytes() == cut
    assert "3 good frame(s) (offsets 8-10)" in caplog.text
    # a plain torn tail (nothing good after it) is cut without a copy
    j = await opened(tmp_path, segment_bytes=1 << 20)
    await j.writer().append([item(0)])
    await j.aclose()
    with open(last, "r+b") as f:
        f.seek(data_end(last) - 2)
        f.write(b"\xff")
    await (await opened(tmp_path, segment_bytes=1 << 20)).aclose()
    assert len(list((tmp_path / "quarantine" / "w0").iterdir())) == 1


@pytest.mark.parametrize("damage", ["flipped_byte", "garbage"])
async def test_damage_before_an_empty_tail_segment_is_corruption(tmp_path, damage, caplog):
    """A crash can leave the last segment empty (created, its first frames never written); it
    is dropped. The segment before it was complete and synced before it was created, so damage
    at its end is not a torn tail but lost acknowledged data: JournalCorrupt, not a silent cut
    (found by fuzzing the journal's files)."""
    j = await opened(tmp_path, segment_bytes=1024)
    for i in range(40):
        await j.writer().append([item(i)])
    await j.aclose()
    *_, before, last = segments(tmp_path)
    os.truncate(last, 0)
    if damage == "garbage":
        before.write_bytes(before.read_bytes() + b"\x01" * 20)
    else:
        data = bytearray(before.read_bytes())
        data[frames(before)[-1][0] + HDR.size + 2] ^= 0x40
        before.write_bytes(bytes(data))
    size = before.stat().st_size
    with pytest.raises(JournalCorrupt, match=before.name):
        await opened(tmp_path, segment_bytes=1024)
    assert before.stat().st_size == size  # nothing was cut


async def test_cut_frames_that_cannot_be_copied_do_not_stop_the_writer(tmp_path, caplog, monkeypatch):
    import sluiceway.journal.embedded as embedded

    j = await opened(tmp_path, segment_bytes=1 << 20)
    for i in range(5):
        await j.writer().append([item(i)])
    await j.aclose()
    (last,) = segments(tmp_path)
    data = bytearray(last.read_bytes())
    data[frames(last)[2][0] + HDR.size + 1] ^= 0x40
    last.write_bytes(bytes(data))

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(embedded, "write_atomic", full)
    j = await opened(tmp_path, segment_bytes=1 << 20)
    assert [e.offset for e in await read_all(j.writer())] == [1, 2]
    await j.aclose()
    assert "No space left on device" in caplog.text and "cut all the same" in caplog.text


@pytest.mark.parametrize("writer_name, taken", [(None, "w1"), ("w0", "w0-1")])
async def test_when_damaged_continue_leaves_the_partition_and_takes_another(tmp_path, caplog, writer_name, taken):
    j = await opened(tmp_path, segment_bytes=1024, writer_name=writer_name)
    for i in range(60):
        await j.writer().append([item(i)])
    await j.aclose()
    damage_first_frame(segments(tmp_path)[0])
    files = {p: p.read_bytes() for p in (tmp_path / "partitions" / "w0").glob("*.seg")}
    with pytest.raises(JournalCorrupt):  # the default: refuse
        await opened(tmp_path, segment_bytes=1024, writer_name=writer_name)
    j = await opened(tmp_path, segment_bytes=1024, writer_name=writer_name, when_damaged="continue")
    try:
        assert j.writer().name == taken and await j.writer().append([b"after"]) == (1, 1)
        (w0,) = [p for p in j.partitions() if p.name == "w0"]  # followed as another writer's
        with pytest.raises(JournalCorrupt):  # its damage is found when it is read
            await read_all(w0)
    finally:
        await j.aclose()
    assert {p: p.read_bytes() for p in (tmp_path / "partitions" / "w0").glob("*.seg")} == files
    assert "journal partition w0 is damaged" in caplog.text
    j = await opened(tmp_path, segment_bytes=1024, writer_name=writer_name, when_damaged="continue")
    try:  # the next start finds its records again
        assert j.writer().name == taken and [e.data for e in await read_all(j.writer())] == [b"after"]
    finally:
        await j.aclose()


async def test_an_open_refused_as_corrupt_has_cut_nothing(tmp_path):
    """The tail segment's first frame is torn (it would be cut, the file left empty and
    removed), and the segment before it is damaged at its end: refused before anything was cut
    or removed, so the repair finds the tail as it was (found by fuzzing the repair)."""
    j = await opened(tmp_path, segment_bytes=1024)
    for i in range(60):
        await j.writer().append([item(i)])
    await j.aclose()
    *_, before, last = segments(tmp_path)
    damage_first_frame(last)
    with open(before, "ab") as f:
        f.write(b"\x01" * 9)
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "writer.lock"}
    with pytest.raises(JournalCorrupt, match=before.name):
        await opened(tmp_path, segment_bytes=1024)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and p.name != "writer.lock"} == files


async def test_an_empty_tail_segment_is_dropped_and_its_offsets_not_reused(tmp_path, caplog):
    j = await opened(tmp_path, segment_bytes=1024)
    for i in range(40):
        await j.writer().append([item(i)])
    await j.aclose()
    *_, before, last = segments(tmp_path)
    first = int(last.stem)
    os.truncate(last, 0)
    size = before.stat().st_size
    j = await opened(tmp_path, segment_bytes=1024)
    part = j.writer()
    assert not last.exists() and before.stat().st_size == size
    assert [e.data for e in await read_all(part)] == [item(i) for i in range(first - 1)]
    assert await part.append([b"after"]) == (first, first)
    assert "empty segment" in caplog.text and "cursors are ahead" not in caplog.text
    await j.aclose()


async def test_damage_in_a_middle_segment_is_corruption(tmp_path):
    j = await opened(tmp_path, segment_bytes=1024)
    for i in range(60):
        await j.writer().append([item(i)])
    await j.aclose()
    middle = segments(tmp_path)[1]
    data = bytearray(middle.read_bytes())
    data[len(data) // 2] ^= 0xFF
    middle.write_bytes(bytes(data))
    j = await opened(tmp_path, segment_bytes=1024)
    with pytest.raises(JournalCorrupt):
        await read_all(j.writer())
    await j.aclose()
    # a damaged first frame is caught at open already
    data[5] ^= 0xFF
    middle.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt):
        await opened(tmp_path, segment_bytes=1024)


async def test_cursors_persist_across_reopen(tmp_path):
    j = await opened(tmp_path, consumers=["s3", "sql"])
    part = j.writer()
    await part.append([b"a", b"b", b"c"])
    assert await part.load_cursor("s3") == Cursor()
    await part.save_cursor("s3", Cursor(acked=1, pending=(2, 3)))
    await part.save_cursor("sql", Cursor(acked=3))
    await j.aclose()
    path = tmp_path / "partitions" / "w0" / "cursors" / "s3.json"
    assert orjson.loads(path.read_bytes()) == {"acked": 1, "pending": [2, 3]}
    assert not [p for p in path.parent.iterdir() if p.suffix != ".json"]
    j = await opened(tmp_path, consumers=["s3", "sql"])
    assert await j.writer().load_cursor("s3") == Cursor(acked=1, pending=(2, 3))
    assert await j.writer().load_cursor("sql") == Cursor(acked=3)
    with pytest.raises(JournalError):
        await j.writer().save_cursor("../evil", Cursor())
    await j.aclose()


async def test_loading_a_cursor_removes_staging_files_a_crashed_save_left(tmp_path, caplog):
    j = await opened(tmp_path, consumers=["s3", "sql"])
    part = j.writer()
    await part.save_cursor("s3", Cursor(acked=0))
    await part.save_cursor("sql", Cursor(acked=0))
    cursors = tmp_path / "partitions" / "w0" / "cursors"
    (cursors / "s3.json#123456789").write_bytes(b'{"acked": 5')  # a save killed mid-write
    (cursors / "sql.json#42").write_bytes(b"")
    (cursors / "s3.json#notdigits").write_bytes(b"not a staging file")
    caplog.set_level("INFO")
    assert await part.load_cursor("s3") == Cursor(acked=0)
    names = sorted(p.name for p in cursors.iterdir())
    assert names == ["s3.json", "s3.json#notdigits", "sql.json", "sql.json#42"]  # only s3's own
    assert "removed 1 staging file(s) of cursor s3" in caplog.text
    await j.aclose()


async def test_reclaim_deletes_only_what_every_consumer_acked(tmp_path):
    j = await opened(tmp_path, consumers=["a", "b"], segment_bytes=512)
    part = j.writer()
    for i in range(60):
        await part.append([item(i)])
    before = [int(p.stem) for p in segments(tmp_path)]
    assert len(before) > 4
    await part.save_cursor("a", Cursor(acked=60))
    assert [int(p.stem) for p in segments(tmp_path)] == before  # b has acked nothing
    await part.save_cursor("b", Cursor(acked=20))
    after = [int(p.stem) for p in segments(tmp_path)]
    assert after == [f for f in before if f >= max(g for g in before if g <= 21)]
    got = await read_all(part)
    assert got[0].offset == after[0] <= 21 and got[-1].offset == 60
    assert part.stats().first_offset == after[0]
    await part.save_cursor("b", Cursor(acked=60))
    assert [int(p.stem) for p in segments(tmp_path)] == before[-1:]  # never the active segment
    assert await part.append([b"more"]) == (61, 61)
    await j.aclose()


async def test_full_refuses_then_recovers_after_reclaim(tmp_path):
    j = await opened(tmp_path, consumers=["a"], max_bytes=8192)
    part = j.writer()
    assert j.full() is None
    last = 0
    with pytest.raises(JournalFull) as info:
        while True:
            _, last = await part.append([item(1) * 3])
    assert info.value.retry_after > 0
    assert part.stats().last_offset == last  # nothing of the refused append was stored
    assert part.stats().bytes <= 8192
    assert j.full() is not None
    with pytest.raises(JournalFull):
        await part.append([b"x"] * 100)
    await part.save_cursor("a", Cursor(acked=last))
    assert j.full() is None
    assert await part.append([b"again"]) == (last + 1, last + 1)
    await j.aclose()


async def test_concurrent_appends_share_fsyncs(tmp_path, monkeypatch):
    j = await opened(tmp_path)
    part = j.writer()
    calls = []
    real = os.fdatasync

    def counting(fd):
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", counting)
    results = await asyncio.gather(*(part.append([b"n%d" % i]) for i in range(200)))
    assert sorted(first for first, _ in results) == list(range(1, 201))
    assert all(first == last for first, last in results)
    assert 1 <= len(calls) <= 20
    got = await read_all(part, max_count=1000)
    assert {e.data for e in got} == {b"n%d" % i for i in range(200)}
    await j.aclose()


async def test_appends_are_synced_unless_disabled(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "fdatasync", calls.append)
    j = await opened(tmp_path / "nosync", fsync=False)
    await j.writer().append([b"x"])
    assert calls == []
    await j.aclose()
    observed: list[float] = []
    j = await opened(tmp_path / "sync", fsync_observer=observed.append)
    await j.writer().append([b"x"])
    assert len(calls) == 1
    assert len(observed) == 1 and observed[0] >= 0
    await j.aclose()


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def damage_first_frame(seg: Path) -> None:
    data = bytearray(seg.read_bytes())
    data[HDR.size + 2] ^= 0xFF
    seg.write_bytes(bytes(data))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc/self/fd")
async def test_an_open_refused_as_corrupt_leaves_no_descriptor_open(tmp_path):
    """A writer's open that finds damage closes every segment it had opened, also those not
    yet adopted (found by fuzzing the journal's files: a process that kept retrying ran out of
    descriptors)."""
    j = await opened(tmp_path, segment_bytes=1024)
    for i in range(60):
        await j.writer().append([item(i)])
    await j.aclose()
    damage_first_frame(segments(tmp_path)[-2])  # the tail is opened first, then the others
    before = open_fds()
    for _ in range(5):
        journal = EmbeddedJournal(tmp_path, segment_bytes=1024)
        with pytest.raises(JournalCorrupt, match="first frame is damaged"):
            await journal.open(["a"])
        await journal.aclose()
    assert open_fds() == before


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc/self/fd")
async def test_a_damaged_partition_of_another_writer_leaks_nothing_at_each_refresh(tmp_path, caplog):
    """The delivering process refreshes its view of the partitions every few seconds; one it
    cannot read is refused each time (JournalCorrupt), each try closes what it opened, and
    the partitions it can read are taken all the same, at open too."""
    other = await opened(tmp_path, segment_bytes=1024, writer_name="w1")
    for i in range(60):
        await other.writer().append([item(i)])
    good = await opened(tmp_path, writer_name="w2")
    await good.writer().append([b"fine"])
    await other.aclose()
    await good.aclose()
    last = segments(tmp_path, "w1")[-1]
    data = bytearray(last.read_bytes())
    length, _, first = HDR.unpack_from(data, 0)
    payload = bytes(data[HDR.size : HDR.size + length])
    wrong = first + 5  # a whole frame (its crc matches) at the wrong offset: not a torn write
    HDR.pack_into(data, 0, length, zlib.crc32(struct.pack("<Q", wrong) + payload), wrong)
    last.write_bytes(bytes(data))
    reader = EmbeddedJournal(tmp_path, writer=False, segment_bytes=1024)
    with caplog.at_level(logging.ERROR):
        await reader.open(["a"])  # opens all the same: the damage is logged, the rest is read
    assert "cannot be read" in caplog.text and "wrong offset" in caplog.text
    before = open_fds()
    for _ in range(5):
        with pytest.raises(JournalCorrupt):
            await reader.refresh()
    assert open_fds() == before
    (part,) = reader.partitions()
    assert part.name == "w2" and [e.data for e in await read_all(part)] == [b"fine"]
    await reader.aclose()


async def test_two_writers_get_their_own_partitions(tmp_path):
    j0 = await opened(tmp_path)
    j1 = await opened(tmp_path)
    assert (j0.writer().name, j1.writer().name) == ("w0", "w1")
    await j0.writer().append([b"zero"])
    await j1.writer().append([b"one", b"uno"])
    with pytest.raises(JournalError):
        await opened(tmp_path, writer_name="w1")
    reader = await opened(tmp_path, writer=False)
    with pytest.raises(JournalError):
        reader.writer()
    parts = {p.name: p for p in reader.partitions()}
    assert sorted(parts) == ["w0", "w1"]
    assert [e.data for e in await read_all(parts["w1"])] == [b"one", b"uno"]
    with pytest.raises(JournalError):
        await parts["w0"].append([b"no"])
    # a partition created later is picked up by refresh(); a freed one is reused
    j2 = await opened(tmp_path, writer_name="edge-1")
    await j2.writer().append([b"edge"])
    assert [p.name for p in await reader.refresh()] == ["edge-1", "w0", "w1"]
    await j0.aclose()
    j3 = await opened(tmp_path)
    assert j3.writer().name == "w0"
    assert await j3.writer().append([b"zero again"]) == (2, 2)
    for j in (j1, j2, j3, reader):
        await j.aclose()


async def test_reader_follows_another_writer_and_wait_wakes(tmp_path):
    writer = await opened(tmp_path, segment_bytes=1024)
    reader = await opened(tmp_path, writer=False, poll_interval=0.01)
    (part,) = reader.partitions()
    assert await part.wait(0, 0.01) is False
    waiter = asyncio.create_task(part.wait(0, 10))
    await asyncio.sleep(0)
    await writer.writer().append([b"first"])
    assert await waiter is True
    assert await part.read(0, 10, 1 << 20) == [Entry(1, b"first")]
    for i in range(100):  # several rolls
        await writer.writer().append([item(i)])
    got = await read_all(part, after=1)
    assert [e.data for e in got] == [item(i) for i in range(100)]
    assert part.stats().last_offset == 101
    # the reader may ack and reclaim the writer's partition; the writer keeps going
    await part.save_cursor("a", Cursor(acked=101))
    assert len(segments(tmp_path)) == 1
    assert await writer.writer().append([b"tail"]) == (102, 102)
    assert part.stats().last_offset == 102  # stats() follows too (delivery drains by it)
    assert writer.writer().stats().bytes == sum(data_end(p) for p in segments(tmp_path))
    assert [e.data for e in await read_all(part, after=101)] == [b"tail"]
    await writer.aclose()
    await reader.aclose()


async def test_wait_in_process(tmp_path):
    j = await opened(tmp_path)
    part = j.writer()
    assert await part.wait(0, 0.01) is False
    waiter = asyncio.create_task(part.wait(0, 10))
    await asyncio.sleep(0)
    assert not waiter.done()
    await part.append([b"x"])
    assert await waiter is True
    assert await part.wait(0, 0) is True
    await j.aclose()
    await j.aclose()  # safe twice
    with pytest.raises(JournalError):
        await part.append([b"late"])


async def test_close_flushes_queued_appends(tmp_path):
    j = await opened(tmp_path)
    tasks = [asyncio.create_task(j.writer().append([b"q%d" % i])) for i in range(50)]
    await asyncio.sleep(0)
    await j.aclose()
    results = await asyncio.gather(*tasks)
    assert sorted(first for first, _ in results) == list(range(1, 51))
    j = await opened(tmp_path)
    assert j.writer().stats().last_offset == 50
    await j.aclose()


async def test_offsets_are_never_reused_when_a_cursor_is_ahead(tmp_path):
    """After an OS crash a reader may have acked frames the writer never synced (rule 7)."""
    j = await opened(tmp_path)
    for i in range(10):
        await j.writer().append([item(i)])
    await j.writer().save_cursor("a", Cursor(acked=10))
    await j.aclose()
    (seg,) = segments(tmp_path)
    os.truncate(seg, frames(seg)[5][0])  # entries 6..10 were lost
    j = await opened(tmp_path)
    part = j.writer()
    assert part.stats().last_offset == 5
    assert await part.wait(5, 0) is False
    assert await part.append([b"new"]) == (11, 11)
    assert await read_all(part, after=5) == [Entry(11, b"new")]
    assert [e.offset for e in await read_all(part)] == [1, 2, 3, 4, 5, 11]
    await j.aclose()
    j = await opened(tmp_path)
    assert await j.writer().append([b"newer"]) == (12, 12)
    await j.aclose()


def _child_env() -> dict[str, str]:
    src = str(Path(sluiceway.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


APPENDER = """
import asyncio, sys
from sluiceway.journal import EmbeddedJournal

async def main(path, mode):
    j = EmbeddedJournal(path, segment_bytes=4096, writer_name="w0")
    await j.open(["a"])
    part = j.writer()

    async def worker(w):
        seq = 0
        while True:
            items = [b"%d-%d-" % (w, seq + k) + b"p" * ((seq + k) % 90) for k in range(1 + seq % 4)]
            first, last = await part.append(items)
            print(first, last, w, seq, flush=True)
            seq += len(items)
            if mode == "slow":
                if seq >= 300:
                    return
                await asyncio.sleep(0.002)

    await asyncio.gather(*(worker(w) for w in range(1 if mode == "slow" else 4)))
    await j.aclose()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def _expected(line: bytes) -> dict[int, bytes]:
    first, last, w, seq = map(int, line.split())
    return {first + k: b"%d-%d-" % (w, seq + k) + b"p" * ((seq + k) % 90) for k in range(last - first + 1)}


async def test_reader_follows_a_live_writer_process(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", APPENDER, str(tmp_path), "slow", stdout=asyncio.subprocess.PIPE, env=_child_env()
    )
    reader = EmbeddedJournal(tmp_path, writer=False, poll_interval=0.005)
    await reader.open(["a"])
    for _ in range(1000):
        parts = await reader.refresh()
        if parts:
            break
        await asyncio.sleep(0.01)
    (part,) = parts
    got: list[Entry] = []
    while len(got) < 300:
        assert await part.wait(got[-1].offset if got else 0, 20)
        got += await part.read(got[-1].offset if got else 0, 50, 1 << 20)
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0
    got += await read_all(part, after=got[-1].offset)
    expected: dict[int, bytes] = {}
    for line in out.splitlines():
        expected.update(_expected(line))
    assert [e.offset for e in got] == list(range(1, len(expected) + 1)) == sorted(expected)
    assert all(expected[e.offset] == e.data for e in got)
    await reader.aclose()


async def test_kill_9_loses_no_acknowledged_append(tmp_path):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", APPENDER, str(tmp_path), "fast", stdout=asyncio.subprocess.PIPE, env=_child_env()
    )
    lines = []
    while len(lines) < 400:
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert line, "the appender died"
        lines.append(line)
    proc.send_signal(signal.SIGKILL)
    rest, _ = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == -signal.SIGKILL
    lines += rest.split(b"\n")[:-1]  # the last piece is empty or a cut line
    expected: dict[int, bytes] = {}
    for line in lines:
        expected.update(_expected(line))
    assert len(segments(tmp_path)) > 2
    j = await opened(tmp_path, writer_name="w0", segment_bytes=4096)
    got = {e.offset: e.data for e in await read_all(j.writer(), max_count=500)}
    assert list(got) == list(range(1, len(got) + 1))
    missing = [off for off, data in expected.items() if got.get(off) != data]
    assert missing == []
    nxt = max(got) + 1
    assert await j.writer().append([b"after the crash"]) == (nxt, nxt)
    await j.aclose()


async def test_synced_pages_older_than_the_window_leave_the_page_cache(tmp_path, monkeypatch):
    """After each sync the writer drops what lies more than page_cache_bytes behind the tail
    (in steps of SHED_STEP), and a segment that stops being active whole; the data stays."""
    from sluiceway.journal import embedded

    calls: list[tuple[str, int, int]] = []
    real = os.posix_fadvise

    def spy(fd, start, length, advice):
        assert advice == os.POSIX_FADV_DONTNEED
        calls.append((os.readlink(f"/proc/self/fd/{fd}").rsplit("/", 1)[1], start, length))
        real(fd, start, length, advice)

    monkeypatch.setattr(embedded.os, "posix_fadvise", spy)
    monkeypatch.setattr(embedded, "SHED_STEP", 1000)
    j = await opened(tmp_path, segment_bytes=10_000, page_cache_bytes=2000)
    part = j.writer()
    data = [b"%04d" % i + b"x" * 480 for i in range(60)]  # 500-byte frames
    for d in data:
        await part.append([d])
    segs = [p.name for p in segments(tmp_path)]
    assert len(segs) == 3
    # Every byte older than the window was dropped once, in order, each step >= SHED_STEP
    # (the last before a roll may be shorter: the rest of that segment).
    by_seg: dict[str, list[tuple[int, int]]] = {}
    for name, start, length in calls:
        by_seg.setdefault(name, []).append((start, length))
    for name in segs[:-1]:
        spans = by_seg[name]
        assert spans[0][0] == 0 and all(a + n == b for (a, n), (b, _) in zip(spans, spans[1:]))
        assert sum(n for _, n in spans) == 10_000
        assert all(n >= 1000 for _, n in spans[:-1])
    active = by_seg.get(segs[-1], [])
    assert sum(n for _, n in active) <= (tmp_path / "partitions" / "w0" / segs[-1]).stat().st_size - 2000
    assert [e.data for e in await read_all(part, max_count=100)] == data
    await j.aclose()


@pytest.mark.parametrize("kw", [{"page_cache_bytes": None}, {"fsync": False}])
async def test_page_cache_left_alone(tmp_path, monkeypatch, kw):
    from sluiceway.journal import embedded

    monkeypatch.setattr(embedded.os, "posix_fadvise", lambda *a: pytest.fail("posix_fadvise called"))
    j = await opened(tmp_path, segment_bytes=4096, **{"page_cache_bytes": 0, **kw})
    part = j.writer()
    for i in range(40):
        await part.append([item(i) * 20])
    assert len(await read_all(part)) == 40
    await j.aclose()


async def test_commit_delay_lets_appends_arriving_one_by_one_share_a_sync(tmp_path, monkeypatch):
    """Appends spaced out in time (as from clients at a steady rate) share syncs when a
    commit may start only commit_delay after the previous one ended; an append to an idle
    writer is committed at once."""
    syncs: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (syncs.append(fd), real(fd)))

    async def spaced(part, n: int) -> list[tuple[int, int]]:
        async def one(i):
            await asyncio.sleep(i * 0.002)
            return await part.append([b"n%d" % i])
        return await asyncio.gather(*(one(i) for i in range(n)))

    from sluiceway.journal import embedded

    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds, *a, **kw):
        waits.append(seconds)
        return await real_sleep(seconds, *a, **kw)

    counts = {}
    for delay in (0.0, 0.05):
        syncs.clear()
        j = await opened(tmp_path / str(delay), commit_delay=delay)
        part = j.writer()
        monkeypatch.setattr(embedded.asyncio, "sleep", sleep)
        await part.append([b"first"])  # idle writer: committed without waiting
        monkeypatch.setattr(embedded.asyncio, "sleep", real_sleep)
        assert waits == []
        results = await spaced(part, 40)
        assert sorted(a for a, _ in results) == list(range(2, 42))
        assert len(await read_all(part, max_count=100)) == 41
        counts[delay] = len(syncs)
        await j.aclose()
    assert counts[0.05] < counts[0.0] / 2


def test_commit_delay_must_not_be_negative(tmp_path):
    with pytest.raises(ValueError, match="commit_delay"):
        EmbeddedJournal(tmp_path, commit_delay=-1)


async def test_zeros_are_written_ahead_so_syncs_do_not_grow_the_file(tmp_path, caplog):
    j = await opened(tmp_path, preallocate_bytes=64 * 1024)
    await j.writer().append([item(0)])
    (seg,) = segments(tmp_path)
    length = seg.stat().st_size
    assert length == data_end(seg) + 64 * 1024
    for i in range(1, 50):
        await j.writer().append([item(i)])
    assert seg.stat().st_size == length  # written into the zeros: the file's length is unchanged
    await j.aclose()
    j = await opened(tmp_path, preallocate_bytes=64 * 1024)  # the zeros are kept, silently
    assert seg.stat().st_size == length and "torn" not in caplog.text
    assert await j.writer().append([b"more"]) == (51, 51)
    assert [e.data for e in await read_all(j.writer())] == [item(i) for i in range(50)] + [b"more"]
    await j.aclose()


async def test_a_frame_torn_inside_the_zeros_is_cut_off(tmp_path, caplog):
    j = await opened(tmp_path, preallocate_bytes=64 * 1024)
    for i in range(10):
        await j.writer().append([item(i)])
    await j.aclose()
    (seg,) = segments(tmp_path)
    end = data_end(seg)
    frame = seg.read_bytes()[frames(seg)[-1][0]:end]
    with open(seg, "r+b") as f:  # the first half of a frame landed after the last one; zeros follow
        f.seek(end)
        f.write(frame[: len(frame) // 2])
    j = await opened(tmp_path, preallocate_bytes=64 * 1024)
    assert "truncating torn tail" in caplog.text
    assert [e.data for e in await read_all(j.writer())] == [item(i) for i in range(10)]
    assert await j.writer().append([b"next"]) == (11, 11)
    await j.aclose()
    j = await opened(tmp_path)
    assert [e.data for e in await read_all(j.writer())][-2:] == [item(9), b"next"]
    await j.aclose()


async def test_no_room_for_the_zeros_ahead_still_takes_the_append(tmp_path, monkeypatch, caplog):
    """A nearly full disk: the zeros written ahead do not fit, the frames do."""
    from sluiceway.journal import writer

    calls = []

    def disk_full(fd, pos, end):
        calls.append((pos, end))
        os.pwrite(fd, bytes(10), pos)  # some zeros landed before the disk filled up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer, "write_zeros", disk_full)
    j = await opened(tmp_path, preallocate_bytes=64 * 1024)
    assert await j.writer().append([item(0)]) == (1, 1)
    (seg,) = segments(tmp_path)
    assert seg.stat().st_size == data_end(seg)  # cut back to the last frame
    assert "no room on disk to write ahead" in caplog.text
    for i in range(1, 5):
        await j.writer().append([item(i)])
    assert len(calls) == 1  # not tried again on every commit
    assert seg.stat().st_size == data_end(seg)
    await j.aclose()
    j = await opened(tmp_path)
    assert [e.data for e in await read_all(j.writer())] == [item(i) for i in range(5)]
    await j.aclose()


async def test_without_preallocation_the_file_ends_with_the_last_frame(tmp_path):
    j = await opened(tmp_path, preallocate_bytes=0)
    for i in range(5):
        await j.writer().append([item(i)])
    (seg,) = segments(tmp_path)
    assert seg.stat().st_size == data_end(seg)
    await j.aclose()
