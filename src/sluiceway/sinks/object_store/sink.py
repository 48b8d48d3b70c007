"""Writes each batch as gzip JSON Lines objects, one per (stream, tenant, hour) group.

Keys come from ``key_template`` and the batch's journal range, never from a clock or a
random id: a batch re-sent after a crash renders the same keys and the same bytes, so it
overwrites itself; ``{batch}`` (partition + offset range) makes keys of different batches
differ. Records are grouped by the key they render to, so a template without ``{hh}`` (or
without ``{tenant}``) simply makes bigger objects instead of colliding.

Placeholders: ``stream``, ``tenant``, ``yyyy``/``mm``/``dd``/``hh`` (of ``received_at``,
UTC), ``batch`` (``Batch.key``), ``partition``, ``first``/``last`` (offsets, 12 digits),
``hostname`` (dots replaced by ``-``). ``Batch.partition`` starts with the gateway's instance
id (``<data_dir>/instance-id``), so gateways sharing a bucket never share a key.

``format``: ``record`` writes each record's full envelope (one JSON object per line);
``payload`` writes only its payload (a payload that is a JSON string, such as a report kept
as text, is written as that text when it fits on one line).

Failures (``_combine``): a transient one sends the whole batch again (same keys, same bytes);
when some objects are stored and the others are refused for good, only the records of the
refused ones are dead-lettered, so stored records are not written again under other keys.
"""

from __future__ import annotations

import asyncio
import socket
import string
from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from sluiceway.config.blocks import Destination
from sluiceway.config.types import SinkConfigBase
from sluiceway.errors import PermanentError, RejectedRecords, SinkError, TransientError
from sluiceway.objectstore import ObjectStore, classify, open_destination
from sluiceway.record import UTC, RecordHead, dumps_exact, parse_time
from sluiceway.sinks.base import Batch, Sink
from sluiceway.sinks.context import SinkContext
from sluiceway.sinks.encoding import GZIP_ENCODING, JSONL_CONTENT_TYPE, group_records, gzip_lines

DEFAULT_KEY_TEMPLATE = "{stream}/{tenant}/{yyyy}/{mm}/{dd}/{hh}/{batch}.jsonl.gz"
PLACEHOLDERS = ("stream", "tenant", "yyyy", "mm", "dd", "hh", "batch", "partition", "first", "last", "hostname")
HOSTNAME = (socket.gethostname() or "unknown").replace(".", "-").replace("/", "-")
UPLOAD_CONCURRENCY = 8

_SAMPLE = {
    "stream": "usage", "tenant": "acme", "yyyy": "2024", "mm": "01", "dd": "02", "hh": "03",
    "batch": "p0-000000000001-000000000002", "partition": "p0",
    "first": "000000000001", "last": "000000000002", "hostname": "host",
}


def validate_key_template(template: str) -> frozenset[str]:
    """The placeholders ``template`` uses; ``ValueError`` if it could ever give two batches
    the same key, names an unknown placeholder or renders an invalid key."""
    valid = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
    used: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"key_template {template!r} is malformed ({exc}); use {{{{ }}}} for literal braces") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            raise ValueError(f"unknown placeholder {{{field}}} in key_template; valid placeholders: {valid}")
        if spec or conversion:
            raise ValueError(f"placeholder {{{field}}} takes no format spec or conversion")
        used.add(field)
    if "batch" not in used and not {"partition", "first", "last"} <= used:
        raise ValueError(
            "key_template must contain {batch}, or {partition}, {first} and {last}, "
            "so that no two batches share a key"
        )
    key = template.format(**_SAMPLE)
    if key.startswith("/") or key.endswith("/") or any(p in ("", ".", "..") for p in key.split("/")):
        raise ValueError(f"key_template {template!r} renders keys like {key!r}: no leading/trailing '/', '//', '.' or '..'")
    return frozenset(used)


class ObjectStoreSinkConfig(SinkConfigBase, Destination):
    type: Literal["object_store"] = "object_store"
    key_template: str = DEFAULT_KEY_TEMPLATE
    compression_level: int = Field(6, ge=1, le=9)
    format: Literal["record", "payload"] = "record"
    content_type: str = JSONL_CONTENT_TYPE
    content_encoding: Literal["gzip", "none"] = "gzip"  # none: plain application/gzip objects

    @field_validator("key_template")
    @classmethod
    def _template(cls, v: str) -> str:
        validate_key_template(v)
        return v


