"""Durable file-system steps shared by the journal, the blob spool and local object stores.

A file is durable once its data is synced *and* the directory entry that names it is synced;
a new directory is durable once the entry in its parent is. On Linux (ext4, xfs) a crash of
the machine can otherwise leave a file that was renamed into place empty, or not there at
all. Every helper here is blocking: callers on an event loop run it in a thread.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["copy_atomic", "exclusive_lock", "file_size", "fsync_dir", "makedirs", "remove_staging", "staging_path", "write_atomic"]

COPY_CHUNK = 1024 * 1024


def fsync_dir(path: Path | str) -> None:
    """Sync a directory, making the entries created, renamed or removed in it durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs(path: Path, sync: bool = True) -> None:
    """Create ``path`` and its missing parents; with ``sync``, every new entry is durable."""
    if path.is_dir():
        return
    makedirs(path.parent, sync)
    try:
        path.mkdir()
    except FileExistsError:
        return
    if sync:
        fsync_dir(path.parent)


def file_size(path: Path) -> int:
    """The size of the file at ``path``; 0 if there is none (e.g. removed meanwhile)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


@contextmanager
def exclusive_lock(path: Path, busy: Callable[[], BaseException]) -> Iterator[None]:
    """Hold ``flock(LOCK_EX | LOCK_NB)`` on ``path`` (created if missing) for the block; raise
    ``busy()`` at once if another process holds it. The lock goes with the process."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy() from None
        yield
    finally:
        os.close(fd)


def staging_path(final: Path) -> Path:
    """Where ``final`` is written before it is renamed into place: ``<name>#<digits>`` in the
    same directory (random digits), the form of obstore's local store's own staging files,
    which its listings leave out. A crash can leave one behind; nothing lists or reads it."""
    return final.with_name(f"{final.name}#{secrets.randbits(64)}")


def remove_staging(final: Path) -> int:
    """Delete the staging files of ``final`` (``<name>#<digits>`` beside it) that a process
    killed mid-write left behind; how many there were. Only for a caller that knows no one
    else is writing ``final`` now: another writer's staging file would go too, and its rename
    would fail. It lists the whole directory."""
    prefix = final.name + "#"
    removed = 0
    try:
        entries = list(os.scandir(final.parent))
    except FileNotFoundError:
        return 0
    for entry in entries:
        rest = entry.name[len(prefix):] if entry.name.startswith(prefix) else ""
        if rest.isascii() and rest.isdigit():
            try:
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                pass
    return removed


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _staged(final: Path, fill: Callable[[int], None], sync: bool) -> None:
    """Write a staging file with ``fill(fd)``, sync it, rename it to ``final``, sync the
    directory. On any failure the staging file is removed and ``final`` is untouched."""
    makedirs(final.parent, sync)
    staging = staging_path(final)
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        try:
            fill(fd)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(staging, final)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    if sync:
        fsync_dir(final.parent)


def write_atomic(final: Path, data: bytes | bytearray | memoryview, sync: bool = True) -> None:
    """Replace ``final`` with ``data`` atomically: a reader sees the old file or the new one,
    whole; with ``sync``, the new one survives a crash of the machine once this returns."""
    _staged(final, lambda fd: _write_all(fd, data), sync)


def copy_atomic(source: Path, final: Path, sync: bool = True) -> int:
    """``write_atomic`` with the content of the file ``source``, streamed; returns its size."""
    copied = 0

    def fill(fd: int) -> None:
        nonlocal copied
        with open(source, "rb") as src:
            while chunk := src.read(COPY_CHUNK):
                _write_all(fd, chunk)
                copied += len(chunk)

    _staged(final, fill, sync)
    return copied
