"""Repairing a damaged embedded journal (``sluice journal repair``), with the gateway stopped.

The gateway never drops acknowledged records on its own: a segment that is damaged in a way a
crash cannot explain (``embedded``, rule 4) makes it refuse to open that partition. This module
is the operator's way on, keeping every frame that can still be read:

1. It takes the data dir's ``delivery.lock`` and every partition's ``writer.lock``, so it runs
   only while no gateway process uses the journal.
2. It reads every segment that is not the partition's last file whole and checks each frame
   (length, crc, offset), as the gateway would when delivering it. The last file is the
   writer's to recover: a torn tail there is cut off when the partition is next opened, and
   only a frame with the wrong offset (which the writer refuses) makes it damaged.
3. For a damaged segment it finds the runs of good frames: after a bad frame it looks at every
   following byte for a frame whose crc is good and whose offset fits between the frames
   before and after it (no false match short of a crc collision on a frame that also has a
   plausible offset). Each run becomes a segment of its own, named by its first offset, so
   the offsets of the frames that could not be read are a gap, which the journal allows
   between segments (rule 7); offsets are not reused.
4. The damaged file is moved whole to ``journal/quarantine/<partition>/`` (kept, never
   deleted by the gateway), and the runs take its place.
5. A sink's cursor whose batch in flight (``pending``) covers missing offsets has that range
   widened by one offset, so the records left are sent again under a key of their own rather
   than the old batch's key with fewer records (which would replace what the sink stored).

Each segment is replaced in steps that a crash of the repair cannot make lose anything: the
runs are first written to ``journal/repair/<partition>/`` with a manifest naming them and the
damaged file; the damaged file is then moved to the quarantine, the runs into the partition,
and the manifest deleted. A repair that finds a manifest finishes its move (damaged file
already moved) or discards it (not yet moved) before it looks at the partition.

Blocking code, for the CLI; nothing of the gateway imports it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ..errors import JournalCorrupt, JournalError
from ..fsutil import exclusive_lock, file_size, fsync_dir, makedirs, write_atomic
from ..record import valid_name
from .base import Cursor
from .embedded import EmbeddedPartition
from .segment import SEG_RE, Run, Segment, all_zeros, find_runs, scan, segment_firsts, segment_name

Progress = Callable[[int], None]  # bytes of segments read since the last call


class RepairRefused(JournalError):
    """The journal cannot be repaired now (a gateway holds it, or it is not an embedded one)."""


@dataclass
class DamagedSegment:
    partition: str
    name: str  # the segment's file name
    size: int
    damage_at: int  # byte of the first frame that could not be read
    reason: str
    runs: list[Run]
    missing: list[tuple[int, int]]  # offset ranges no run holds (at most this many records)
    quarantined: Path | None = None  # where the file went (None: not moved, e.g. a dry run)

    @property
    def kept(self) -> int:
        return sum(r.count for r in self.runs)

    @property
    def missing_count(self) -> int:
        return sum(b - a + 1 for a, b in self.missing)


@dataclass
class SinkImpact:
    partition: str
    sink: str
    acked: int
    undelivered_missing: int  # missing offsets after the sink's acked one (at most that many records)
    pending: tuple[int, int] | None  # its batch in flight, when missing records were in it ...
    widened: tuple[int, int] | None = None  # ... and the range it is sent again as (one more offset)
    damaged: str | None = None  # why its cursor file could not be read (it starts over: acked 0)
    quarantined: Path | None = None  # where that file went


@dataclass
class Report:
    segments_checked: int = 0
    bytes_checked: int = 0
    damaged: list[DamagedSegment] = field(default_factory=list)
    sinks: list[SinkImpact] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)  # moves of an interrupted repair, completed
    notes: list[str] = field(default_factory=list)  # what the writer will do to the last files

    @property
    def damaged_cursors(self) -> list[SinkImpact]:
        return [s for s in self.sinks if s.damaged]


# -- locks ------------------------------------------------------------------------------------

def _exclusive(path: Path, what: str):
    return exclusive_lock(path, lambda: RepairRefused(f"{path} is locked by a running gateway ({what}); stop it first"))


def _partitions(journal_dir: Path) -> list[Path]:
    root = journal_dir / "partitions"
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    return [root / n for n in names if valid_name(n) and (root / n).is_dir()]  # as the journal lists them


# -- finding the good frames -----------------------------------------------------------------

def check_segment(path: Path, first: int) -> tuple[int, str, str] | None:
    """None if every frame of the whole file is good (offsets from ``first`` on, the file ending
    with a frame); else (byte of the first bad frame, kind, why). Kinds: "offset" (a good crc
    but the wrong offset), "torn" (damaged or cut short), "zeros" (only zeros after the last
    frame) and "empty"."""
    seg = Segment(first, path)
    try:
        size = os.fstat(seg.open_fd()).st_size
        status = scan(seg, size)
        zeros = status == "torn" and all_zeros(seg.open_fd(), seg.size, size)
    finally:
        seg.close()
    at = seg.size
    if status == "end" and at == size:
        return None if size else (0, "empty", "the file is empty")
    if status == "offset":
        return at, "offset", f"the frame at byte {at} has the wrong offset (expected {seg.next_off})"
    if zeros:
        return at, "zeros", f"the file goes on after its last frame with {size - at:,} zero byte(s)"
    return at, "torn", f"the frame at byte {at} (offset {seg.next_off}) is damaged or cut short"


def missing_ranges(runs: list[Run], lo: int, hi: int | None) -> list[tuple[int, int]]:
    """Offsets in ``lo``..``hi`` no run holds (after the last run only when ``hi`` is known)."""
    out: list[tuple[int, int]] = []
    nxt = lo
    for r in runs:
        if r.first > nxt:
            out.append((nxt, r.first - 1))
        nxt = r.last + 1
    if hi is not None and hi >= nxt:
        out.append((nxt, hi))
    return out


# -- the repair -------------------------------------------------------------------------------

def repair(journal_dir: Path, data_dir: Path, *, consumers: Sequence[str] = (), dry_run: bool = False,
           keep_tail: bool = False, fsync: bool = True, progress: Progress | None = None,
           total: Callable[[int], None] | None = None) -> Report:
    """Check every partition of the embedded journal in ``journal_dir`` and (unless ``dry_run``)
    repair its damaged segments. ``consumers``: the configured sinks, reported on with those
    that have a cursor file. ``total`` is told the bytes to read first, ``progress`` each step.
    ``keep_tail``: also split the partitions' last files when good frames follow a bad one
    there (the gateway would cut them off with the torn tail). Raises ``RepairRefused`` while a
    gateway uses the data dir."""
    report = Report()
    with ExitStack() as locks:
        locks.enter_context(_exclusive(data_dir / "delivery.lock", "delivery"))
        parts = _partitions(journal_dir)
        for pdir in parts:
            locks.enter_context(_exclusive(pdir / "writer.lock", f"partition {pdir.name}"))
        for pdir in parts:
            if not dry_run:
                report.finished += _finish_interrupted(journal_dir, pdir, fsync)
            elif any((journal_dir / "repair" / pdir.name).glob("*.seg.json")):
                report.notes.append(f"{pdir.name}: a repair was interrupted here; a run without --dry-run finishes it "
                                    "first (what is reported below does not count it)")
        plan = [(pdir, segment_firsts(pdir)) for pdir in parts]
        if total is not None:
            total(sum(file_size(pdir / segment_name(f)) for pdir, firsts in plan for f in firsts))
        for pdir, firsts in plan:
            damaged = _check_partition(pdir, firsts, report, progress, keep_tail)
            report.damaged += damaged
            report.sinks += _sink_impacts(journal_dir, pdir, damaged, consumers, dry_run, fsync)
            if not dry_run:
                for d in damaged:
                    _replace(journal_dir, pdir, d, fsync)
    return report


def _check_partition(pdir: Path, firsts: list[int], report: Report, progress: Progress | None,
                     keep_tail: bool) -> list[DamagedSegment]:
    damaged: list[DamagedSegment] = []
    for i, first in enumerate(firsts):
        path = pdir / segment_name(first)
        size = file_size(path)
        last_file = i == len(firsts) - 1
        found = check_segment(path, first)
        report.segments_checked += 1
        report.bytes_checked += size
        if progress is not None:
            progress(size)
        if found is None:
            continue
        at, kind, reason = found
        hi = None if last_file else firsts[i + 1] - 1
        if last_file and kind in ("zeros", "empty"):  # written ahead; a crash's leftover the writer removes
            continue
        runs = find_runs(path.read_bytes(), first, hi) if size else []
        if last_file and kind == "torn":  # the writer's to recover (rule 4)
            after = [r for r in runs if r.start >= at]
            if not after or not keep_tail:
                report.notes.append(_tail_note(pdir.name, path.name, size - at, after))
                continue
        damaged.append(DamagedSegment(pdir.name, path.name, size, at, reason, runs, missing_ranges(runs, first, hi)))
    return damaged


def _tail_note(partition: str, name: str, nbytes: int, after: list[Run]) -> str:
    note = (f"{partition}/{name}: the last segment ends with {nbytes:,} byte(s) that are not whole frames "
            "(a write a crash cut short); the gateway cuts them off when it next takes this partition")
    if after:
        note += (f". {sum(r.count for r in after)} good frame(s) follow the damage (offsets {after[0].first}-{after[-1].last}): records "
                 "of that unacknowledged write, or acknowledged ones behind damage to the disk; "
                 "--keep-tail keeps them")
    return note


def _sink_impacts(journal_dir: Path, pdir: Path, damaged: list[DamagedSegment], consumers: Sequence[str],
                  dry_run: bool, fsync: bool) -> list[SinkImpact]:
    """Per cursor of the partition, what the missing records mean for its sink. A batch in
    flight over them is widened by one offset: sent again after a restart, a batch keeps its
    range and so its key, and the same key with fewer records would replace the object it may
    have written before, dropping from the sink the records the journal lost; one more offset
    gives a key never used (the writer goes on after it, rule 7, so it is never a new record's).
    A cursor file that cannot be read is moved to the quarantine and its sink starts over
    (acked 0: what the journal holds is sent again, nothing skipped)."""
    missing = [m for d in damaged for m in d.missing]
    out: list[SinkImpact] = []
    cdir = pdir / "cursors"
    names = {n for n in os.listdir(cdir) if n.endswith(".json")} if cdir.is_dir() else set()
    for name in sorted(names | {f"{c}.json" for c in consumers}):  # no cursor file yet: acked 0
        path, sink = cdir / name, name[: -len(".json")]
        try:
            cur = EmbeddedPartition._read_cursor_file(path)
        except JournalCorrupt as exc:
            moved = None if dry_run else _quarantine(journal_dir, pdir, f"cursors/{name}", fsync)
            out.append(SinkImpact(pdir.name, sink, 0, 0, None, damaged=str(exc), quarantined=moved))
            continue
        undelivered = sum(b - max(a, cur.acked + 1) + 1 for a, b in missing if b > cur.acked)
        widened = None
        if cur.pending and any(a <= cur.pending[1] and cur.pending[0] <= b for a, b in missing):
            widened = (cur.pending[0], cur.pending[1] + 1)
            if not dry_run:
                write_atomic(path, Cursor(cur.acked, widened).encode(), fsync)
        if undelivered or widened:
            out.append(SinkImpact(pdir.name, sink, cur.acked, undelivered, cur.pending if widened else None,
                                  widened))
    return out


def _replace(journal_dir: Path, pdir: Path, d: DamagedSegment, fsync: bool) -> None:
    """Stage the runs and a manifest, then move the damaged file out and the runs in."""
    stage = journal_dir / "repair" / pdir.name
    makedirs(stage, fsync)
    data = (pdir / d.name).read_bytes()
    names = []
    for r in d.runs:
        name = segment_name(r.first)
        write_atomic(stage / name, data[r.start:r.end], fsync)
        names.append(name)
    manifest = stage / f"{d.name}.json"
    write_atomic(manifest, orjson.dumps({"source": d.name, "runs": names}), fsync)
    d.quarantined = _quarantine(journal_dir, pdir, d.name, fsync)
    _move_runs(stage, pdir, names, manifest, fsync)


def _quarantine(journal_dir: Path, pdir: Path, name: str, fsync: bool) -> Path:
    """Move ``pdir/name`` to ``journal/quarantine/<partition>/name`` (``.1``, ``.2``… added if
    taken)."""
    source = pdir / name
    qdir = journal_dir / "quarantine" / pdir.name / Path(name).parent
    makedirs(qdir, fsync)
    dest, n = qdir / source.name, 0
    while dest.exists():
        n += 1
        dest = qdir / f"{source.name}.{n}"
    os.rename(source, dest)
    if fsync:
        fsync_dir(qdir)
        fsync_dir(source.parent)
    return dest


def _move_runs(stage: Path, pdir: Path, names: list[str], manifest: Path, fsync: bool) -> None:
    for name in names:
        if (stage / name).exists():
            os.rename(stage / name, pdir / name)
    if fsync:
        fsync_dir(pdir)
    manifest.unlink()
    if fsync:
        fsync_dir(stage)


def _finish_interrupted(journal_dir: Path, pdir: Path, fsync: bool) -> list[str]:
    """Complete (damaged file already quarantined) or discard (not yet) what a repair that was
    stopped left in ``journal/repair/<partition>/``; the segments whose move was completed."""
    stage = journal_dir / "repair" / pdir.name
    if not stage.is_dir():
        return []
    done = []
    for manifest in sorted(stage.glob("*.seg.json")):
        m = orjson.loads(manifest.read_bytes())
        names = [n for n in m["runs"] if SEG_RE.match(n)]
        if (pdir / m["source"]).exists():  # stopped before the damaged file moved: start again
            for name in names:
                (stage / name).unlink(missing_ok=True)
            manifest.unlink()
        else:
            _move_runs(stage, pdir, names, manifest, fsync)
            done.append(f"{pdir.name}/{m['source']}")
    for leftover in stage.iterdir():  # runs (or staging files) written before their manifest
        leftover.unlink()
    if fsync:
        fsync_dir(stage)
    return done
