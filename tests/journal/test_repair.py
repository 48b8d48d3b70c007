"""Repairing a damaged embedded journal (``journal.repair``, ``sluice journal repair``)."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from sluiceway.cli import app
from sluiceway.errors import JournalCorrupt
from sluiceway.journal import Cursor, EmbeddedJournal
from sluiceway.journal.repair import RepairRefused, find_runs, repair
from sluiceway.journal.segment import HEADER
from tests.journal.common import item, read_all

SEG = 1024


async def filled(data_dir: Path, count: int = 60, cursors: dict[str, Cursor] | None = None) -> list[Path]:
    """A journal in ``data_dir/journal`` with ``count`` records, one append each (several
    segments); its segment files, oldest first."""
    j = EmbeddedJournal(data_dir / "journal", segment_bytes=SEG)
    await j.open(list(cursors or ["sql"]))
    try:
        for i in range(count):
            await j.writer().append([item(i)])
        for name, cur in (cursors or {}).items():
            await j.writer().save_cursor(name, cur)
    finally:
        await j.aclose()
    return segs(data_dir)


def segs(data_dir: Path, name: str = "w0") -> list[Path]:
    return sorted((data_dir / "journal" / "partitions" / name).glob("*.seg"))


def frame_starts(seg: Path) -> list[int]:
    data, pos, out = seg.read_bytes(), 0, []
    while pos + HEADER.size <= len(data) and data[pos:pos + HEADER.size] != bytes(HEADER.size):
        out.append(pos)
        pos += HEADER.size + HEADER.unpack_from(data, pos)[0]
    return out


def damage(seg: Path, frame: int) -> int:
    """Flip a payload byte of the ``frame``-th frame of ``seg``; that frame's offset."""
    data = bytearray(seg.read_bytes())
    pos = frame_starts(seg)[frame]
    data[pos + HEADER.size + 1] ^= 0x20
    seg.write_bytes(bytes(data))
    return HEADER.unpack_from(data, pos)[2]


async def everything(data_dir: Path) -> list[tuple[int, bytes]]:
    j = EmbeddedJournal(data_dir / "journal", segment_bytes=SEG)
    await j.open([])
    try:
        return [(e.offset, e.data) for e in await read_all(j.writer(), max_count=1000)]
    finally:
        await j.aclose()


async def test_a_damaged_middle_segment_keeps_every_good_frame(tmp_path):
    files = await filled(tmp_path, cursors={"sql": Cursor(2), "objects": Cursor(60)})
    middle = files[1]
    lost = damage(middle, 2)
    with pytest.raises(JournalCorrupt):
        await everything(tmp_path)

    report = repair(tmp_path / "journal", tmp_path)
    (d,) = report.damaged
    assert d.name == middle.name and d.missing == [(lost, lost)] and d.missing_count == 1
    assert [(r.first, r.last) for r in d.runs] == [(int(middle.stem), lost - 1), (lost + 1, d.runs[-1].last)]
    assert d.quarantined == tmp_path / "journal" / "quarantine" / "w0" / middle.name
    impacts = {s.sink: s for s in report.sinks}
    assert impacts["sql"].undelivered_missing == 1 and "objects" not in impacts  # it had them all

    got = await everything(tmp_path)  # the gateway opens and reads it again
    assert [off for off, _ in got] == [i for i in range(1, 61) if i != lost]
    assert all(data == item(off - 1) for off, data in got)
    names = [p.name for p in segs(tmp_path)]
    assert f"{lost + 1:020d}.seg" in names and middle.name in names  # the runs took its place
    assert list((tmp_path / "journal" / "repair" / "w0").iterdir()) == []
    again = repair(tmp_path / "journal", tmp_path)
    assert again.damaged == [] and again.segments_checked == len(names)


async def test_the_quarantined_file_is_the_damaged_one_unchanged(tmp_path):
    files = await filled(tmp_path)
    damage(files[0], 0)  # its first frame: caught when the journal opens
    before = files[0].read_bytes()
    report = repair(tmp_path / "journal", tmp_path)
    (d,) = report.damaged
    assert d.damage_at == 0 and d.runs[0].first == int(files[0].stem) + 1
    assert d.quarantined.read_bytes() == before
    assert [off for off, _ in await everything(tmp_path)][:2] == [2, 3]


