"""The embedded journal: append-only segment files in the data dir.

Design
======

On disk::

    <dir>/partitions/<name>/            one partition per writing process: w0, w1, … (or writer_name)
        writer.lock                     flock(LOCK_EX | LOCK_NB) held by the process writing it
        00000000000000000001.seg        segments, named by the offset of their first frame (%020d)
        00000000000000052311.seg        the last one is the *active* segment
        cursors/<consumer>.json         {"acked": N, "pending": [a, b] | null}

A segment is a sequence of frames, all integers little endian::

    u32 length | u32 crc32(offset bytes + payload) | u64 offset | payload (length bytes)

The offset bytes and the payload are contiguous, so the crc is ``zlib.crc32(frame[8:])``: it
catches flipped bits, torn writes, and frames that are intact but in the wrong place. (It is
computed with zlib-ng's ``crc32``: the same values as zlib's, three to four times as fast on a
frame of a few hundred bytes.) The active segment's file may go on after its last frame with
zeros written ahead (see "Preallocation"); an all-zero header is never a valid frame (its crc
would be ``crc32(8 zero bytes)``, not 0), so the frames end there.

Invariants
----------
1. Offsets start at 1 and strictly increase. Inside a segment they are contiguous and the first
   frame's offset is the segment's name. Between segments there may be a gap (rule 7), never
   an overlap or a step back.
2. Only the last segment of a partition is ever written, only by the process holding
   ``writer.lock``. A segment file is created (and its directory fsynced) by the same call that
   writes and syncs its first frames, and only after the previous segment was fully written and
   synced. So a segment is never empty except as a crash leftover at the tail, and a segment
   that is not last is complete: before the next segment is created, the zeros after its last
   frame are cut off and the cut is synced, so its file ends with its last frame.
3. ``append`` returns only after its frames were written and ``fdatasync``-ed (group commit:
   everything queued meanwhile shares one ``os.pwrite`` and one sync, done in a dedicated thread
   so the event loop keeps running). Under load, a commit starts no sooner than
   ``commit_delay`` after the previous one ended (PostgreSQL's ``commit_delay``): appends that
   arrive one by one, as from many clients at a steady rate, then share a sync instead of
   paying one each (a sync costs far more CPU than the write). An append to an idle writer (the
   last commit ended longer ago) is committed at once. In this process readers never see bytes past the last sync.
4. Hence after a crash the only possible damage is a *torn tail*: frames at the end of the last
   segment that were never acknowledged. Opening the writer scans the last segment and truncates
   it (then fsyncs) at the first frame that is short, has an impossible length or fails its crc,
   unless everything from there to the end of the file is zeros (space written ahead: kept);
   a tail segment left empty is deleted, and the segment before it, complete by rule 2, must
   then end with a good frame (damage there raises ``JournalCorrupt``). Should good frames
   follow the bad one (a write torn across pages, or a bad sector before acknowledged
   frames), the bytes cut are first copied to ``quarantine/<partition>/`` and an error logged.
   Anything else - damage in a segment that is not last, a frame with a good crc but the wrong
   offset - raises ``JournalCorrupt``, before anything was cut or removed: acknowledged data is
   never dropped silently. Segments that are not last are checked cheaply on open (their first
   frame) and fully when first read (crc of every frame); a process remembers per segment how
   far it has verified (or written) and does not check those bytes again for every consumer.
5. Each consumer (one per sink) has a cursor per partition: ``acked`` (everything <= acked is
   delivered) and ``pending`` (the exact range of the batch in flight, re-sent with the same
   boundaries after a crash). Cursor files are replaced atomically: tmp file, fsync, rename,
   fsync of the directory. A tmp file that a crash left behind is deleted when its consumer
   next loads the cursor (it alone writes it).
6. Space is reclaimed after each ``save_cursor``, by whole segments: a segment is deleted when
   its last offset (the next segment's first minus one) is <= min(acked) over the consumers
   registered with ``open`` (a consumer without a cursor file has acked 0; with no registered
   consumer nothing is deleted). The last segment is not deleted (but see rule 8). ``segment_bytes`` is capped
   at ``max_bytes / 4`` so a fully acknowledged partition always drops back under the limit.
7. Offsets are never reused. A cursor can be ahead of the recovered tail only after an OS crash
   (a reader in another process saw frames that were written but not yet synced); the writer
   then continues after the highest acked/pending offset in a new segment, so new data can never
   hide behind an old acknowledgement.
8. A partition that no process writes any more (``w1`` after going from two workers to one, a
   partition left by ``when_damaged: continue``, ``salvage``) would keep its last segment for
   ever under rule 6. So delivery calls ``reclaim_idle`` now and then: for each other process's
   partition whose registered consumers have all acked its last frame, it takes ``writer.lock``
   without waiting (held: its writer is alive, nothing is done), follows the partition to its
   end and, if the last segment ends with its last frame or with zeros (a torn tail is left to
   the writer's recovery, damage to the repair), deletes every segment before letting the lock
   go. The directory and its cursor files stay, so a writer that takes the partition again
   continues after the highest acknowledged offset (rule 7). A writer with a fixed
   ``writer_name`` waits up to ``LOCK_WAIT`` for its lock; one choosing among ``w0, w1, …``
   takes the next free name.

When full
---------
The partition's size is the bytes of its frames (plus appends queued but not yet written);
on disk the active segment's file is longer by the zeros written ahead (at most
``preallocate_bytes``). An append that would take it past ``max_bytes`` raises
``JournalFull(retry_after)`` and stores nothing; receivers turn that into 503 + Retry-After. ``full()`` answers the same
question a little early (when less than min(64 KiB, max_bytes / 16) is left) so a receiver can
refuse before reading a body. Space comes back only through reclaim (rules 6 and 8).

Processes
---------
Every process that ingests opens the same data dir as a writer and takes its own partition:
``writer_name`` if given, else the first of ``w0, w1, …`` whose lock is free (a restarted worker
reuses a free one and recovers it). All other partitions on disk are opened read-only: they are
followed by reading past the last trusted frame of the last segment (``poll_interval``) and
only frames that are complete with a good crc are trusted; an incomplete frame or zeros at the
end are "not written yet", never truncated (its writer may be mid-write, or dead and recovered
when its partition is next taken).
A roll is noticed by listing the directory; the older segment must then be complete. Any process
may save cursors of any partition and reclaim its segments; a process that finds files gone
rescans. Running two deliveries of the same consumer on the same partition is the caller's bug.
Another writer's partition that cannot be read (``JournalCorrupt``) does not fail ``open``: it is
logged and left out, and each ``refresh`` tries it again and raises, after taking the others.
Damage in the process's own partition does fail ``open`` (rule 4), unless ``when_damaged`` is
"continue": the partition is then left as it is, for the operator, and the process takes the
next free name (``w1``, …; after a fixed ``writer_name`` ``<name>-1``, …), as if another writer
held the damaged one.

Page cache
----------
A partition's synced bytes older than its newest ``page_cache_bytes`` are dropped from the
OS page cache (``posix_fadvise(DONTNEED)``, in the writer thread right after the sync, in
steps of at least ``SHED_STEP``; a segment that stops being the active one is dropped whole).
The pages are clean, so this changes nothing on disk: readers within that window of the tail
read from memory, readers further behind from disk. It keeps a journal that is written faster
than it is delivered from growing the page cache by everything it holds; growing it into
memory never touched before costs several times the write itself (measured on this project's
VMs: 3.1 ms of system time per MiB written against 0.35 ms with the drop). ``None`` leaves
it all to the kernel, as does ``fsync=False`` (the pages would still be dirty).

Preallocation
-------------
With ``fsync`` on, a commit whose frames pass the end of the active segment's file writes
``preallocate_bytes`` of zeros after them (not past ``segment_bytes``) before its sync; the
commits after it overwrite those zeros (``pwrite`` at the end of the frames). A sync of such
an overwrite flushes the data and the disk cache only: the file's length and block map did not
change, so the file system has no metadata of it to write. Growing the file on every commit
makes every sync also write the inode, synchronously (measured on this project's VMs, ext4
without a journal: 0.25 against 0.11 ms for a 4 KiB write + ``fdatasync``), and that inode's
block is shared with other files'. PostgreSQL fills its WAL segments with zeros for the same
reason. ``0`` turns it off: the file then ends with its last frame, as before. It is best
effort: when the disk has no room for the zeros (ENOSPC, EDQUOT), the file is cut back to its
last frame, the commit goes on without them, and none are written for ``PREALLOCATE_PAUSE``
seconds, so a nearly full disk still takes the appends that fit.

Modules
-------
``segment`` holds the frame format and the code that scans and reads segment files; ``writer``
the writer thread's code (``SegmentWriter``: create, write, write ahead, sync, end a segment);
``repair`` the operator's way on from a ``JournalCorrupt`` (``sluice journal repair``, gateway
stopped): it keeps every good frame of a damaged segment and moves the file to a quarantine;
``salvage`` puts the records of quarantined files back (``sluice journal salvage``).

Reading is cheap at the tail: each partition remembers where the last reads stopped (offset ->
file position) and keeps a sparse offset -> position index per segment, so a read never rescans
a segment from its start.
"""

