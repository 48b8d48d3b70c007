"""Segment files of the embedded journal: the frame format, and scanning and reading frames.

A segment is a sequence of frames, all integers little endian::

    u32 length | u32 crc32(offset bytes + payload) | u64 offset | payload (length bytes)

``embedded`` gives the design these files serve (invariants, recovery, who writes what); this
module only knows one segment's bytes. The crc is zlib-ng's ``crc32``: the same values as
zlib's, three to four times as fast on a frame of a few hundred bytes.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from zlib_ng.zlib_ng import crc32 as _crc32  # zlib's crc32, 3-4x as fast on a frame

from ..errors import JournalCorrupt
from .base import Entry

HEADER = struct.Struct("<IIQ")  # length, crc32(offset bytes + payload), offset
HDR = HEADER.size
U64 = struct.Struct("<Q")
MAX_FRAME = 1 << 30  # a longer length field is damage, not data
INDEX_EVERY = 64 * 1024  # sparse index granularity (bytes)
CHUNK = 256 * 1024  # first read size; doubles up to MAX_CHUNK within one read
MAX_CHUNK = 8 * 1024 * 1024
ZEROS = bytes(1024 * 1024)  # written ahead of the active segment's last frame
SEG_RE = re.compile(r"(\d{20})\.seg\Z")
NONZERO = re.compile(rb"[^\x00]")
HIGH_ZEROS = bytes(4)  # bytes 12-15 of a frame header whose offset is below 2**32


def segment_name(first: int) -> str:
    return f"{first:020d}.seg"


def pwrite_all(fd: int, data: bytes | memoryview, pos: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, pos)
        view, pos = view[n:], pos + n


def write_zeros(fd: int, pos: int, end: int) -> None:
    while pos < end:
        n = min(end - pos, len(ZEROS))
        pwrite_all(fd, memoryview(ZEROS)[:n], pos)
        pos += n


def all_zeros(fd: int, pos: int, end: int) -> bool:
    while pos < end:
        chunk = os.pread(fd, min(end - pos, len(ZEROS)), pos)
        if not chunk or chunk.count(0) != len(chunk):
            return False
        pos += len(chunk)
    return True


class Segment:
    """One segment file as a process knows it: how far its frames are trusted, a sparse
    offset -> position index, and (own active segment) its page-cache and write-ahead marks."""

    __slots__ = ("first", "path", "size", "next_off", "fd", "ino", "gone", "idx_off", "idx_pos", "checked", "shed",
                 "zeroed")

    def __init__(self, first: int, path: Path) -> None:
        self.first = first
        self.path = path
        self.size = 0  # trusted bytes: durable (own), verified (followed) or the whole file
        self.next_off = first  # offset of the frame starting at `size` (meaningful at the tail)
        self.fd: int | None = None
        self.ino = 0
        self.gone = False
        self.idx_off = [first]  # sparse index: offsets of some frames ...
        self.idx_pos = [0]  # ... and where they start
        # Bytes [0, checked) were crc-verified (or written) by this process: reads skip
        # their crcs. Segments trusted by size alone (not last at open) start at 0.
        self.checked = 0
        self.shed = 0  # bytes [0, shed) were dropped from the page cache (own, see "Page cache")
        self.zeroed = 0  # own active segment: the file's length; bytes [size, zeroed) are zeros

    def open_fd(self) -> int:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            self.ino = os.fstat(self.fd).st_ino
        return self.fd

    def note(self, off: int, pos: int) -> None:
        if pos - self.idx_pos[-1] >= INDEX_EVERY and off > self.idx_off[-1]:
            self.idx_off.append(off)
            self.idx_pos.append(pos)

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


def scan(seg: Segment, limit: int, budget: int | None = None) -> str:
    """Advance ``seg.size``/``seg.next_off`` over valid frames up to byte ``limit``.

    Returns "end" (reached limit), "budget", "torn" (short frame, bad length or bad crc at
    ``seg.size``) or "offset" (good crc, wrong offset: never a torn write).
    """
    fd = seg.open_fd()
    crc32, unpack = _crc32, HEADER.unpack_from
    pos, expected = seg.size, seg.next_off
    contiguous = seg.checked >= pos
    stop = limit if budget is None else min(limit, pos + budget)
    want, status = CHUNK, "end"
    while pos < limit:
        if pos >= stop:
            status = "budget"
            break
        buf = os.pread(fd, min(want, limit - pos), pos)
        n, i = len(buf), 0
        mv = memoryview(buf)
        length = 0
        while n - i >= HDR:
            length, crc, off = unpack(buf, i)
            j = i + HDR + length
            if length > MAX_FRAME:
                status = "torn"
                break
            if j > n:
                break
            if crc32(mv[i + 8 : j]) != crc:
                status = "torn"
                break
            if off != expected:
                status = "offset"
                break
            i = j
            expected += 1
        pos += i
        seg.size, seg.next_off = pos, expected
        if contiguous:
            seg.checked = pos
        seg.note(expected, pos)
        if status != "end":
            break
        if i == 0:  # not one whole frame in buf
            if n < HDR or pos + HDR + length > limit:
                status = "torn"
                break
            want = HDR + length
        else:
            want = CHUNK
    return status


def check_head(seg: Segment) -> None:
    """Cheap open-time check of a segment that is not last: its first frame."""
    fd = seg.open_fd()
    head = os.pread(fd, HDR, 0)
    ok = len(head) == HDR
    if ok:
        length, crc, off = HEADER.unpack(head)
        ok = off == seg.first and HDR + length <= seg.size
        if ok:
            ok = _crc32(os.pread(fd, length, HDR), _crc32(head[8:])) == crc
    if not ok:
        raise JournalCorrupt(f"{seg.path}: first frame is damaged")


def segment_firsts(directory: Path) -> list[int]:
    """The first offsets of the segments in a partition directory, in order ([] if it is gone)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for m in map(SEG_RE.match, names) if m)


