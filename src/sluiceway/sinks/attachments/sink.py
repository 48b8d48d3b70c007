"""Uploads the blobs records refer to (``record.Attachment``) from the blob spool to a local
directory or an S3 bucket, one object per blob, streamed from disk (multipart above 8 MiB).

Keys come from ``key_template``; placeholders: ``stream``, ``tenant``, ``yyyy``/``mm``/``dd``/
``hh`` (of ``received_at``, UTC), ``id`` (the record id), ``blob`` (the spool key, unique),
``name`` (the name the source suggested, e.g. a Lightfile6 specimen's
``<user>/YYYY/MM/DD/<base>.<ts><ext>``; the blob key when it suggested none). A template must
use ``{id}``, ``{blob}`` or ``{name}``; with ``{name}`` alone, uniqueness is the source's
promise (the Lightfile6 receiver's names carry a per-gateway unique timestamp).

Re-delivery is harmless: the same record renders the same key and the same bytes. After an
upload the blob is released (``BlobSpool.done``); if a crash came between the two, the
re-sent batch finds the blob gone and the object present with the right size, and moves on.
A blob that is gone while its object is not is a permanent error (dead letter).
"""

from __future__ import annotations

import asyncio
import string
from typing import Any, Literal

from pydantic import field_validator

from sluiceway.blobs import BlobSpool
from sluiceway.config.blocks import Destination
from sluiceway.config.types import SinkConfigBase
from sluiceway.errors import PermanentError, SinkError
from sluiceway.objectstore import ObjectStore, classify, open_destination
from sluiceway.sinks.base import Batch, Sink
from sluiceway.sinks.context import SinkContext

DEFAULT_KEY_TEMPLATE = "attachments/{tenant}/{yyyy}/{mm}/{dd}/{blob}/{name}"
PLACEHOLDERS = ("stream", "tenant", "yyyy", "mm", "dd", "hh", "id", "blob", "name")
UPLOAD_CONCURRENCY = 2  # blobs in flight; each multipart upload buffers up to 32 MiB


class AttachmentsSinkConfig(SinkConfigBase, Destination):
    type: Literal["attachments"] = "attachments"
    key_template: str = DEFAULT_KEY_TEMPLATE

    @field_validator("key_template")
    @classmethod
    def _template(cls, v: str) -> str:
        valid = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(v) if f is not None}
        except ValueError as e:
            raise ValueError(f"key_template {v!r} is malformed ({e})") from None
        unknown = fields - set(PLACEHOLDERS)
        if unknown:
            raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}} in key_template; valid placeholders: {valid}")
        if not fields & {"id", "blob", "name"}:
            raise ValueError("key_template must contain {id}, {blob} or {name} so that blobs never share a key")
        if v.startswith("/") or v.endswith("/"):
            raise ValueError("key_template must not start or end with '/'")
        return v


class AttachmentsSink(Sink):
    def __init__(self, name: str, config: AttachmentsSinkConfig, context: SinkContext):
        self.name = name
        self.config = config
        self.spool = BlobSpool(context.data_dir)
        self.context = context
        self.store: ObjectStore = open_destination(config, context.data_dir / "objects")

    def key(self, doc: dict[str, Any], att: dict[str, Any]) -> str:
        t = doc["received_at"]
        return self.config.key_template.format(
            stream=doc["stream"], tenant=doc["tenant"], yyyy=t[0:4], mm=t[5:7], dd=t[8:10], hh=t[11:13],
            id=doc["id"], blob=att["key"], name=att.get("name") or att["key"],
        )

    async def send(self, batch: Batch) -> None:
        jobs = [(doc, att) for doc in batch.docs for att in doc.get("attachments") or ()]
        if not jobs:
            return
        limit = asyncio.Semaphore(UPLOAD_CONCURRENCY)

        async def one(doc: dict[str, Any], att: dict[str, Any]) -> None:
            async with limit:
                await self._upload(doc, att, batch.resent)

        results = await asyncio.gather(*(one(d, a) for d, a in jobs), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException) and not isinstance(r, Exception):
                raise r
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            classified = [e if isinstance(e, SinkError) else classify(e) for e in errors]
            first = next((e for e in classified if isinstance(e, PermanentError)), classified[0])
            raise type(first)(f"{len(errors)} of {len(jobs)} attachments failed; first: {first}") from errors[0]

    async def _upload(self, doc: dict[str, Any], att: dict[str, Any], resent: bool = False) -> None:
        key = self.key(doc, att)
        blob = att["key"]
        path = self.spool.path(blob)
        if self.spool.has_done(blob, self.name):
            return
        metadata = {**(att.get("metadata") or {}), "sluice-sha256": att["sha256"], "sluice-record": doc["id"]}
        try:
            await self.store.put_file(key, path, content_type=att.get("content_type"), metadata=metadata,
                                      resent=resent)
        except FileNotFoundError:
            try:
                info = await self.store.head(key)
            except FileNotFoundError:
                raise PermanentError(f"blob {blob} of record {doc['id']} is missing from the spool "
                                     f"and {key!r} was never stored") from None
            if info.size != att["size"]:
                raise PermanentError(f"blob {blob} is missing from the spool and {key!r} has "
                                     f"{info.size} bytes, not {att['size']}") from None
        await asyncio.to_thread(self.spool.done, blob, self.name, self.peers(doc["stream"]))

    def peers(self, stream: str) -> list[str]:
        """Every sink that must have stored a blob of a ``stream`` record before the spool lets
        it go: the attachments sinks whose ``streams`` take that stream. (A sink that never sees
        the record must not be waited for, or the blob would stay in the spool for good.)"""
        peers = self.context.attachment_peers(stream)
        return peers if self.name in peers else [*peers, self.name]

    async def healthcheck(self) -> None:
        await self.store.check()

    async def aclose(self) -> None:
        await self.store.aclose()