async def test_a_dry_run_changes_nothing(tmp_path):
    files = await filled(tmp_path, cursors={"sql": Cursor(1, (2, 30))})
    damage(files[1], 1)
    snapshot = {p: p.read_bytes() for p in (tmp_path / "journal").rglob("*") if p.is_file()}
    report = repair(tmp_path / "journal", tmp_path, dry_run=True)
    assert len(report.damaged) == 1 and report.damaged[0].quarantined is None
    assert report.sinks[0].pending == (2, 30) and report.sinks[0].widened == (2, 31)
    assert {p: p.read_bytes() for p in (tmp_path / "journal").rglob("*") if p.is_file()} == snapshot


async def test_a_batch_in_flight_over_missing_records_is_sent_again_under_a_new_key(tmp_path):
    """Sent again with its range, a batch would keep its key: the records left would replace
    the object the first try may have written. One more offset makes a range never used."""
    files = await filled(tmp_path, cursors={"sql": Cursor(1, (2, 60)), "objects": Cursor(59, (60, 60))})
    lost = damage(files[1], 0)
    report = repair(tmp_path / "journal", tmp_path)
    impacts = {s.sink: s for s in report.sinks}
    assert impacts["sql"].pending == (2, 60) and impacts["sql"].widened == (2, 61)
    assert "objects" not in impacts  # its batch is intact
    cursors = tmp_path / "journal" / "partitions" / "w0" / "cursors"
    assert orjson.loads((cursors / "sql.json").read_bytes()) == {"acked": 1, "pending": [2, 61]}
    assert orjson.loads((cursors / "objects.json").read_bytes()) == {"acked": 59, "pending": [60, 60]}
    assert lost not in [off for off, _ in await everything(tmp_path)]
    j = EmbeddedJournal(tmp_path / "journal", segment_bytes=SEG)
    await j.open(["sql", "objects"])
    try:  # offset 61 is the widened batch's: the writer goes on after it (rule 7)
        assert await j.writer().append([b"next"]) == (62, 62)
    finally:
        await j.aclose()


