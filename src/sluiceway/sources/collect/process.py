"""One claimed file → records in the journal, streamed, in batches.

The file is read in ``chunk_bytes`` chunks (obstore's streamed GET, for S3 and local
directories alike), decompressed and decoded incrementally (``logs.decoders``), and its
records are appended to the journal ``batch_records`` at a time (``gw.accept``: durable when
it returns). Only after the last batch is durable does the caller mark the file completed.

Each record's id is ``uuid5(source, key, version, line)``: reprocessing the same file version
(after a crash, a takeback, ``sluice files retry``) re-sends the same ids, which every sink
stores once. A new version of the file (another ETag) gives new ids. ``RecordIds`` computes
them without ``uuid.uuid5``: the SHA-1 of the namespace and the name's constant prefix is
hashed once per file and copied per line (byte-identical ids, a third of the cost). The record's
``event_time`` is the line's own time (``time``/``timestamp``), else the file's modification
time: never the time of reading, so it is the same on every reprocessing too.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from sluiceway.http.ingest import now_rfc3339
from sluiceway.logs.decoders import Bad, FileDecoder
from sluiceway.logs.pino import PROVENANCE, record_time
from sluiceway.record import DEPTH_BYTES, MAX_DEPTH, UTC, too_deep

if TYPE_CHECKING:
    from sluiceway.objectstore import ObjectStore
    from sluiceway.sources.collect.config import CollectorConfig

NAMESPACE = uuid.UUID("5b1f0c7e-6a42-4f7e-9d1e-1c0ffee10915")
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}  # hex digit → RFC 4122 variant digit
MAX_BAD_KEPT = 20  # bad lines kept in the files table (all are counted)


class ClaimLost(Exception):
    """The file's lease was taken back by another worker: stop, it is theirs now."""


class FileRejected(Exception):
    """The file decoded, but too many of its lines were bad."""


def record_id(source: str, key: str, version: str, line: int) -> str:
    return RecordIds(source, key, version)(line)


class RecordIds:
    """``record_id(source, key, version, line)`` for the lines of one file version.

    ``uuid5`` is SHA-1(namespace bytes + name) with the version (5) and variant (RFC 4122)
    bits set; the name here is ``source␟key␟version␟line``, so everything but the line is
    hashed once and the hash state copied for each line.
    """

    __slots__ = ("_prefix",)

    def __init__(self, source: str, key: str, version: str):
        self._prefix = hashlib.sha1(NAMESPACE.bytes + f"{source}\x1f{key}\x1f{version}\x1f".encode())

    def __call__(self, line: int) -> str:
        h = self._prefix.copy()
        h.update(b"%d" % line)
        x = h.hexdigest()  # of the first 32 digits, digit 12 becomes the version, 16 the variant
        return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{_VARIANT[x[16]]}{x[17:20]}-{x[20:32]}"


def version_of(etag: str | None, size: int, modified: datetime) -> str:
    """The ETag without quotes, else size and modification time."""
    return etag.strip('"') if etag else f"{size}-{modified.timestamp():.6f}"


async def open_object(store: "ObjectStore", key: str, chunk_bytes: int
                      ) -> tuple[str, datetime, AsyncIterator[bytes]]:
    """``(version, modified, chunks)`` of ``key`` as read now (the version that was read, not
    the listed one, names the records). Missing: ``FileNotFoundError``."""
    info, chunks = await store.open(key, chunk_size=chunk_bytes)
    return version_of(info.etag, info.size, info.last_modified), info.last_modified, chunks


@dataclass
class Outcome:
    version: str
    records: int = 0
    bad: int = 0
    bad_lines: list[dict[str, Any]] = field(default_factory=list)


class FileJob:
    """Decode one file version into encoded records, appending them in batches."""

    def __init__(self, config: "CollectorConfig", key: str, version: str, modified: datetime,
                 append: Callable[[list[bytes]], Awaitable[Any]], renew: Callable[[], Awaitable[bool]]):
        self.cfg = config
        self.key = key
        self.append = append
        self.renew = renew
        self.out = Outcome(version)
        self._pending: list[bytes] = []
        self._renewed = time.monotonic()
        self._fallback = orjson.dumps(modified.astimezone(UTC), option=orjson.OPT_UTC_Z)
        self._ids = RecordIds(config.name, key, version)
        source = f"{config.type}:{config.name}"
        self._envelope = (b'","tenant":' + orjson.dumps(config.tenant) + b',"stream":' + orjson.dumps(config.stream)
                          + b',"source":' + orjson.dumps(source) + b',"idempotency_key":null,"attachments":[]')
        self._prov = {"source": config.name, "location": config.location, "key": key, "version": version}

    def _encode(self, line: int, value: Any, received: bytes) -> bytes:
        # ``value`` was just decoded for this record alone, so it becomes the payload as it
        # is (``_file`` set in place, where an own ``_file`` key stood or at the end).
        if isinstance(value, dict):
            payload = value
            t = record_time(payload)
        else:
            payload, t = {"value": value}, None
        prov = self._prov.copy()
        prov["line"] = line
        payload[PROVENANCE] = prov
        event_time = orjson.dumps(t, option=orjson.OPT_UTC_Z) if t else self._fallback
        data = orjson.dumps(payload)
        if len(data) > DEPTH_BYTES and too_deep(data):
            raise ValueError(f"nests objects and arrays more than {MAX_DEPTH} levels deep")
        return b"".join((b'{"id":"', self._ids(line).encode(), self._envelope, b',"received_at":', received,
                         b',"event_time":', event_time, b',"payload":', data, b"}"))

    def _bad(self, line: int, error: str) -> None:
        self.out.bad += 1
        if len(self.out.bad_lines) < MAX_BAD_KEPT:
            self.out.bad_lines.append({"line": line, "error": error[:300]})

    def take(self, items: list[Any]) -> None:
        received = orjson.dumps(now_rfc3339())
        for it in items:
            if isinstance(it, Bad):
                self._bad(it.line, it.error)
                continue
            try:
                self._pending.append(self._encode(it.line, it.value, received))
            except (TypeError, ValueError) as e:  # e.g. an integer beyond 64 bits
                self._bad(it.line, f"cannot encode: {e}")
                continue
            self.out.records += 1

    async def flush(self, final: bool = False) -> None:
        while len(self._pending) >= self.cfg.batch_records or (final and self._pending):
            batch = self._pending[:self.cfg.batch_records]
            del self._pending[:self.cfg.batch_records]
            await self.append(batch)
        if time.monotonic() - self._renewed > self.cfg.lease / 3:
            if not await self.renew():
                raise ClaimLost(self.key)
            self._renewed = time.monotonic()

    async def run(self, chunks: AsyncIterator[bytes]) -> Outcome:
        """Decode, append every record durably, then check the bad-line share."""
        dec = FileDecoder(self.key, self.cfg.decoder, self.cfg.compression, self.cfg.max_item_bytes)
        async for chunk in chunks:
            for items in dec.feed(chunk):
                self.take(items)
                await self.flush()
                await asyncio.sleep(0)  # let delivery and HTTP run between pieces
        self.take(dec.finish())
        await self.flush(final=True)
        total = self.out.records + self.out.bad
        if total and self.out.bad / total > self.cfg.max_bad_share:
            raise FileRejected(f"{self.out.bad} of {total} lines are bad (more than "
                               f"{self.cfg.max_bad_share:.0%}); first: {self.out.bad_lines[0]}")
        return self.out
