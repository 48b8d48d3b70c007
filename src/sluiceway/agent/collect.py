"""Find the files to ship: ``*.json`` under ``data_dir``, stable, in scope, not oversized.

- Scope: with ``allowed_subdirs`` empty, every ``*.json`` under ``data_dir`` (files directly in
  it too); otherwise only files under ``data_dir/<name>/`` for a listed name. Files out of scope
  are counted as *unknown* and never touched.
- Symlinks (to files or directories) are never followed nor collected; each is a warning.
- Stability: a file whose mtime is younger than ``settle_time`` is skipped this cycle; the
  others are stat'ed again ``settle_time`` later and skipped if size or mtime moved. A writer
  still appending is therefore never half-shipped (and never deleted, see ``runner``).
- A file larger than ``max_archive_bytes`` cannot fit any archive: it is skipped with a
  warning every cycle and kept (the original exporter deleted it).
- ``chunk`` splits the rest greedily, in (sorted) collection order, over uncompressed sizes.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class FileEntry:
    path: Path
    rel: str  # POSIX path relative to data_dir: the archive member name
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path, rel: str, st: os.stat_result) -> "FileEntry":
        return cls(path, rel, st.st_size, st.st_mtime_ns)

    def same_as(self, st: os.stat_result) -> bool:
        return stat.S_ISREG(st.st_mode) and (st.st_size, st.st_mtime_ns) == (self.size, self.mtime_ns)


@dataclass
class Scan:
    files: list[FileEntry] = field(default_factory=list)  # ready to ship
    oversized: list[FileEntry] = field(default_factory=list)
    unstable: list[Path] = field(default_factory=list)
    symlinks: list[Path] = field(default_factory=list)
    unknown: int = 0  # *.json files outside allowed_subdirs


def scan(data_dir: Path, *, allowed_subdirs: Sequence[str] = (), max_bytes: int, settle_time: float,
         now: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> Scan:
    result = Scan()
    allowed = set(allowed_subdirs)
    candidates: list[FileEntry] = []
    for entry, rel in _walk(data_dir, ()):
        parts = (*rel, entry.name)
        if allowed and (len(parts) == 1 or parts[0] not in allowed):
            if entry.name.endswith(".json") and not entry.is_symlink():
                result.unknown += 1
            continue
        if entry.is_symlink():
            if entry.name.endswith(".json") or entry.is_dir():
                result.symlinks.append(Path(entry.path))
            continue
        if not entry.name.endswith(".json"):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # vanished
        if not stat.S_ISREG(st.st_mode):
            continue
        fe = FileEntry.of(Path(entry.path), "/".join(parts), st)
        if fe.size > max_bytes:
            result.oversized.append(fe)
        elif now() - st.st_mtime < settle_time:
            result.unstable.append(fe.path)
        else:
            candidates.append(fe)
    if settle_time > 0 and candidates:
        sleep(settle_time)
    for fe in candidates:
        try:
            st = fe.path.lstat()
        except OSError:
            continue
        if fe.same_as(st):
            result.files.append(fe)
        else:
            result.unstable.append(fe.path)
    return result


def _walk(root: Path, rel: tuple[str, ...]) -> Iterator[tuple[os.DirEntry[str], tuple[str, ...]]]:
    """Every entry under ``root`` in name order, not descending into symlinked directories."""
    try:
        with os.scandir(root) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            yield from _walk(Path(e.path), (*rel, e.name))
        else:
            yield e, rel


def chunk(files: list[FileEntry], max_bytes: int) -> list[list[FileEntry]]:
    """Greedy: a new chunk starts when ``chunk_size + file_size > max_bytes``."""
    chunks: list[list[FileEntry]] = []
    current: list[FileEntry] = []
    size = 0
    for fe in files:
        if current and size + fe.size > max_bytes:
            chunks.append(current)
            current, size = [], 0
        current.append(fe)
        size += fe.size
    if current:
        chunks.append(current)
    return chunks
