"""Segment files on their own: frames written by hand, scanned and read back."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

from sluiceway.errors import JournalCorrupt
from sluiceway.journal.segment import (
    HDR, Segment, all_zeros, check_head, read_frames, scan, segment_firsts, segment_name, write_zeros,
)
from tests.journal.common import item


def frame(off: int, data: bytes) -> bytes:
    return struct.pack("<IIQ", len(data), zlib.crc32(struct.pack("<Q", off) + data), off) + data


def write_segment(directory: Path, first: int, count: int, tail: bytes = b"") -> Segment:
    path = directory / segment_name(first)
    path.write_bytes(b"".join(frame(first + i, item(first + i)) for i in range(count)) + tail)
    return Segment(first, path)


def scanned(seg: Segment) -> Segment:
    assert scan(seg, seg.path.stat().st_size) == "end"
    return seg


def test_names_sort_as_offsets(tmp_path):
    for first in (52311, 1, 900):
        write_segment(tmp_path, first, 1)
    (tmp_path / "notes.txt").write_text("not a segment")
    assert segment_firsts(tmp_path) == [1, 900, 52311]
    assert segment_firsts(tmp_path / "gone") == []


def test_scan_trusts_whole_frames_and_stops_at_damage(tmp_path):
    seg = write_segment(tmp_path, 1, 5)
    size = seg.path.stat().st_size
    assert scan(seg, size) == "end"
    assert (seg.size, seg.next_off, seg.checked) == (size, 6, size)

    torn = write_segment(tmp_path, 10, 3, tail=frame(13, item(13))[:-4])  # cut mid-frame
    whole = torn.path.stat().st_size - len(frame(13, item(13))) + 4
    assert scan(torn, torn.path.stat().st_size) == "torn"
    assert (torn.size, torn.next_off) == (whole, 13)

    flipped = write_segment(tmp_path, 20, 3)
    data = bytearray(flipped.path.read_bytes())
    data[len(frame(20, item(20))) + HDR + 1] ^= 0x01  # a bit of the second payload
    flipped.path.write_bytes(data)
    assert scan(flipped, len(data)) == "torn"
    assert flipped.next_off == 21

    moved = Segment(30, tmp_path / segment_name(30))
    moved.path.write_bytes(frame(30, b"a") + frame(32, b"b"))  # good crc, wrong place
    assert scan(moved, moved.path.stat().st_size) == "offset"
    assert moved.next_off == 31
    for s in (seg, torn, flipped, moved):
        s.close()


def test_scan_takes_a_budget_in_steps(tmp_path):
    """A budget stops the scan after the read that reached it (reads are up to 256 KiB)."""
    seg = Segment(1, tmp_path / segment_name(1))
    seg.path.write_bytes(b"".join(frame(1 + i, b"%d" % i * 100_000) for i in range(20)))
    size = seg.path.stat().st_size
    steps = 0
    while scan(seg, size, budget=1) == "budget":
        steps += 1
        assert seg.size < size
    assert steps >= 5 and seg.size == size and seg.next_off == 21
    seg.close()


def test_check_head_reads_the_first_frame_only(tmp_path):
    good = write_segment(tmp_path, 7, 3)
    good.size = good.path.stat().st_size
    check_head(good)
    bad = write_segment(tmp_path, 50, 2)
    bad.size = bad.path.stat().st_size
    data = bytearray(bad.path.read_bytes())
    data[HDR] ^= 0xFF
    bad.path.write_bytes(data)
    with pytest.raises(JournalCorrupt, match="first frame"):
        check_head(bad)
    misnamed = Segment(8, good.path)  # the name says 8, the first frame 7
    misnamed.size = good.size
    with pytest.raises(JournalCorrupt):
        check_head(misnamed)
    for s in (good, bad, misnamed):
        s.close()


def test_read_frames_crosses_segments_and_keeps_its_limits(tmp_path):
    segs = [scanned(write_segment(tmp_path, 1, 10)), scanned(write_segment(tmp_path, 11, 10))]
    out, seg, pos, nxt = read_frames(segs, 0, 0, 1, 4, 100, 1 << 20)
    assert [e.offset for e in out] == list(range(4, 21))
    assert [e.data for e in out] == [item(i) for i in range(4, 21)]
    assert (seg, pos, nxt) == (segs[1], segs[1].size, 21)

    out, seg, pos, nxt = read_frames(segs, 0, 0, 1, 1, 3, 1 << 20)
    assert [e.offset for e in out] == [1, 2, 3] and nxt == 4
    out, *_ = read_frames(segs, 0, pos, nxt, 4, 100, 1 << 20)  # goes on where it stopped
    assert out[0].offset == 4

    out, *_ = read_frames(segs, 0, 0, 1, 1, 100, 1)  # one entry even past max_bytes
    assert len(out) == 1
    for s in segs:
        s.close()


def test_read_frames_verifies_what_was_not_checked(tmp_path):
    seg = write_segment(tmp_path, 1, 4)
    seg.size = seg.path.stat().st_size  # trusted by size, as a segment that is not last at open
    data = bytearray(seg.path.read_bytes())
    data[-1] ^= 0x01
    seg.path.write_bytes(data)
    # the entries before the damaged frame are returned, with where the next read starts: there
    out, at_seg, pos, expected = read_frames([seg], 0, 0, 1, 1, 100, 1 << 20)
    assert [e.offset for e in out] == [1, 2, 3] and (at_seg, expected) == (seg, 4)
    with pytest.raises(JournalCorrupt, match="offset 4"):
        read_frames([seg], 0, pos, 4, 4, 100, 1 << 20)
    seg.close()


def test_zeros(tmp_path):
    fd = os.open(tmp_path / "z", os.O_RDWR | os.O_CREAT)
    try:
        os.pwrite(fd, b"abc", 0)
        write_zeros(fd, 3, 3 + 2 * 1024 * 1024 + 5)  # more than one buffer of zeros
        assert os.fstat(fd).st_size == 3 + 2 * 1024 * 1024 + 5
        assert all_zeros(fd, 3, os.fstat(fd).st_size)
        assert not all_zeros(fd, 0, 10)
        assert not all_zeros(fd, 3, os.fstat(fd).st_size + 1)  # past the end is not zeros
    finally:
        os.close(fd)