class ObjectStoreSink(Sink):
    def __init__(self, name: str, config: ObjectStoreSinkConfig, context: SinkContext):
        self.name = name
        self.config = config
        self._streams = frozenset(config.streams)
        self._closed = False
        self.store: ObjectStore = open_destination(config, context.data_dir / "objects")

    def _render(self, batch: Batch, stream: str, tenant: str, t: datetime) -> str:
        return self.config.key_template.format(
            stream=stream, tenant=tenant,
            yyyy=f"{t.year:04d}", mm=f"{t.month:02d}", dd=f"{t.day:02d}", hh=f"{t.hour:02d}",
            batch=batch.key, partition=batch.partition,
            first=f"{batch.first_offset:012d}", last=f"{batch.last_offset:012d}", hostname=HOSTNAME,
        )

    def plan(self, batch: Batch) -> dict[str, list[bytes]]:
        """Key → encoded record lines of ``batch`` (after the ``streams`` filter), in journal order.

        Works on the batch's heads and raw lines: no payload is decoded or re-encoded, so a
        line in the object is exactly the journal's encoding of the Record.
        """
        return self._plan(batch)[0]

    def _plan(self, batch: Batch) -> tuple[dict[str, list[bytes]], dict[str, list[int]]]:
        """``plan`` and, for each key, the batch indexes of its records."""
        streams = self._streams
        cache: dict[tuple[str, str, str], str] = {}

        def key_of(item: tuple[int, RecordHead]) -> str:
            head = item[1]
            k = (head.stream, head.tenant, _hour(head.received_at))
            key = cache.get(k)
            if key is None:
                hour = k[2]
                t = datetime(int(hour[0:4]), int(hour[5:7]), int(hour[8:10]), int(hour[11:13]), tzinfo=UTC)
                key = cache[k] = self._render(batch, k[0], k[1], t)
            return key

        items = [p for p in enumerate(batch.heads) if not streams or p[1].stream in streams]
        groups = group_records(items, key_of)
        indexes = {key: [i for i, _ in group] for key, group in groups.items()}
        if self.config.format == "payload":
            docs = batch.docs
            return {key: [_payload_line(docs[i]["payload"]) for i in ix] for key, ix in indexes.items()}, indexes
        raw = batch.raw
        return {key: [raw[i] for i in ix] for key, ix in indexes.items()}, indexes

    async def send(self, batch: Batch) -> None:
        if self._closed:
            raise TransientError(f"sink {self.name!r} is closed")
        groups, indexes = self._plan(batch)
        if not groups:
            return
        limit = asyncio.Semaphore(UPLOAD_CONCURRENCY)
        level = self.config.compression_level
        ctype = self.config.content_type
        cenc = GZIP_ENCODING if self.config.content_encoding == "gzip" else None

        async def upload(key: str, lines: list[bytes]) -> None:
            async with limit:
                # zlib releases the GIL: compressing in a thread keeps the event loop serving.
                data = await asyncio.to_thread(gzip_lines, lines, level)
                await self.store.put(
                    key, data, content_type=ctype, content_encoding=cenc,
                    metadata={"sluice-batch": batch.key, "sluice-records": str(len(lines))},
                    resent=batch.resent,
                )

        results = await asyncio.gather(*(upload(k, v) for k, v in groups.items()), return_exceptions=True)
        failed = {key: r for key, r in zip(groups, results) if isinstance(r, BaseException)}
        if failed:
            raise _combine(failed, indexes, batch)

    async def healthcheck(self) -> None:
        await self.store.check()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.store.aclose()


def _payload_line(payload: object) -> bytes:
    if type(payload) is str and "\n" not in payload and "\r" not in payload:
        return payload.encode()
    return dumps_exact(payload)  # integers past 64 bits too


def _hour(received_at: str) -> str:
    """``YYYY-MM-DDTHH`` (UTC) of an RFC 3339 time; fast for the ``…Z`` form records use."""
    if len(received_at) >= 20 and received_at[-1] == "Z" and received_at[10] == "T":
        return received_at[:13]
    return parse_time(received_at).strftime("%Y-%m-%dT%H")


def _combine(failed: dict[str, BaseException], indexes: dict[str, list[int]], batch: Batch) -> BaseException:
    """One error for a batch with failed uploads (``failed``: key → its error).

    * Any transient failure: transient, the whole batch is sent again (the objects already
      stored are overwritten with the same bytes).
    * Only permanent failures, some objects stored: ``RejectedRecords`` for the records of the
      failed objects, which are dead-lettered, and the stored objects stand. (A permanent error
      makes delivery send the batch again in halves, under keys of their own: the records of
      the stored objects would then be in two objects.)
    * Every object failed for good: permanent; nothing is stored, so the halves duplicate
      nothing, and a half may get through (a smaller object, fewer tenants)."""
    failures = list(failed.values())
    for f in failures:
        if not isinstance(f, Exception):  # CancelledError, KeyboardInterrupt: not ours to wrap
            return f
    errors = {key: classify(f) for key, f in failed.items()}
    transient = [e for e in errors.values() if not isinstance(e, PermanentError)]
    first = (transient or list(errors.values()))[0]
    message = f"batch {batch.key}: {len(failures)} of {len(indexes)} objects failed; first: {first}"
    if transient:
        delays = [e.retry_after for e in transient if isinstance(e, TransientError) and e.retry_after]
        err: SinkError = TransientError(message, retry_after=max(delays) if delays else None)
    elif len(failed) < len(indexes):
        err = RejectedRecords({i: f"object {key}: {e}" for key, e in errors.items() for i in indexes[key]})
    else:
        err = PermanentError(message)
    err.__cause__ = failed[next(k for k, e in errors.items() if e is first)]
    return err
