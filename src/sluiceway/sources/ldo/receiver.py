"""The LDO API (Context Edge data-ingestion compatible), durable and per tenant.

``POST /ingest/ldo``: the file part (``video`` or ``file``) streams into the blob spool
(hashed, fsynced); then ONE record (stream ``ldo``) referencing it is appended to the journal
(fsynced); then the ``ldos`` row is written; then 200. So a row always points to a durable
record, and a 200 means both are on disk. A crash (or a store failure) after the append and
before the row leaves a record, and later an object, that no row lists: the client got no
200 and retries; nothing it was told is accepted is lost (docs/ldo.md, "Crash semantics").

With ``metadata.ldo_id`` an upload is idempotent per tenant: a repeat answers the existing
entry (200, ``Idempotent-Replayed: true``) and keeps nothing of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from sluiceway.errors import BadRequest, Conflict, HTTPError, NotFound, PayloadTooLarge, Unavailable
from sluiceway.http.auth import check
from sluiceway.http.body import _kind, content_length, media_type, read_body
from sluiceway.http.endpoint import run_endpoint
from sluiceway.http.ingest import encode_events
from sluiceway.http.params import int_param, limit_param, query_params
from sluiceway.http.responses import send_json
from sluiceway.record import TooDeep, dumps_exact, loads_payload, utcnow
from sluiceway.sources.base import ASGIApp, Source
from sluiceway.sources.ingress.multipart import MAX_PARTS, Form, read_form
from sluiceway.sources.ldo.config import LdoSourceConfig, resolve_files_sink
from sluiceway.sources.ldo.files import Files, send_file
from sluiceway.sources.ldo.names import new_id, object_name
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    from sluiceway.runtime.gateway import Gateway
    from sluiceway.store import TokenInfo

log = get_logger("sluiceway.ldo")
_dumps = orjson.dumps
FILE_FIELDS = ("video", "file")
MAX_CLIENT_ID = 256
MAX_SKIP = 2**63 - 1  # the databases' OFFSET is a 64-bit integer
LIST_FIELDS = ("id", "status", "filename", "created_at", "size_bytes", "metadata")


class UnprocessableEntity(HTTPError):
    status, code = 422, "unprocessable_entity"


class LdoReceiver(Source):
    config: LdoSourceConfig

    def __init__(self, name: str, config: LdoSourceConfig, gateway: "Gateway"):
        super().__init__(name, config, gateway)
        sink = resolve_files_sink(config, gateway.config.sinks)
        self.files = Files(sink, gateway.config.data_dir, gateway.blobs, gateway.store)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def routes(self) -> list[tuple[str, str, ASGIApp]]:
        out: list[tuple[str, str, ASGIApp]] = []
        for p in self.config.prefixes():
            out += [("POST", f"{p}/ingest/ldo", self.upload), ("GET", f"{p}/ingest/list", self.list),
                    ("GET", f"{p}/ingest/ldo/{{ldo_id}}", self.status),
                    ("GET", f"{p}/ingest/status/{{ldo_id}}", self.status),
                    ("GET", f"{p}/ingest/ldo/{{ldo_id}}/file", self.file),
                    ("DELETE", f"{p}/ingest/{{ldo_id}}", self.delete)]
        return out

    def openapi_paths(self) -> dict[str, Any]:
        from sluiceway.sources.ldo.openapi import ldo_paths

        return ldo_paths(self.config.prefixes())

    async def _token(self, headers: dict[bytes, bytes], scope: str) -> "TokenInfo":
        auth = headers.get(b"authorization")
        token = await self.gateway.auth.token(auth.decode("latin-1") if auth else None)
        check(token, scope, token.tenant)
        return token

    # -- upload ---------------------------------------------------------------------------
    async def upload(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        gw, cfg = self.gateway, self.config

        async def handle(headers: dict[bytes, bytes], _: str) -> tuple[int, str | None, str | None]:
            tenant = (await self._token(headers, "ingest")).tenant
            cl = content_length(headers)
            slack = MAX_PARTS * cfg.max_metadata_bytes + 64 * 1024
            if cl is not None and cl > cfg.max_file_bytes + slack:
                raise PayloadTooLarge(f"body of {cl} bytes exceeds the file size limit of {cfg.max_file_bytes} bytes")
            gw.check_room()
            ctype = (headers.get(b"content-type") or b"").decode("latin-1")
            if media_type(ctype) == "application/x-www-form-urlencoded":  # metadata only: curl -d
                body = await read_body(receive, cfg.max_metadata_bytes + 64 * 1024, cl)
                form = urlencoded_form(body)
            else:
                form = await read_form(receive, ctype, gw.blobs, lambda _: cfg.max_file_bytes,
                                       file_fields=FILE_FIELDS, field_limit=cfg.max_metadata_bytes)
            try:
                if form.blob is not None and form.blob.size == 0 and not form.filename:
                    gw.blobs.discard(form.blob.key)  # an empty file input: no file
                    form.blob = None
                metadata = parse_metadata(form.fields.get("metadata"))
                client_id = parse_client_id(metadata)
                async with self._lock(tenant, client_id):
                    status, body, replay = await self._ingest(tenant, client_id, metadata, form)
            finally:
                if form.blob is not None:  # refused, or a repeat: the journal never got it
                    gw.blobs.discard(form.blob.key)
            await send_json(send, status, body, {"Idempotent-Replayed": "true"} if replay else None)
            return status, tenant, cfg.stream

        await run_endpoint(self.gateway, "/ingest/ldo", scope, send, handle)

    async def _ingest(self, tenant: str, client_id: str | None, metadata: dict[str, Any],
                      form: Form) -> tuple[int, dict[str, Any], bool]:
        """(status, body, replayed). Sets ``form.blob`` to None once the journal holds it."""
        gw, cfg = self.gateway, self.config
        if client_id is not None:
            existing = await gw.store.get_ldo_by_client_id(tenant, client_id)
            if existing is not None:
                return 200, answer(existing, replay=True), True
        blob = form.blob
        created = utcnow()
        created_at = created.isoformat().replace("+00:00", "Z")
        ldo_id = new_id(created, blob.key if blob else None)
        row: dict[str, Any] = {"id": ldo_id, "tenant": tenant, "client_id": client_id, "status": "ingested",
                               "filename": None, "content_type": None, "size_bytes": None, "sha256": None,
                               "object_key": None, "metadata": metadata, "created_at": created}
        attachments: list[dict[str, Any]] = []
        if blob is not None:
            row.update(filename=form.filename, content_type=form.content_type or "application/octet-stream",
                       size_bytes=blob.size, sha256=blob.sha256)
            attachments.append({"key": blob.key, "sha256": blob.sha256, "size": blob.size,
                                "content_type": row["content_type"], "metadata": {"ldo-id": ldo_id},
                                "name": object_name(tenant, created, ldo_id, form.filename)})
        payload = {"id": ldo_id, "ldo_id": client_id, "metadata": metadata, "filename": row["filename"],
                   "size": row["size_bytes"], "sha256": row["sha256"], "content_type": row["content_type"],
                   "created_at": created_at}
        items = encode_events([(metadata, dumps_exact(payload))], tenant=tenant, stream=cfg.stream, source=self.name,
                              received_at=created_at, idempotency_key=client_id, attachments=_dumps(attachments))
        if blob is not None:
            row["object_key"] = self.files.object_key(orjson.loads(items[0]), attachments[0])
        await gw.accept(items, cfg.stream)  # durable; from here the journal owns the blob
        form.blob = None
        try:
            inserted = await gw.store.add_ldo(row)
        except Exception as e:
            log.error("ldo journalled but not registered", tenant=tenant, id=ldo_id, error=type(e).__name__)
            raise Unavailable("the LDO was stored but cannot be registered (the store is unavailable); send it "
                              "again", retry_after=5, code="store_unavailable") from None
        if not inserted:
            # Another worker registered the same ldo_id meanwhile: its entry wins. Ours stays a
            # record (and an object) no row lists.
            existing = await gw.store.get_ldo_by_client_id(tenant, client_id) if client_id else None
            if existing is None:
                raise Conflict(f"id {ldo_id} was taken; send the upload again")
            log.warning("concurrent upload of the same ldo_id; kept the first", tenant=tenant, ldo_id=client_id,
                        id=existing["id"], duplicate=ldo_id)
            return 200, answer(existing, replay=True), True
        log.info("ldo ingested", tenant=tenant, id=ldo_id, size=row["size_bytes"], ldo_id=client_id)
        return 200, answer(row), False

    @contextlib.asynccontextmanager
    async def _lock(self, tenant: str, client_id: str | None) -> AsyncIterator[None]:
        """One upload at a time per (tenant, ldo_id) in this process (others: the UNIQUE key)."""
        if client_id is None:
            yield
            return
        key = (tenant, client_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._locks.get(key) is lock:
                del self._locks[key]

    # -- reads ----------------------------------------------------------------------------
    async def list(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def handle(headers: dict[bytes, bytes], _: str) -> tuple[int, str | None, str | None]:
            tenant = (await self._token(headers, "read")).tenant
            q = query_params(scope.get("query_string", b"").decode("latin-1"))
            skip = int_param(q, "skip", 0, 0, MAX_SKIP)
            limit = limit_param(q)
            total, rows = await self.gateway.store.list_ldos(tenant, skip=skip, limit=limit)
            await send_json(send, 200, {"total": total, "ldos": [{k: r[k] for k in LIST_FIELDS} for r in rows]})
            return 200, tenant, None

        await run_endpoint(self.gateway, "/ingest/list", scope, send, handle)

    async def _row(self, headers: dict[bytes, bytes], scope: dict[str, Any], token_scope: str) -> dict[str, Any]:
        tenant = (await self._token(headers, token_scope)).tenant
        ldo_id = scope["path_params"]["ldo_id"]
        row = await self.gateway.store.get_ldo(tenant, ldo_id)
        if row is None:
            raise NotFound(f"LDO {ldo_id!r} not found")
        return row

    async def status(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def handle(headers: dict[bytes, bytes], _: str) -> tuple[int, str | None, str | None]:
            row = await self._row(headers, scope, "read")
            await send_json(send, 200, view(row))
            return 200, row["tenant"], None

        await run_endpoint(self.gateway, "/ingest/ldo/{ldo_id}", scope, send, handle)

    async def file(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def handle(headers: dict[bytes, bytes], _: str) -> tuple[int, str | None, str | None]:
            row = await self._row(headers, scope, "read")
            if row["object_key"] is None:
                raise NotFound(f"LDO {row['id']} has no file (it was uploaded with metadata only)")
            status = await send_file(send, row, self.files, headers, scope["method"] == "HEAD")
            return status, row["tenant"], None

        await run_endpoint(self.gateway, "/ingest/ldo/{ldo_id}/file", scope, send, handle)

    # -- delete ---------------------------------------------------------------------------
    async def delete(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def handle(headers: dict[bytes, bytes], _: str) -> tuple[int, str | None, str | None]:
            row = await self._row(headers, scope, "ingest")  # ingest or admin
            if row["object_key"] is not None:
                await self.files.delete(row)  # first: a failure leaves the row, so a retry finds it
            await self.gateway.store.delete_ldo(row["tenant"], row["id"])
            log.info("ldo deleted", tenant=row["tenant"], id=row["id"])
            await send_json(send, 200, {"id": row["id"], "message": f"LDO {row['id']} deleted"})
            return 200, row["tenant"], None

        await run_endpoint(self.gateway, "/ingest/{ldo_id}", scope, send, handle)


def urlencoded_form(body: bytes) -> Form:
    try:
        pairs = parse_qs(body, max_num_fields=MAX_PARTS)
    except ValueError as e:
        raise BadRequest(f"malformed form body: {e}") from None
    return Form(fields={k.decode("utf-8", "replace"): v[-1] for k, v in pairs.items()})


def parse_metadata(raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        raise UnprocessableEntity("missing the 'metadata' part: send a form field (or file part) named "
                                  "'metadata' holding a JSON object")
    try:
        doc = loads_payload(raw, within=1)  # the record's payload holds it as "metadata"
    except TooDeep as e:
        raise BadRequest(f"metadata {e}") from None
    except json.JSONDecodeError as e:
        raise BadRequest(f"metadata is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    if not isinstance(doc, dict):
        raise BadRequest(f"metadata must be a JSON object (got a JSON {_kind(doc)})")
    return doc


def parse_client_id(metadata: dict[str, Any]) -> str | None:
    v = metadata.get("ldo_id")
    if v is None:
        return None
    if not isinstance(v, str) or not 0 < len(v) <= MAX_CLIENT_ID:
        raise BadRequest(f"metadata.ldo_id must be a string of 1 to {MAX_CLIENT_ID} characters")
    return v


def answer(row: dict[str, Any], replay: bool = False) -> dict[str, Any]:
    message = "LDO already ingested (same ldo_id); this is the existing entry" if replay \
        else "LDO successfully ingested"
    return {"id": row["id"], "status": row["status"], "message": message, "size_bytes": row["size_bytes"]}


def view(row: dict[str, Any]) -> dict[str, Any]:
    """The LDO object: the list fields plus the caller's ldo_id, the file's type, hash and key."""
    return {**{k: row[k] for k in LIST_FIELDS}, "ldo_id": row["client_id"],
            "content_type": row["content_type"], "sha256": row["sha256"], "object_key": row["object_key"]}