from __future__ import annotations

import asyncio
import bisect
import fcntl
import itertools
import logging
import os
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from zlib_ng.zlib_ng import crc32 as _crc32  # zlib's crc32, 3-4x as fast on a frame

from ..errors import JournalCorrupt, JournalError, JournalFull
from ..fsutil import file_size, fsync_dir, makedirs, remove_staging, write_atomic
from ..record import valid_name
from .base import CONSUMER_RE, Cursor, Entry, Journal, Partition, PartitionStats
from .segment import (HDR, HEADER, U64, Segment, all_zeros, check_head, find_runs, read_frames, scan,
                      segment_firsts, segment_name)
from .writer import FADV_DONTNEED, SegmentWriter

__all__ = ["EmbeddedJournal", "EmbeddedPartition"]

log = logging.getLogger(__name__)

FOLLOW_BUDGET = 8 * 1024 * 1024  # bytes verified per follow() of another process's partition
COMMIT_BYTES = 8 * 1024 * 1024  # a group commit takes queued appends up to about this size
SHED_STEP = 4 * 1024 * 1024  # page cache is dropped in steps of at least this (see "Page cache")
FULL_RETRY_AFTER = 1.0
LOCK_WAIT = 2.0  # seconds a fixed writer_name waits for its lock (held briefly by a reclaim, rule 8)
RESCAN_EVERY = 0.25  # seconds between rescans of our own partition (others may reclaim it)


