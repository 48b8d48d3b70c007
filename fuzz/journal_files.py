"""Fuzz the embedded journal's recovery from damaged files (atheris, coverage-guided).

Each input damages a copy of a small journal (three segments, two consumers' cursors): it
overwrites bytes, truncates or appends to one of its files, as a crash, a torn write or a bad
disk could. The journal is then opened, read to the end through both consumers' cursors,
appended to and closed. ``JournalCorrupt`` (damage it must not repair silently) and
``JournalError`` are answers; any other exception is a finding, and so is an entry read back
that is not exactly what was written at its offset, or an append that does not read back.
After a ``JournalCorrupt`` the journal is repaired (``journal.repair``, as ``sluice journal
repair`` does) and checked again: now it must open, read back correctly and take the append.

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

ROOT = Path(tempfile.mkdtemp(prefix="sluice-fuzz-journal-"))
TEMPLATE, WORK = ROOT / "template", ROOT / "work"
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
    asyncio.run(check())


if __name__ == "__main__":
    from harness import main

    asyncio.run(make_template())
    main(test_one_input)
