"""The blob spool: large request bodies streamed to disk before their record is journalled.

Records never carry large binaries (DESIGN.md). A receiver streams the body into
``<data_dir>/blobs/tmp/<id>.part`` while hashing it, fsyncs the file, renames it to
``<data_dir>/blobs/<id>`` and fsyncs the directory; only then does it append the record that
references the blob (``Attachment.key`` = ``<id>``) and answer 2xx. So an accepted blob is on
disk, whole, before the client hears "accepted".

Every ``attachments`` sink uploads the blob and then calls ``done``: once all attachments
sinks of the configuration that take the record's stream have it (marker files
``<id>.<sink>.done``), the blob and its markers are deleted. Until then a blob stays, through
restarts and outages.

Memory: the body is written in chunks of at most ``FLUSH_BYTES`` (writes and hashing run in
a thread so the event loop keeps serving), so a 1 GB upload holds about one chunk.

Crash windows: a ``.part`` file left by a crash mid-upload (the client got no answer) is
removed when the spool opens. A crash between the rename and the journal append leaves a
blob no record references (the client got no answer either); it is never reported as
accepted, and the delivering process's sweep removes it once it is a day old
(``runtime/blobsweep.py``). A blob whose upload an ``attachments`` sink refused for good stays
(its record is a dead letter, whose journal entry may be reclaimed): ``sluice deadletters
retry`` needs it, and the sweep keeps every blob a journal entry or a dead letter refers to.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import hashlib
import os
from pathlib import Path
from typing import Any

import uuid_utils

from sluiceway.errors import PayloadTooLarge
from sluiceway.fsutil import fsync_dir
from sluiceway.http.body import body_chunks

FLUSH_BYTES = 1024 * 1024
# Linux: start writeback of what was just written (without waiting), so the fsync before the
# 2xx waits only for the tail. A no-op where sync_file_range is missing.
try:
    _sfr = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).sync_file_range
    _sfr.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
except (OSError, AttributeError, TypeError):
    _sfr = None
_SYNC_FILE_RANGE_WRITE = 2


class SpooledBlob:
    __slots__ = ("key", "size", "sha256", "path")

    def __init__(self, key: str, size: int, sha256: str, path: Path):
        self.key = key
        self.size = size
        self.sha256 = sha256
        self.path = path


class BlobSpool:
    def __init__(self, data_dir: Path, fsync: bool = True):
        self.root = Path(data_dir) / "blobs"
        self.tmp = self.root / "tmp"
        self.fsync = fsync
        self._opened = False

    def open(self) -> None:
        """Create the directories."""
        if self._opened:
            return
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._opened = True

    def purge_partials(self) -> int:
        """Remove ``.part`` files (call only where no upload can be running: at start-up of
        the process that owns the data dir)."""
        self.open()
        n = 0
        for p in self.tmp.glob("*.part"):
            p.unlink(missing_ok=True)
            n += 1
        return n

    def path(self, key: str) -> Path:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"invalid blob key {key!r}")
        return self.root / key

    def writer(self, limit: int) -> "BlobWriter":
        """A blob written piece by piece (for bodies that need parsing, e.g. multipart)."""
        self.open()
        return BlobWriter(self, limit)

    async def receive(self, receive: Any, limit: int, content_length: int | None) -> SpooledBlob:
        """Stream an ASGI request body into the spool; durable when this returns.

        413 above ``limit`` bytes (checked against Content-Length first, then as it streams);
        ``ClientDisconnected`` if the client goes away. Nothing is left behind on failure.
        """
        if content_length is not None and content_length > limit:
            raise PayloadTooLarge(f"body of {content_length} bytes exceeds the limit of {limit} bytes")
        w = self.writer(limit)
        try:
            async for chunk in body_chunks(receive):
                await w.write(chunk)
            return await w.commit()
        except BaseException:
            w.abort()
            raise

    def _commit(self, f: Any, part: Path, final: Path) -> None:
        if self.fsync:
            os.fsync(f.fileno())
        os.rename(part, final)
        if self.fsync:
            fsync_dir(self.root)

    def discard(self, key: str) -> None:
        """Drop a blob whose record never made it into the journal."""
        self.path(key).unlink(missing_ok=True)

    def done(self, key: str, sink: str, sinks: list[str]) -> bool:
        """Sink ``sink`` has stored blob ``key``; delete the blob once every sink in ``sinks``
        has. Returns True if the blob was deleted."""
        blob = self.path(key)
        others = [s for s in sinks if s != sink]
        if others:
            (self.root / f"{key}.{sink}.done").touch()
            if not all((self.root / f"{key}.{s}.done").exists() for s in others):
                return False
        blob.unlink(missing_ok=True)
        for s in sinks:
            (self.root / f"{key}.{s}.done").unlink(missing_ok=True)
        return True

    def has_done(self, key: str, sink: str) -> bool:
        return (self.root / f"{key}.{sink}.done").exists()

    def older_than(self, cutoff: float) -> dict[str, int]:
        """Blobs last written before ``cutoff`` (a ``time.time()``): key → size."""
        out: dict[str, int] = {}
        if self.root.is_dir():
            for entry in os.scandir(self.root):
                if "." in entry.name or not entry.is_file(follow_symlinks=False):
                    continue
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue
                if st.st_mtime < cutoff:
                    out[entry.name] = st.st_size
        return out

    def remove(self, key: str) -> bool:
        """Delete a blob and any ``.done`` markers of it; True if the blob was there."""
        path = self.path(key)
        try:
            path.unlink()
            found = True
        except FileNotFoundError:
            found = False
        for marker in self.root.glob(f"{key}.*.done"):
            marker.unlink(missing_ok=True)
        return found

    def drop_stray_markers(self, cutoff: float) -> int:
        """Delete ``.done`` markers older than ``cutoff`` whose blob is gone (a crash between
        the blob's deletion and its markers' in ``done``)."""
        n = 0
        if self.root.is_dir():
            for entry in os.scandir(self.root):
                key, _, rest = entry.name.partition(".")
                if not rest.endswith(".done") or (self.root / key).exists():
                    continue
                try:
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                        n += 1
                except FileNotFoundError:
                    continue
        return n

    def stats(self) -> tuple[int, int]:
        """(blobs, bytes) waiting in the spool."""
        sizes = self.older_than(float("inf"))
        return len(sizes), sum(sizes.values())


class BlobWriter:
    """Writes one blob: ``write`` pieces (buffered up to ``FLUSH_BYTES``, flushed from a
    thread), then ``commit`` (fsync, rename: durable) or ``abort`` (nothing left behind)."""

    def __init__(self, spool: BlobSpool, limit: int):
        self.spool = spool
        self.limit = limit
        self.key = uuid_utils.uuid7().hex
        self.part = spool.tmp / f"{self.key}.part"
        self.size = 0
        self._hash = hashlib.sha256()
        self._buf: list[bytes] = []
        self._pending = 0
        self._f = open(self.part, "wb", buffering=0)

    async def write(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self.size > self.limit:
            raise PayloadTooLarge(f"body exceeds the limit of {self.limit} bytes")
        self._buf.append(data)
        self._pending += len(data)
        if self._pending >= FLUSH_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if self._buf:
            data = b"".join(self._buf)
            self._buf, self._pending = [], 0
            await asyncio.to_thread(_write, self._f, self._hash, data, self.spool.fsync)

    async def commit(self) -> SpooledBlob:
        await self._flush()
        final = self.spool.root / self.key
        await asyncio.to_thread(self.spool._commit, self._f, self.part, final)
        self._f.close()
        return SpooledBlob(self.key, self.size, self._hash.hexdigest(), final)

    def abort(self) -> None:
        self._f.close()
        self.part.unlink(missing_ok=True)


def _write(f: Any, h: Any, data: bytes, early_writeback: bool = False) -> None:
    h.update(data)
    view = memoryview(data)
    while view:
        n = f.write(view)
        view = view[n:]
    if early_writeback and _sfr is not None:
        _sfr(f.fileno(), 0, 0, _SYNC_FILE_RANGE_WRITE)  # whole file; only pages not yet under writeback