def read_frames(segs: list[Segment], k: int, pos: int, expected: int, start: int, max_count: int,
                max_bytes: int) -> tuple[list[Entry], Segment, int, int]:
    """Entries from offset ``start`` on, reading from ``segs[k]`` at byte ``pos`` (where the frame
    of offset ``expected`` begins) through the later segments, up to ``max_count`` entries or
    about ``max_bytes`` (at least one). Verifies the crc of bytes this process has not checked
    yet. Returns the entries and where the next read goes on: (segment, position, offset).
    A damaged frame raises ``JournalCorrupt``, unless entries were read before it: those are
    returned, and the next read, which starts at the damaged frame, raises."""
    seg = segs[k]
    crc32, unpack = _crc32, HEADER.unpack_from
    out: list[Entry] = []
    total, want, stop = 0, CHUNK, False
    at = pos  # the frame being read: where a damaged one begins
    try:
        while True:
            if pos >= seg.size:
                if k + 1 >= len(segs):
                    break
                k += 1
                seg, pos, expected, want = segs[k], 0, segs[k].first, CHUNK
                continue
            fd = seg.fd if seg.fd is not None else seg.open_fd()
            n_req = min(seg.size - pos, want)
            buf = os.pread(fd, n_req, pos)
            n, i, length = len(buf), 0, 0
            at = pos
            if n < n_req:
                raise JournalCorrupt(f"{seg.path}: file ends at byte {pos + n}, expected {seg.size}")
            mv = memoryview(buf)
            while n - i >= HDR:
                length, crc, off = unpack(buf, i)
                j = i + HDR + length
                if j > n:
                    break
                if off != expected:
                    at = pos + i
                    raise JournalCorrupt(f"{seg.path}: damaged frame at byte {pos + i} (offset {expected})")
                if pos + i >= seg.checked:  # not verified yet in this process
                    if crc32(mv[i + 8 : j]) != crc:
                        at = pos + i
                        raise JournalCorrupt(f"{seg.path}: damaged frame at byte {pos + i} (offset {expected})")
                    if pos + i == seg.checked:
                        seg.checked = pos + j
                if off >= start:
                    if out and total + length > max_bytes:
                        stop = True
                        break
                    out.append(Entry(off, buf[i + HDR : j]))
                    total += length
                    i = j
                    expected += 1
                    if len(out) >= max_count or total >= max_bytes:
                        stop = True
                        break
                    continue
                i = j
                expected += 1
            if i == 0 and not stop:
                if n < HDR or pos + HDR + length > seg.size:
                    raise JournalCorrupt(f"{seg.path}: damaged frame at byte {pos} (offset {expected})")
                want = HDR + length
                continue
            pos += i
            seg.note(expected, pos)
            if stop:
                break
            want = min(want * 2, MAX_CHUNK)
    except JournalCorrupt:
        if not out:
            raise
        return out, seg, at, expected
    return out, seg, pos, expected


@dataclass
class Run:
    """Consecutive good frames in a segment's bytes: offsets ``first``..``last`` at bytes
    ``start``..``end``."""

    first: int
    last: int
    start: int
    end: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1


def run_payloads(data: bytes, run: Run) -> Iterator[bytes]:
    """The payloads of a run's frames in ``data`` (the bytes ``find_runs`` was given)."""
    pos = run.start
    while pos < run.end:
        length = HEADER.unpack_from(data, pos)[0]
        yield data[pos + HDR:pos + HDR + length]
        pos += HDR + length


def find_runs(data: bytes, lo: int, hi: int | None) -> list[Run]:
    """The runs of good frames in ``data`` (a damaged segment's bytes) whose offsets lie in
    ``lo``..``hi`` and increase (``hi`` None: bounded by how many frames the bytes could hold).
    After a bad frame every following byte is tried as a frame's start: a false match needs a
    crc collision on a frame whose offset also fits. Where the bytes are damaged, only the
    starts a frame could have are tried, found at C speed: a frame's offset (bytes 8-15 of its
    header) is never 0, so a run of zeros is skipped; and while every offset that fits is below
    2**32, its bytes 12-15 are zeros, so the search jumps to the next four zero bytes."""
    n = len(data)
    unpack, crc32, find = HEADER.unpack_from, _crc32, data.find
    mv = memoryview(data)
    runs: list[Run] = []
    expected, pos = lo, 0
    while pos + HDR <= n:
        length, crc, off = unpack(data, pos)
        end = pos + HDR + length
        top = hi if hi is not None else expected + (n - pos) // HDR
        if length <= MAX_FRAME and end <= n and expected <= off <= top and crc32(mv[pos + 8:end]) == crc:
            if runs and runs[-1].end == pos and runs[-1].last + 1 == off:
                runs[-1].last, runs[-1].end = off, end
            else:
                runs.append(Run(off, off, pos, end))
            expected, pos = off + 1, end
        elif off == 0:  # skip zeros
            nz = NONZERO.search(data, pos + 8)
            pos = max(pos + 1, nz.start() - 15) if nz else n
        elif top < 1 << 32:  # top only falls as pos grows: no later start has a high offset either
            at = find(HIGH_ZEROS, pos + 13)
            pos = at - 12 if at >= 0 else n
        else:
            pos += 1
    return runs