async def test_a_damaged_cursor_file_starts_its_sink_over(tmp_path):
    await filled(tmp_path, count=5, cursors={"sql": Cursor(3), "objects": Cursor(5)})
    cursor = tmp_path / "journal" / "partitions" / "w0" / "cursors" / "sql.json"
    cursor.write_bytes(b'{"acked": 3, "pend')  # a bad disk: a rename never leaves half a file
    with pytest.raises(JournalCorrupt, match="bad cursor file"):
        await everything(tmp_path)
    r = runner.invoke(app, ["journal", "repair", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "sink sql (w0): " in r.stdout and "starts over" in r.stdout
    assert "repaired 0 damaged segment(s) and 1 damaged cursor(s)" in r.stdout
    assert not cursor.exists()  # acked 0: everything the journal holds goes to the sink again
    assert (tmp_path / "journal" / "quarantine" / "w0" / "cursors" / "sql.json").read_bytes() == b'{"acked": 3, "pend'
    assert [off for off, _ in await everything(tmp_path)] == [1, 2, 3, 4, 5]


async def test_a_segment_with_nothing_readable_leaves_a_gap_and_offsets_are_not_reused(tmp_path):
    files = await filled(tmp_path)
    middle = files[1]
    first, nxt = int(middle.stem), int(files[2].stem)
    middle.write_bytes(b"\xff" * middle.stat().st_size)
    (d,) = repair(tmp_path / "journal", tmp_path).damaged
    assert d.runs == [] and d.missing == [(first, nxt - 1)]
    got = [off for off, _ in await everything(tmp_path)]
    assert got == [i for i in range(1, 61) if not first <= i < nxt]
    j = EmbeddedJournal(tmp_path / "journal", segment_bytes=SEG)
    await j.open([])
    assert await j.writer().append([b"next"]) == (61, 61)
    await j.aclose()


async def test_the_last_segments_torn_tail_is_left_to_the_gateway_unless_kept(tmp_path):
    files = await filled(tmp_path)
    last = files[-1]
    lost = damage(last, 1)
    report = repair(tmp_path / "journal", tmp_path, dry_run=True)
    assert report.damaged == []
    (note,) = report.notes
    assert last.name in note and "--keep-tail" in note and f"offsets {lost + 1}-60" in note
    report = repair(tmp_path / "journal", tmp_path, keep_tail=True)
    (d,) = report.damaged
    assert d.missing == [(lost, lost)]
    assert [off for off, _ in await everything(tmp_path)] == [i for i in range(1, 61) if i != lost]


async def test_a_torn_tail_segment_after_a_damaged_one(tmp_path):
    """The last segment's first frame torn and the end of the one before it damaged: the open is
    refused with both as they were; the repair mends the one before, and the gateway then cuts
    the torn tail (keeping a copy of its good frames)."""
    files = await filled(tmp_path)
    damage(files[-1], 0)
    lost = damage(files[-2], -1)
    with pytest.raises(JournalCorrupt):
        await everything(tmp_path)
    report = repair(tmp_path / "journal", tmp_path)
    (d,) = report.damaged
    assert d.name == files[-2].name and d.missing == [(lost, lost)]
    assert len(report.notes) == 1 and files[-1].name in report.notes[0]
    got = [off for off, _ in await everything(tmp_path)]
    assert got == list(range(1, lost))
    assert (tmp_path / "journal" / "quarantine" / "w0" / f"{files[-1].name}.cut-at-0").exists()


async def test_zeros_written_ahead_are_not_damage(tmp_path):
    j = EmbeddedJournal(tmp_path / "journal", segment_bytes=1 << 20, preallocate_bytes=65536)
    await j.open([])
    await j.writer().append([item(0)])
    await j.aclose()
    report = repair(tmp_path / "journal", tmp_path)
    assert report.damaged == [] and report.notes == []


async def test_a_running_gateway_is_refused(tmp_path):
    await filled(tmp_path, count=3)
    j = EmbeddedJournal(tmp_path / "journal", segment_bytes=SEG)
    await j.open([])  # holds w0's writer.lock
    try:
        with pytest.raises(RepairRefused, match="writer.lock"):
            repair(tmp_path / "journal", tmp_path)
    finally:
        await j.aclose()
    fd = os.open(tmp_path / "delivery.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(RepairRefused, match="delivery.lock"):
            repair(tmp_path / "journal", tmp_path)
    finally:
        os.close(fd)


async def test_an_interrupted_repair_is_finished_or_started_again(tmp_path, monkeypatch):
    from sluiceway.journal import repair as mod

    files = await filled(tmp_path)
    lost = damage(files[1], 3)

    def stop(*a, **k):
        raise KeyboardInterrupt

    # stopped after the runs and the manifest were staged, before the damaged file moved
    monkeypatch.setattr(mod, "_quarantine", stop)
    with pytest.raises(KeyboardInterrupt):
        repair(tmp_path / "journal", tmp_path)
    monkeypatch.undo()
    assert files[1].exists()
    (d,) = repair(tmp_path / "journal", tmp_path).damaged  # discarded the staged runs, did it again
    assert d.missing == [(lost, lost)]
    assert [off for off, _ in await everything(tmp_path)] == [i for i in range(1, 61) if i != lost]

    # stopped after the damaged file moved, before the runs did
    files = segs(tmp_path)
    lost2 = damage(files[-2], 0)
    monkeypatch.setattr(mod, "_move_runs", stop)
    with pytest.raises(KeyboardInterrupt):
        repair(tmp_path / "journal", tmp_path)
    monkeypatch.undo()
    dry = repair(tmp_path / "journal", tmp_path, dry_run=True)
    assert dry.finished == [] and "a repair was interrupted here" in dry.notes[0]
    report = repair(tmp_path / "journal", tmp_path)
    assert report.finished == [f"w0/{files[-2].name}"] and report.damaged == []
    assert [off for off, _ in await everything(tmp_path)] == [i for i in range(1, 61) if i not in (lost, lost2)]


def test_find_runs_skips_garbage_between_frames():
    def frame(off: int, payload: bytes) -> bytes:
        from sluiceway.journal.segment import _crc32

        return HEADER.pack(len(payload), _crc32(off.to_bytes(8, "little") + payload), off) + payload

    data = frame(5, b"a") + frame(6, b"bb") + b"\x00junk\x07" + frame(8, b"c") + frame(7, b"old") + frame(9, b"d")
    runs = find_runs(data, 5, 20)
    assert [(r.first, r.last) for r in runs] == [(5, 6), (8, 8), (9, 9)]  # 7 after 8 is out of order: dropped
    assert find_runs(data, 6, 20)[0].first == 6  # offsets below lo are not taken


def slow_find_runs(data: bytes, lo: int, hi: int | None) -> list[tuple[int, int, int, int]]:
    """The plain definition of ``find_runs``: every byte tried as a frame's start."""
    from sluiceway.journal.segment import HDR, MAX_FRAME, _crc32

    runs: list[list[int]] = []
    expected, pos = lo, 0
    while pos + HDR <= len(data):
        length, crc, off = HEADER.unpack_from(data, pos)
        end = pos + HDR + length
        top = hi if hi is not None else expected + (len(data) - pos) // HDR
        if length <= MAX_FRAME and end <= len(data) and expected <= off <= top and _crc32(data[pos + 8:end]) == crc:
            if runs and runs[-1][3] == pos and runs[-1][1] + 1 == off:
                runs[-1][1], runs[-1][3] = off, end
            else:
                runs.append([off, off, pos, end])
            expected, pos = off + 1, end
        else:
            pos += 1
    return [tuple(r) for r in runs]


@pytest.mark.parametrize("seed", range(40))
def test_find_runs_finds_what_trying_every_byte_finds(seed):
    """The skips over zeros and to the next possible offset field find the same runs as trying
    every byte, in garbage full of zero runs and of the four zero bytes a low offset has."""
    import random

    from sluiceway.journal.segment import _crc32

    rnd = random.Random(seed)
    first = rnd.choice([1, 7, 300, (1 << 32) - 40, 1 << 40])
    hi = rnd.choice([None, first + 200])

    def junk() -> bytes:
        pieces = [rnd.randbytes(rnd.randrange(0, 40)), bytes(rnd.randrange(0, 30)), b"\0\0\0\0",
                  rnd.randbytes(3) + bytes(5), HEADER.pack(rnd.randrange(0, 50), 0, first + rnd.randrange(0, 60))]
        return b"".join(rnd.choice(pieces) for _ in range(rnd.randrange(0, 6)))

    data, off = b"", first
    for _ in range(rnd.randrange(1, 40)):
        payload = rnd.randbytes(rnd.randrange(0, 30))
        frame = HEADER.pack(len(payload), _crc32(off.to_bytes(8, "little") + payload), off) + payload
        if rnd.random() < 0.2:  # a damaged frame: one byte changed
            at = rnd.randrange(len(frame))
            frame = frame[:at] + bytes([frame[at] ^ 0x5A]) + frame[at + 1:]
        data += frame + (junk() if rnd.random() < 0.4 else b"")
        off += rnd.choice([1, 1, 1, 2, 5])
    got = [(r.first, r.last, r.start, r.end) for r in find_runs(data, first, hi)]
    assert got == slow_find_runs(data, first, hi)


runner = CliRunner()


async def test_the_command(tmp_path):
    files = await filled(tmp_path, cursors={"sql": Cursor(0)})
    damage(files[1], 1)
    r = runner.invoke(app, ["journal", "repair", "--data-dir", str(tmp_path), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert files[1].name in r.stdout and "would keep" in r.stdout and "--dry-run" in r.stdout
    assert "at most 1 of the missing record(s)" in r.stdout
    r = runner.invoke(app, ["journal", "repair", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "repaired 1 damaged segment(s) and 0 damaged cursor(s)" in r.stdout and "quarantine" in r.stdout
    r = runner.invoke(app, ["journal", "repair", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0 and "nothing to repair" in r.stdout
    # (status runs its own event loop: not on this test's)
    r = await asyncio.to_thread(runner.invoke, app, ["journal", "status", "--data-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "quarantine holds 1 file(s)" in r.stdout
    r = runner.invoke(app, ["journal", "repair", "--data-dir", str(tmp_path / "none")])
    assert r.exit_code == 0 and "no journal" in r.stdout


def test_the_command_refuses_a_jetstream_journal(tmp_path):
    config = tmp_path / "sluice.yaml"
    config.write_text("journal:\n  engine: jetstream\n  jetstream:\n    url: nats://127.0.0.1:1\n")
    r = runner.invoke(app, ["journal", "repair", "-c", str(config), "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and "embedded journal" in r.stderr
