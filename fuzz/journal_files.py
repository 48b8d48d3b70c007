"""Fuzz the embedded journal's recovery from damaged files (atheris, coverage-guided).

Each input damages a copy of a small journal (three segments, two consumers' cursors): it
overwrites bytes, truncates or appends to one of its files, as a crash, a torn write or a bad
disk could. The journal is then opened, read to the end through both consumers' cursors,
appended to and closed. ``JournalCorrupt`` (damage it must not repair silently) and
``JournalError`` are answers; any other exception is a finding, and so is an entry read back
that is not exactly what was written at its offset, or an append that does not read back.
After a ``JournalCorrupt`` the journal is repaired (``journal.repair``, as ``sluice journal
repair`` does) and checked again: now it must open, read back correctly and take the append.
On another copy of the damaged journal a delivery process reads what it can through both
cursors, acks it and frees idle partitions (rule 8): if it deleted the partition's segments,
no good frame they held may lie beyond what both cursors acked, and a writer that takes the
partition again must go on after every offset used.

    pip install -e '.[fuzz]'
    python fuzz/journal_files.py fuzz/corpus/journal_files -max_len=512 -timeout=20 -max_total_time=300

Findings are written to the current directory (``crash-…``, ``timeout-…``); turn each into a
test. The corpus directory is created if missing and kept between runs (not committed).
"""

import asyncio
import shutil
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from sluiceway.errors import JournalCorrupt, JournalError
    from sluiceway.journal import Cursor, EmbeddedJournal
    from sluiceway.journal.repair import repair
    from sluiceway.journal.segment import find_runs

ROOT = Path(tempfile.mkdtemp(prefix="sluice-fuzz-journal-"))
TEMPLATE, WORK, IDLE = ROOT / "template", ROOT / "work", ROOT / "idle"
OPTIONS = {"segment_bytes": 1024, "fsync": False, "preallocate_bytes": 512}
CONSUMERS = ["a", "b"]
ITEMS = {i: b"item-%05d-" % i + b"x" * (i % 37) for i in range(1, 61)}  # offset -> data


async def make_template() -> None:
    journal = EmbeddedJournal(TEMPLATE, **OPTIONS)
    await journal.open(CONSUMERS)
    part = journal.writer()
    for offset in ITEMS:
        await part.append([ITEMS[offset]])
    await part.save_cursor("a", Cursor(acked=10, pending=(11, 20)))
    await journal.aclose()


async def check(repaired: bool = False) -> None:
    journal = EmbeddedJournal(WORK, **OPTIONS)
    try:
        await journal.open(CONSUMERS)
        part = journal.writer()
        for consumer in CONSUMERS:
            after = (await part.load_cursor(consumer)).acked
            while entries := await part.read(after, 7, 1 << 20):
                for e in entries:
                    assert e.offset > after and ITEMS.get(e.offset) == bytes(e.data), (e.offset, bytes(e.data))
                    after = e.offset
        last = await part.append([b"new"])
        assert [bytes(e.data) for e in await part.read(last[0] - 1, 1, 1 << 20)] == [b"new"]
    except JournalCorrupt:
        if repaired:
            raise
    except JournalError:
        return
    else:
        return
    finally:
        await journal.aclose()
    # damage the journal refuses: `sluice journal repair` must make it open and read correctly
    repair(WORK, ROOT, fsync=False)
    await check(repaired=True)


async def check_reclaim_idle() -> None:
    shutil.rmtree(IDLE, ignore_errors=True)
    shutil.copytree(WORK, IDLE)
    segs = sorted((IDLE / "partitions" / "w0").glob("*.seg"))
    good: set[int] = set()  # offsets of every frame with a good crc in the files, damaged or not
    for seg in segs:
        for run in find_runs(seg.read_bytes(), int(seg.stem), None):
            good.update(range(run.first, run.last + 1))
    acked: dict[str, int] = {}
    delivery = EmbeddedJournal(IDLE, writer=False, **OPTIONS)
    try:
        await delivery.open(CONSUMERS)
        for part in delivery.partitions():
            for consumer in CONSUMERS:
                after = (await part.load_cursor(consumer)).acked
                try:
                    while entries := await part.read(after, 7, 1 << 20):
                        after = entries[-1].offset
                except JournalError:  # the damage: delivered up to it
                    pass
                await part.save_cursor(consumer, Cursor(acked=after))
                acked[consumer] = after
        freed = await delivery.reclaim_idle()
    except JournalError:
        return
    finally:
        await delivery.aclose()
    if not freed:
        return
    assert not list((IDLE / "partitions" / "w0").glob("*.seg")), "freed, yet segments are left"
    floor = min(acked.values())
    assert all(off <= floor for off in good), ("rule 8 deleted frames not acked", floor, sorted(good)[-5:])
    writer = EmbeddedJournal(IDLE, **OPTIONS)
    try:
        await writer.open(CONSUMERS)
        first, _ = await writer.writer().append([b"new"])
        assert first > max(good | set(acked.values()) | {0}), ("an offset used again", first)
    except JournalError:
        return
    finally:
        await writer.aclose()


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    shutil.rmtree(WORK, ignore_errors=True)
    shutil.copytree(TEMPLATE, WORK)
    files = sorted(p for p in WORK.rglob("*") if p.is_file() and p.name != "writer.lock")
    for _ in range(fdp.ConsumeIntInRange(1, 3)):
        target = files[fdp.ConsumeIntInRange(0, len(files) - 1)]
        size = target.stat().st_size
        at = fdp.ConsumeIntInRange(0, size)
        how = fdp.ConsumeIntInRange(0, 2)
        if how == 0:  # overwrite
            chunk = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 16))
            with open(target, "r+b") as f:
                f.seek(at)
                f.write(chunk)
        elif how == 1:  # truncate
            with open(target, "r+b") as f:
                f.truncate(at)
        else:  # append
            with open(target, "ab") as f:
                f.write(fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 64)))
    asyncio.run(check_reclaim_idle())
    asyncio.run(check())


if __name__ == "__main__":
    from harness import main

    asyncio.run(make_template())
    main(test_one_input)
