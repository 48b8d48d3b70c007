"""Where an LDO's file is, and serving it: the object store of the attachments sink that
delivers it (``object_key``), or the blob spool until that sink has.

Reads are streamed in chunks of ``CHUNK`` bytes (obstore's ranged GET, or the spool file
read from a thread), so serving a 2 GB clip holds about one chunk. One ``Range`` per request
(``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) answers 206; an unsatisfiable one 416; several
ranges or a malformed header are ignored (200, the whole file), as RFC 9110 allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluiceway.errors import Conflict, HTTPError, NotFound, SinkError, Unavailable
from sluiceway.sources.ldo.names import content_disposition, spool_suffix

if TYPE_CHECKING:
    from sluiceway.blobs import BlobSpool
    from sluiceway.sinks.attachments import AttachmentsSink, AttachmentsSinkConfig

CHUNK = 1024 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)\Z")


class RangeNotSatisfiable(HTTPError):
    status, code = 416, "range_not_satisfiable"


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (end exclusive) of a single byte range, None for the whole file."""
    if not header:
        return None
    m = _RANGE.match(header.strip().replace(" ", ""))
    if not m or m.groups() == ("", ""):
        return None
    first, last = m.groups()
    if first == "":  # bytes=-n: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            raise _unsatisfiable(header, size)
        return max(0, size - n), size
    start = int(first)
    end = size if last == "" else int(last) + 1
    if last != "" and end <= start:
        return None  # invalid range-spec: ignored
    if start >= size:
        raise _unsatisfiable(header, size)
    return start, min(end, size)


def _unsatisfiable(header: str, size: int) -> RangeNotSatisfiable:
    return RangeNotSatisfiable(f"range {header!r} is outside the file's {size} bytes",
                               headers={"Content-Range": f"bytes */{size}"})


@contextlib.contextmanager
def store_errors(what: str) -> Iterator[None]:
    """Object store failures (already classified) as 503: the file is there, the store is not."""
    try:
        yield
    except SinkError as e:
        raise Unavailable(f"object store unavailable while {what}: {e}", retry_after=5,
                          code="object_store_unavailable") from None


class Files:
    def __init__(self, sink_config: "AttachmentsSinkConfig", data_dir: Path, spool: "BlobSpool", store: Any):
        self.sink_config = sink_config
        self.data_dir = data_dir
        self.spool = spool
        self.db = store
        self._sink: AttachmentsSink | None = None

    @property
    def sink(self) -> "AttachmentsSink":
        """The attachments sink (not run here: for its key rendering and its object store,
        opened on first use so a worker that never sees an LDO never loads obstore)."""
        if self._sink is None:
            from sluiceway.sinks.attachments import AttachmentsSink
            from sluiceway.sinks.context import SinkContext

            self._sink = AttachmentsSink(self.sink_config.name, self.sink_config,
                                         SinkContext(data_dir=self.data_dir, store=self.db))
        return self._sink

    def object_key(self, doc: dict[str, Any], attachment: dict[str, Any]) -> str:
        """The key the sink will store ``attachment`` of record ``doc`` under."""
        return self.sink.key(doc, attachment)

    def spooled(self, row: dict[str, Any]) -> Path | None:
        """The file in the blob spool (not delivered yet), if it is there."""
        suffix = spool_suffix(row["id"])
        if suffix is None or not self.spool.root.is_dir():
            return None
        for p in self.spool.root.glob(f"*{suffix}"):
            with contextlib.suppress(OSError):
                if len(p.name) == 32 and p.stat().st_size == row["size_bytes"]:
                    return p
        return None

    async def open(self, row: dict[str, Any], start: int, end: int, head: bool) -> AsyncIterator[bytes]:
        """The bytes ``start``..``end`` of the file; 404 when it is nowhere."""
        for _ in range(2):  # a delivery may finish between the two looks: look again
            try:
                return await self._from_store(row, start, end, head)
            except FileNotFoundError:
                pass
            path = self.spooled(row)
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    return _read_file(open(path, "rb"), start, end, head)
        raise NotFound(f"the file of LDO {row['id']} is not available: not in the object store, "
                       "not in the blob spool (see sluice deadletters list)")

    async def _from_store(self, row: dict[str, Any], start: int, end: int, head: bool) -> AsyncIterator[bytes]:
        store = self.sink.store
        key = row["object_key"]
        with store_errors(f"reading {key!r}"):
            if head:
                await store.head(key)
                return _empty()
            whole = (start, end) == (0, row["size_bytes"])
            _, chunks = await store.open(key, byte_range=None if whole else (start, end), chunk_size=CHUNK)
        return chunks

    async def delete(self, row: dict[str, Any]) -> None:
        """Remove the object; 409 while the file waits in the spool (the sink would store it
        after the delete)."""
        store = self.sink.store
        key = row["object_key"]
        with store_errors(f"deleting {key!r}"):
            if not await store.exists(key) and self.spooled(row) is not None:
                raise Conflict(f"the file of LDO {row['id']} is not delivered to the object store yet; "
                               "retry the delete later", headers={"Retry-After": "5"})
            await store.delete(key)


async def send_file(send: Any, row: dict[str, Any], files: Files, headers: dict[bytes, bytes], head: bool) -> int:
    """Answer a GET (or HEAD) of the file: 200, 206, 304 or 416; returns the status."""
    size = row["size_bytes"]
    etag = f'"{row["sha256"]}"'
    base = [(b"accept-ranges", b"bytes"), (b"etag", etag.encode()),
            (b"content-type", (row["content_type"] or "application/octet-stream").encode("latin-1", "replace")),
            (b"content-disposition", content_disposition(row["filename"]).encode("latin-1", "replace"))]
    tags = {t.strip().removeprefix(b"W/") for t in (headers.get(b"if-none-match") or b"").split(b",")}
    if etag.encode() in tags or b"*" in tags:
        await send({"type": "http.response.start", "status": 304, "headers": base[:2]})
        await send({"type": "http.response.body", "body": b""})
        return 304
    rng = headers.get(b"range")
    if headers.get(b"if-range") not in (None, etag.encode()):
        rng = None  # the client's copy is another version: send it all
    span = parse_range(rng.decode("latin-1") if rng else None, size)
    start, end = span or (0, size)
    body = await files.open(row, start, end, head)
    status = 206 if span else 200
    out = [*base, (b"content-length", str(end - start).encode())]
    if span:
        out.append((b"content-range", f"bytes {start}-{end - 1}/{size}".encode()))
    try:
        await send({"type": "http.response.start", "status": status, "headers": out})
        async for chunk in body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        await body.aclose()  # type: ignore[attr-defined]
    return status


async def _empty() -> AsyncIterator[bytes]:
    return
    yield  # pragma: no cover


async def _read_file(f: Any, start: int, end: int, head: bool) -> AsyncIterator[bytes]:
    """The spool file's bytes ``start``..``end``; the open file keeps them readable even if
    the sink delivers and deletes the blob meanwhile."""
    try:
        if head:
            return
        f.seek(start)
        left = end - start
        while left > 0:
            chunk = await asyncio.to_thread(f.read, min(CHUNK, left))
            if not chunk:
                raise OSError(f"spooled file {f.name} ended {left} bytes early")
            left -= len(chunk)
            yield chunk
    finally:
        f.close()