class EmbeddedPartition(Partition):
    """One partition directory; writable when this process holds its lock (``lock_fd``)."""

    def __init__(self, journal: EmbeddedJournal, name: str, lock_fd: int | None) -> None:
        self.name = name
        self.dir = journal.path / "partitions" / name
        self._j = journal
        self._lock_fd = lock_fd
        self._own = lock_fd is not None
        self._segs: list[Segment] = []
        self._firsts: list[int] = []
        self._last = 0  # newest entry stored (durable / verified), 0 if none seen
        self._next = 1  # next offset to assign (own)
        self._roll = True  # next commit starts a new segment (own)
        self._closed_bytes = 0  # bytes of segments before the active one (own)
        self._hints: dict[int, tuple[Segment, int]] = {}  # next offset -> (segment, position)
        self._queue: list[tuple[Sequence[bytes], asyncio.Future, int]] = []
        self._queued = 0
        self._wake = asyncio.Event()
        self._data = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self._closed = False
        self._rescanned_at = 0.0
        self._synced_at = 0.0  # monotonic time the last commit ended

    def __repr__(self) -> str:
        return f"<EmbeddedPartition {self.name} {'writer' if self._own else 'reader'} last={self._last}>"

    # -- opening ----------------------------------------------------------------------------

    def _seg_path(self, first: int) -> Path:
        return self.dir / segment_name(first)

    def _keep_cut_frames(self, seg: Segment, size: int) -> None:
        """Before a torn tail is cut (rule 4): if good frames follow the bad one, copy the bytes
        to be cut to ``quarantine/<partition>/`` and say so. After a power loss they are the rest of
        the one write that was never synced, so never acknowledged; on a failing disk they may
        be acknowledged records behind a bad sector, and the copy keeps them."""
        assert seg.fd is not None
        data = os.pread(seg.fd, size - seg.size, seg.size)
        runs = find_runs(data, seg.next_off, None)
        if not runs:
            return
        data = data[:max(runs[-1].end, len(data.rstrip(b"\0")))]  # not the zeros written ahead
        dest = self._j.path / "quarantine" / self.name / f"{seg.path.name}.cut-at-{seg.size}"
        try:
            write_atomic(dest, data, self._j.fsync)
        except OSError as exc:  # e.g. a full disk: the writer must still be able to start
            log.error("journal %s: good frames follow the damaged frame at byte %d of %s, and copying the %d bytes "
                      "to cut to %s failed (%s); they are cut all the same", self.name, seg.size, seg.path.name,
                      len(data), dest, exc)
            return
        log.error("journal %s: %d good frame(s) (offsets %d-%d) follow the damaged frame at byte %d of %s and are "
                  "cut off with it: the rest of a write a crash cut short, never acknowledged, unless the disk is "
                  "failing; the bytes cut are kept in %s", self.name, sum(r.count for r in runs),
                  runs[0].first, runs[-1].last, seg.size, seg.path.name, dest)

    def _list(self) -> list[int]:
        return segment_firsts(self.dir)

    def _set_segs(self, segs: list[Segment]) -> None:
        self._segs = segs
        self._firsts = [s.first for s in segs]

    def _recover(self) -> None:
        """Writer open (blocking): truncate a torn tail, find the next offset (rule 4, 7).
        Everything is checked before anything is cut or removed, so an open refused as
        ``JournalCorrupt`` leaves the files as they were (the tail included) for the repair."""
        sync = self._j.fsync
        makedirs(self.dir / "cursors", sync)
        firsts = self._list()
        floor = 1
        tail: Segment | None = None
        segs: list[Segment] = []
        cuts: list[tuple[Segment, int, bool]] = []  # (segment, file size, damaged): cut at seg.size, last first
        opened: list[Segment] = []  # closed below if anything fails
        try:
            while firsts:
                seg = Segment(firsts[-1], self._seg_path(firsts[-1]))
                opened.append(seg)
                seg.fd = os.open(seg.path, os.O_RDWR | os.O_CLOEXEC)
                size = os.fstat(seg.fd).st_size
                status = scan(seg, size)
                if status == "offset":
                    raise JournalCorrupt(f"{seg.path}: frame at byte {seg.size} has the wrong offset")
                seg.zeroed = size
                damaged = seg.size < size and not all_zeros(seg.fd, seg.size, size)  # zeros: preallocated
                if damaged and floor > 1:  # a segment after it was started: this one was complete (rule 2)
                    raise JournalCorrupt(f"{seg.path}: damaged frame at byte {seg.size} (offset {seg.next_off}), "
                                         "in a segment that was complete before the next one was started")
                if damaged or not seg.size:
                    cuts.append((seg, size, damaged))
                if seg.size:
                    tail = seg
                    break
                floor = max(floor, seg.first)  # an empty tail segment holds nothing acknowledged
                firsts.pop()
            for first in firsts[:-1]:
                seg = Segment(first, self._seg_path(first))
                seg.size = os.stat(seg.path).st_size
                segs.append(seg)
                check_head(seg)
            cursors = [self._read_cursor_file(path) for path in (self.dir / "cursors").glob("*.json")]
        except BaseException:  # no descriptor outlives a failed open
            for seg in (*segs, *opened):
                seg.close()
            raise
        for seg, size, damaged in cuts:
            if damaged:
                log.warning("journal %s: truncating torn tail of %s at byte %d (%d bytes)",
                            self.name, seg.path.name, seg.size, size - seg.size)
                self._keep_cut_frames(seg, size)
            if seg.size:
                os.ftruncate(seg.fd, seg.size)
                seg.zeroed = seg.size
                if sync:
                    os.fsync(seg.fd)
                continue
            seg.close()
            log.warning("journal %s: removing %s, an empty segment left by a crash", self.name, seg.path.name)
            os.unlink(seg.path)
            if sync:
                fsync_dir(self.dir)
        self._closed_bytes = sum(s.size for s in segs)
        if tail is not None:
            segs.append(tail)
            self._last = tail.next_off - 1
        self._set_segs(segs)
        hi = 0
        for cur in cursors:
            hi = max(hi, cur.acked, cur.pending[1] if cur.pending else 0)
        self._next = max(self._last + 1, hi + 1, floor)
        self._roll = tail is None or self._next != self._last + 1
        if tail is not None and self._next != self._last + 1:
            if hi + 1 == self._next:
                log.warning("journal %s: cursors are ahead of the tail (%d > %d); continuing at %d",
                            self.name, hi, self._last, self._next)
            else:  # offsets of a removed empty segment are not reused either (rule 7)
                log.warning("journal %s: continuing at %d, where the removed empty segment began",
                            self.name, self._next)

    def _open_foreign(self) -> None:
        """Reader open (blocking): follow from the last non-empty segment."""
        segs = []
        for first in self._list():
            seg = Segment(first, self._seg_path(first))
            try:
                seg.size = os.stat(seg.path).st_size
            except FileNotFoundError:
                continue
            segs.append(seg)
        while len(segs) > 1 and segs[-1].size == 0:
            segs.pop()
        if segs:
            segs[-1].size = 0
        self._set_segs(segs)
        self._follow(budget=None)

    # -- following another process's partition -------------------------------------------

    def _follow(self, budget: int | None = FOLLOW_BUDGET) -> None:
        """Trust new complete frames of a partition written by another process.

        Verifies at most ``budget`` bytes (None: no limit) so a large backlog is taken in steps.
        """
        left = budget
        while left is None or left > 0:
            if not self._segs:
                firsts = self._list()
                if not firsts:
                    return
                self._adopt(firsts[0])
                continue
            seg = self._segs[-1]
            try:
                fd = seg.open_fd()
            except FileNotFoundError:
                self._drop([seg])
                continue
            status, used = self._verify(seg, os.fstat(fd).st_size, left)
            if status == "budget":
                return
            if left is not None:
                left -= used
            later = [f for f in self._list() if f > seg.first]
            if not later:
                try:
                    replaced = os.stat(seg.path).st_ino != seg.ino
                except FileNotFoundError:
                    replaced = True
                if replaced:  # an empty tail removed (and maybe recreated) by a recovering writer
                    self._drop([seg])
                    continue
                return
            size = os.fstat(fd).st_size  # it rolled: the segment is complete now (rule 2)
            status, used = self._verify(seg, size, left)
            if status == "budget":
                return
            if left is not None:
                left -= used
            if seg.size != size:
                raise JournalCorrupt(f"{seg.path}: damaged frame at byte {seg.size} before a newer segment")
            self._adopt(later[0])

    def _verify(self, seg: Segment, size: int, budget: int | None) -> tuple[str, int]:
        """Scan a followed segment up to ``size``; (status, bytes verified)."""
        if size <= seg.size:
            return "end", 0
        before, start = seg.next_off, seg.size
        status = scan(seg, size, budget)
        if seg.next_off > before:
            self._last = max(self._last, seg.next_off - 1)
        if status == "offset":
            raise JournalCorrupt(f"{seg.path}: frame at byte {seg.size} has the wrong offset")
        return status, seg.size - start

    def _adopt(self, first: int) -> None:
        self._segs.append(Segment(first, self._seg_path(first)))
        self._firsts.append(first)

    def _drop(self, victims: list[Segment]) -> None:
        for seg in victims:
            seg.gone = True
            seg.close()
        self._set_segs([s for s in self._segs if not s.gone])

    def _rescan(self) -> None:
        """Notice segments deleted by another process (and new data, for a followed partition)."""
        on_disk = set(self._list())
        active = self._segs[-1] if self._own and self._segs else None
        self._drop([s for s in self._segs if s.first not in on_disk and s is not active])
        if self._own:
            self._closed_bytes = sum(s.size for s in self._segs[:-1])
        else:
            self._follow()

    # -- appending ----------------------------------------------------------------------------

    def _start(self) -> None:
        j = self._j
        self._writer = SegmentWriter(self.dir, self.name, fsync=j.fsync, segment_bytes=j.segment_bytes,
                                     preallocate_bytes=j.preallocate_bytes)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"journal-{self.name}")
        # Cached: on CPython 3.11 every get_running_loop() costs a getpid() system call.
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name=f"journal-{self.name}")

    def _used(self) -> int:
        active = self._segs[-1].size if self._segs else 0
        return self._closed_bytes + active + self._queued

    def _over(self, extra: int) -> bool:
        if self._used() + extra <= self._j.max_bytes:
            return False
        self._maybe_rescan()  # someone else may have reclaimed
        return self._used() + extra > self._j.max_bytes

    def _maybe_rescan(self) -> None:
        now = time.monotonic()
        if now - self._rescanned_at >= RESCAN_EVERY:
            self._rescanned_at = now
            self._rescan()

    def full(self) -> float | None:
        """Retry-After seconds when less than min(64 KiB, max_bytes / 16) is left, else None."""
        if self._own and self._over(min(64 * 1024, self._j.max_bytes // 16)):
            return FULL_RETRY_AFTER
        return None

    async def append(self, items: Sequence[bytes]) -> tuple[int, int]:
        return await self.append_soon(items)

    def append_soon(self, items: Sequence[bytes]) -> "asyncio.Future[tuple[int, int]]":
        if not self._own:
            raise JournalError(f"journal partition {self.name} is read-only in this process")
        if self._closing or self._task is None:
            raise JournalError(f"journal partition {self.name} is closed")
        if not items:
            fut = self._loop.create_future()
            fut.set_result((self._next, self._next - 1))
            return fut
        nbytes = sum(map(len, items)) + HDR * len(items)
        if self._over(nbytes):
            raise JournalFull(
                f"journal partition {self.name} is full ({self._used()} of {self._j.max_bytes} bytes)",
                retry_after=FULL_RETRY_AFTER,
            )
        fut = self._loop.create_future()
        self._queue.append((items, fut, nbytes))
        self._queued += nbytes
        self._wake.set()
        return fut

    async def _run(self) -> None:
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                wait = self._synced_at + self._j.commit_delay - time.monotonic()
                if wait > 0 and not self._closing:
                    await asyncio.sleep(wait)
                await self._commit()
                self._synced_at = time.monotonic()
        except BaseException as exc:
            err = JournalError(f"journal partition {self.name} writer stopped: {exc!r}")
            for _, fut, _ in self._queue:
                if not fut.done():
                    fut.set_exception(err)
            self._queue.clear()
            self._closing = True
            raise

    async def _commit(self) -> None:
        """Write everything queued with one write and one sync (group commit)."""
        queue, total, cut = self._queue, 0, 0
        while cut < len(queue) and (cut == 0 or total < COMMIT_BYTES):
            total += queue[cut][2]
            cut += 1
        batch, self._queue = queue[:cut], queue[cut:]
        parts: list[bytes] = []
        add, pack, pack_off, crc32 = parts.append, HEADER.pack, U64.pack, _crc32
        first = off = self._next
        done = []
        for items, fut, _ in batch:
            if fut.cancelled():
                continue
            start = off
            for data in items:
                add(pack(len(data), crc32(data, crc32(pack_off(off))), off))
                add(data)
                off += 1
            done.append((fut, start, off - 1))
        if not done:
            self._queued -= total
            return
        buf = b"".join(parts)
        seg = self._segs[-1] if self._segs else None
        new = self._roll or seg is None or seg.size >= self._j.segment_bytes
        new_path = self._seg_path(first) if new else None
        keep = 0 if seg is None else seg.size
        shed = self._shed_plan(seg, new, len(buf))
        old = (seg.path, seg.size) if new and seg is not None else None
        try:
            fd, zeroed, took = await self._loop.run_in_executor(
                self._executor, self._writer.write, None if new else seg.fd, new_path, buf, keep,
                0 if new or seg is None else seg.zeroed, shed, old,
            )
        except OSError as exc:
            if seg is not None and not new:
                seg.zeroed = seg.size  # write() cut the file back there (or tried to)
            self._queued -= total
            err = JournalError(f"journal partition {self.name}: write failed: {exc}")
            for fut, _, _ in done:
                if not fut.done():
                    fut.set_exception(err)
            return
        self._queued -= total
        if new_path is not None:
            if seg is not None:
                self._closed_bytes += seg.size
            seg = Segment(first, new_path)
            seg.fd = fd
            self._segs.append(seg)
            self._firsts.append(first)
            self._roll = False
        seg.note(first, seg.size)
        if seg.checked == seg.size:
            seg.checked += len(buf)
        seg.size += len(buf)
        seg.zeroed = zeroed
        seg.next_off = off
        self._next, self._last = off, off - 1
        for fut, a, b in done:
            if not fut.done():
                fut.set_result((a, b))
        self._notify()
        if self._j.fsync_observer is not None:
            self._j.fsync_observer(took)

    def _shed_plan(self, seg: Segment | None, new: bool, nbytes: int) -> tuple[int, int, int] | None:
        """What the next write may drop from the page cache: (fd, start, length) or None.

        ``seg`` is the active segment before the write of ``nbytes``; when ``new``, the write
        starts another one and ``seg`` is dropped whole. ``seg`` is the last segment until the
        write has returned, so it is never reclaimed (nor its fd closed) meanwhile."""
        window = self._j.page_cache_bytes
        if window is None or not self._j.fsync or FADV_DONTNEED is None or seg is None or seg.fd is None:
            return None
        end = seg.size if new else seg.size + nbytes - window
        if end - seg.shed < (1 if new else SHED_STEP):
            return None
        start, seg.shed = seg.shed, end
        return seg.fd, start, end - start

    def _notify(self) -> None:
        event, self._data = self._data, asyncio.Event()
        event.set()

    # -- reading ------------------------------------------------------------------------------

    async def read(self, after: int, max_count: int, max_bytes: int) -> list[Entry]:
        if self._closed:
            raise JournalError(f"journal partition {self.name} is closed")
        start = after + 1
        if start > self._last:
            if self._own:
                return []
            self._follow()
            if start > self._last:
                return []
        if max_count <= 0 or not self._segs:
            return []
        try:
            return self._collect(start, max_count, max_bytes)
        except FileNotFoundError:  # reclaimed by another process meanwhile
            self._rescan()
            return self._collect(start, max_count, max_bytes) if self._segs else []

    def _locate(self, start: int) -> tuple[int, int, int]:
        """(segment index, position, offset of the frame there) to start reading ``start``."""
        hint = self._hints.get(start)
        if hint is not None and not hint[0].gone:
            k = bisect.bisect_right(self._firsts, hint[0].first) - 1
            if k >= 0 and self._segs[k] is hint[0]:
                return k, hint[1], start
        k = bisect.bisect_right(self._firsts, start) - 1
        if k < 0:
            return 0, 0, self._segs[0].first
        seg = self._segs[k]
        j = bisect.bisect_right(seg.idx_off, start) - 1
        return k, seg.idx_pos[j], seg.idx_off[j]

    def _collect(self, start: int, max_count: int, max_bytes: int) -> list[Entry]:
        out, seg, pos, expected = read_frames(self._segs, *self._locate(start), start, max_count, max_bytes)
        if len(self._hints) >= 1024:
            self._hints.clear()
        self._hints[expected] = (seg, pos)
        return out

    async def wait(self, after: int, timeout: float) -> bool:
        if self._last > after:
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._closed:
            if not self._own:
                self._follow()
            if self._last > after:
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if not self._own:
                await asyncio.sleep(min(self._j.poll_interval, remaining))
                continue
            try:
                async with asyncio.timeout(remaining):
                    await self._data.wait()
            except TimeoutError:
                return self._last > after
        return self._last > after

    # -- cursors and reclaim -----------------------------------------------------------------

    def _cursor_path(self, consumer: str) -> Path:
        if not CONSUMER_RE.match(consumer):
            raise JournalError(f"invalid consumer name {consumer!r}")
        return self.dir / "cursors" / f"{consumer}.json"

    @staticmethod
    def _read_cursor_file(path: Path) -> Cursor:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return Cursor()
        try:
            return Cursor.decode(raw)
        except ValueError as exc:
            raise JournalCorrupt(f"{path}: bad cursor file: {exc}") from None

    async def load_cursor(self, consumer: str) -> Cursor:
        path = self._cursor_path(consumer)
        # The consumer alone writes its cursor, and it is starting: a staging file beside the
        # cursor is a leftover of a process killed while saving it (fsutil.write_atomic).
        removed = await asyncio.to_thread(remove_staging, path)
        if removed:
            log.info("journal %s: removed %d staging file(s) of cursor %s left by an interrupted save",
                     self.name, removed, consumer)
        return self._read_cursor_file(path)

    async def save_cursor(self, consumer: str, cursor: Cursor) -> None:
        path = self._cursor_path(consumer)
        data = cursor.encode()
        await asyncio.to_thread(self._write_cursor, path, data)
        try:
            await self._reclaim()
        except (OSError, JournalError):
            log.exception("journal %s: reclaim failed", self.name)

    def _write_cursor(self, path: Path, data: bytes) -> None:
        write_atomic(path, data, self._j.fsync)

    async def _reclaim(self) -> None:
        consumers = self._j.consumers
        if not consumers or self._closed:
            return
        acked = min(self._read_cursor_file(self._cursor_path(c)).acked for c in consumers)
        if not self._own:
            self._rescan()  # never trust a stale view of which segment is last
        victims = []
        for seg, nxt in zip(self._segs, self._segs[1:]):
            if nxt.first - 1 > acked:
                break
            victims.append(seg)
        if not victims:
            return
        self._drop(victims)
        if self._own:
            self._closed_bytes -= sum(s.size for s in victims)
        await asyncio.to_thread(self._unlink, [s.path for s in victims])

    def _unlink(self, paths: list[Path]) -> None:
        for path in paths:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        if self._j.fsync:
            fsync_dir(self.dir)

    async def reclaim_abandoned(self) -> int:
        """Delete every segment, the last one too, of another process's partition that no process
        writes now and every registered consumer has acked to its last frame (rule 8); bytes freed."""
        consumers = self._j.consumers
        if self._own or self._closed or not consumers or not self._segs:
            return 0
        acked = min(self._read_cursor_file(self._cursor_path(c)).acked for c in consumers)
        if acked < self._last:  # cheap answer first, without the lock
            return 0
        try:
            fd = os.open(self.dir / "writer.lock", os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return 0
        try:
            if not _lock(fd, 0.0):  # its writer is alive
                return 0
            # No writer now, and none can start before the lock is let go: what is on disk is all.
            self._follow(budget=None)
            segs = list(self._segs)
            if not segs or self._last < segs[-1].first:  # an empty tail: the writer's recovery decides
                return 0
            tail = segs[-1]
            if not await asyncio.to_thread(_rest_is_zeros, tail.path, tail.size):
                return 0  # a torn or damaged tail: for the writer's recovery (rule 4) or the repair
            acked = min(self._read_cursor_file(self._cursor_path(c)).acked for c in consumers)
            if acked < self._last or self._segs != segs or self._segs[-1].size != tail.size:
                return 0
            freed = sum(file_size(s.path) for s in segs)  # a stat each, as cheap as the cursor reads above
            self._drop(segs)
            await asyncio.to_thread(self._unlink, [s.path for s in segs])
        finally:
            os.close(fd)  # releases the flock, if taken
        log.info("journal %s: no process writes this partition and every sink has delivered all of it "
                 "(to offset %d); removed its %d segment(s), %d bytes", self.name, self._last, len(segs), freed)
        return freed

    # -- the rest -----------------------------------------------------------------------------

    def stats(self) -> PartitionStats:
        if not self._closed:
            if self._own:
                self._maybe_rescan()  # another process may have reclaimed segments
            else:
                try:
                    self._follow()
                except (OSError, JournalError):  # best effort here; read() reports damage
                    pass
        first = self._segs[0].first if self._segs and self._last >= self._segs[0].first else 0
        size = self._used() - self._queued if self._own else sum(s.size for s in self._segs)
        return PartitionStats(self.name, first, self._last, size)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closing = True
        if self._task is not None:
            self._wake.set()
            try:
                await self._task
            except BaseException:  # already reported to the appenders
                pass
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._closed = True
        for seg in self._segs:
            seg.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        self._notify()


def _lock(fd: int, wait: float) -> bool:
    """flock(LOCK_EX) without blocking, tried again for up to ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def _rest_is_zeros(path: Path, start: int) -> bool:
    """True if the file at ``path`` holds only zeros from byte ``start`` (or is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        return all_zeros(fd, start, os.fstat(fd).st_size)
    finally:
        os.close(fd)


class EmbeddedJournal(Journal):
    """The journal in ``<path>/partitions``; see the module docstring for the design."""

    def __init__(
        self,
        path: Path | str,
        *,
        segment_bytes: int = 64 * 1024 * 1024,
        max_bytes: int = 1024 * 1024 * 1024,
        fsync: bool = True,
        writer: bool = True,
        writer_name: str | None = None,
        poll_interval: float = 0.05,
        fsync_observer: Callable[[float], None] | None = None,
        page_cache_bytes: int | None = 32 * 1024 * 1024,
        commit_delay: float = 0.0,
        preallocate_bytes: int = 4 * 1024 * 1024,
        when_damaged: str = "refuse",
    ) -> None:
        if segment_bytes <= 0 or max_bytes <= 0 or poll_interval <= 0:
            raise ValueError("segment_bytes, max_bytes and poll_interval must be positive")
        if writer_name is not None and not valid_name(writer_name):
            raise ValueError(f"invalid writer_name {writer_name!r}: use [a-z0-9][a-z0-9_-]{{0,63}}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.segment_bytes = max(1, min(segment_bytes, max_bytes // 4))  # rule 6
        self.fsync = fsync
        self.is_writer = writer
        self.writer_name = writer_name
        self.poll_interval = poll_interval
        self.fsync_observer = fsync_observer  # called with the seconds of each write + sync
        self.page_cache_bytes = page_cache_bytes  # newest bytes per partition kept cached ("Page cache")
        if commit_delay < 0:
            raise ValueError("commit_delay must not be negative")
        self.commit_delay = commit_delay  # seconds from the end of one commit to the next (rule 3)
        if preallocate_bytes < 0:
            raise ValueError("preallocate_bytes must not be negative")
        self.preallocate_bytes = preallocate_bytes  # zeros ahead of the last frame ("Preallocation")
        if when_damaged not in ("refuse", "continue"):
            raise ValueError("when_damaged must be 'refuse' or 'continue'")
        self.when_damaged = when_damaged  # the own partition is damaged: refuse to open, or take another
        self.consumers: tuple[str, ...] = ()
        self._own: EmbeddedPartition | None = None
        self._parts: dict[str, EmbeddedPartition] = {}
        self._opened = False

    async def open(self, consumers: Sequence[str]) -> None:
        if self._opened:
            raise JournalError("journal is already open")
        for c in consumers:
            if not CONSUMER_RE.match(c):
                raise JournalError(f"invalid consumer name {c!r}")
        self.consumers = tuple(dict.fromkeys(consumers))
        self._opened = True
        await asyncio.to_thread(makedirs, self.path / "partitions", self.fsync)
        if self.is_writer:
            damaged: set[str] = set()
            while True:
                own = await asyncio.to_thread(self._take_partition, damaged)
                try:
                    await asyncio.to_thread(own._recover)
                except JournalCorrupt as exc:
                    await own.aclose()
                    if self.when_damaged != "continue":
                        raise
                    log.error("journal partition %s is damaged; it is left as it is for sluice journal repair, and "
                              "this process writes to another (journal.when_damaged: continue): %s", own.name, exc)
                    damaged.add(own.name)
                    continue
                except BaseException:
                    await own.aclose()
                    raise
                break
            self._parts[own.name] = own
            own._start()
            self._own = own
        try:
            await self.refresh()
        except JournalError as exc:  # another writer's partition: the rest opens, refresh() tries again
            log.error("a journal partition cannot be read; its records wait until it is repaired "
                      "(`sluice journal repair`, with the gateway stopped): %s", exc)

    def _take_partition(self, skip: Collection[str] = ()) -> EmbeddedPartition:
        """The first free partition: ``writer_name``, else ``w0``, ``w1``, … After damaged
        ones (``skip``, ``when_damaged: continue``), a fixed name goes on as ``<name>-1``, …."""
        base = self.writer_name
        names: Iterable[str]
        if base and not skip:
            names = [base]
        elif base:
            names = itertools.chain([base], (f"{base}-{i}" for i in itertools.count(1)))
        else:
            names = (f"w{i}" for i in itertools.count())
        for name in names:
            if name in skip:
                continue
            pdir = self.path / "partitions" / name
            makedirs(pdir, self.fsync)
            fd = os.open(pdir / "writer.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            # A fixed name has no other to go to: wait out a reclaim that holds the lock (rule 8).
            if not _lock(fd, LOCK_WAIT if base and not skip else 0.0):
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return EmbeddedPartition(self, name, fd)
        raise JournalError(f"journal partition {self.writer_name} is locked by another process")

    async def refresh(self) -> list[Partition]:
        root = self.path / "partitions"
        names = sorted(n for n in os.listdir(root) if valid_name(n) and (root / n).is_dir())
        damaged: list[JournalError] = []
        for name in names:
            part = self._parts.get(name)
            if part is None:
                part = EmbeddedPartition(self, name, None)
                try:
                    await asyncio.to_thread(part._open_foreign)
                except BaseException as exc:  # closed, and tried again at the next refresh
                    await part.aclose()
                    if not isinstance(exc, JournalError):
                        raise
                    damaged.append(exc)
                    continue
                self._parts[name] = part
            elif not part._own:
                try:
                    part._follow()
                except JournalError as exc:
                    damaged.append(exc)
        if damaged:  # the others are taken all the same: partitions() lists them
            raise damaged[0]
        return self.partitions()

    def full(self) -> float | None:
        return self._own.full() if self._own is not None else None

    async def reclaim_idle(self) -> int:
        freed = 0
        for part in list(self._parts.values()):
            if part._own:
                continue
            try:
                freed += await part.reclaim_abandoned()
            except (OSError, JournalError) as exc:  # damage is reported by refresh() and read()
                log.debug("journal %s: not reclaimed: %s", part.name, exc)
        return freed

    async def cursor(self, partition: str, consumer: str) -> Cursor:
        if not valid_name(partition) or not CONSUMER_RE.match(consumer):
            raise JournalError(f"invalid partition or consumer name {partition!r}/{consumer!r}")
        path = self.path / "partitions" / partition / "cursors" / f"{consumer}.json"
        return await asyncio.to_thread(EmbeddedPartition._read_cursor_file, path)

    async def aclose(self) -> None:
        parts, self._parts, self._own = list(self._parts.values()), {}, None
        for part in parts:
            await part.aclose()
