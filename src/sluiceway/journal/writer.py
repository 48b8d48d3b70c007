"""The writer thread of an embedded journal partition: the only code that changes its files.

Each writable partition owns one thread (a one-worker executor); its group commits call
``SegmentWriter.write`` there, one at a time, so nothing here needs a lock. ``embedded``'s
docstring gives the design this serves: rule 2 (how a segment is started and ended), rule 3
(one write and one sync per commit), "Page cache" and "Preallocation".
"""

from __future__ import annotations

import errno
import logging
import os
import time
from pathlib import Path

from ..fsutil import fsync_dir
from .segment import pwrite_all, write_zeros

log = logging.getLogger(__name__)

FADV_DONTNEED = getattr(os, "POSIX_FADV_DONTNEED", None)
PREALLOCATE_PAUSE = 60.0  # seconds without writing ahead after the disk had no room for it
_NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


class SegmentWriter:
    """Writes, syncs and ends the segment files of one partition directory."""

    def __init__(self, directory: Path, name: str, *, fsync: bool, segment_bytes: int,
                 preallocate_bytes: int) -> None:
        self.dir = directory
        self.name = name
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self.preallocate_bytes = preallocate_bytes
        self._paused_until = 0.0  # no zeros ahead until then (the disk was full)

    def write(self, fd: int | None, new_path: Path | None, buf: bytes, keep: int, zeroed: int,
              shed: tuple[int, int, int] | None = None,
              old: tuple[Path, int] | None = None) -> tuple[int, int, float]:
        """[End the ``old`` segment (path, bytes of its frames) at its last frame + create the
        next + fsync dir], write ``buf`` at byte ``keep`` (where the frames end), zeros ahead of
        it when it passes ``zeroed`` (the file's length), fdatasync, drop what ``shed`` names
        from the page cache; (fd, the file's length, seconds). On failure nothing written is
        kept: a new file is removed, an existing one cut back to ``keep``."""
        started = time.perf_counter()
        sync = self.fsync
        if new_path is not None:
            if old is not None and os.stat(old[0]).st_size != old[1]:
                self.cut(*old)  # a segment that is not last ends with its last frame (rule 2)
            fd = os.open(new_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
            keep = zeroed = 0
        assert fd is not None
        try:
            if new_path is not None and sync:
                fsync_dir(self.dir)
            end = keep + len(buf)
            pwrite_all(fd, buf, keep)
            if end > zeroed:
                zeroed = self._write_ahead(fd, end) if sync else end
            if sync:
                os.fdatasync(fd)
        except BaseException:
            if new_path is not None:
                os.close(fd)
                try:
                    os.unlink(new_path)
                except OSError:
                    pass
            else:
                try:
                    os.ftruncate(fd, keep)
                except OSError:
                    pass
            raise
        took = time.perf_counter() - started
        if shed is not None:
            try:
                os.posix_fadvise(*shed, FADV_DONTNEED)
            except OSError:  # advice only: the data is on disk either way
                pass
        return fd, zeroed, took

    def _write_ahead(self, fd: int, end: int) -> int:
        """Zeros after the frames that end at ``end`` (see "Preallocation"); the file's new
        length. Best effort: a disk without room for them gets none (the file is cut back to
        its frames) and none are tried again for ``PREALLOCATE_PAUSE`` seconds, so a nearly
        full disk still takes appends that fit."""
        target = max(end, min(end + self.preallocate_bytes, self.segment_bytes))
        if target == end or time.monotonic() < self._paused_until:
            return end
        try:
            write_zeros(fd, end, target)
        except OSError as exc:
            if exc.errno not in _NO_SPACE:
                raise
            self._paused_until = time.monotonic() + PREALLOCATE_PAUSE
            os.ftruncate(fd, end)
            log.warning("journal partition %s: no room on disk to write ahead; appending without it", self.name)
            return end
        return target

    def cut(self, path: Path, size: int) -> None:
        """Drop the zeros after the last frame of ``path`` (durably)."""
        os.truncate(path, size)
        if self.fsync:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
