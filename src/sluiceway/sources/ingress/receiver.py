"""Red Hat insights-ingress compatible uploads, made durable and unpacked.

``POST <mount>/upload`` (mounts ``/api/ingress/v1`` and ``/r/insights/platform/ingress/v1``):

1. identity: a sluiceway token (org = its tenant; cluster from the ``User-Agent``) or, when
   trusted, ``x-rh-identity``; a deny-listed org gets 403;
2. the multipart body is streamed: the ``file`` (or ``upload``) part's content type
   ``application/vnd.redhat.<service>.<category>…`` must name an allowed service (else 415)
   before its bytes are read into the blob spool, within the service's size limit (413);
3. the archive is read (``archive.extract``: hostile archives → 400/413, nothing kept);
4. one record for the upload (stream ``upload_stream``, carrying the archive as an
   attachment named ``{service}/{org_id}/{cluster_id}/{timestamp}/{request_id}.tgz``, as the
   storage broker files it) and one per JSON document (stream ``<service>``) are appended
   to the journal together, fsynced; then ``202 {"request_id", "upload": {...}}``.

Every outcome is kept in the store's ``uploads`` table for ``GET <mount>/track/<id>``.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from sluiceway import __version__
from sluiceway.errors import (
    BadRequest,
    Forbidden,
    HTTPError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from sluiceway.http.auth import check
from sluiceway.http.body import content_length, media_type, read_body
from sluiceway.http.endpoint import run_endpoint
from sluiceway.http.ingest import encode_events
from sluiceway.http.responses import send_json
from sluiceway.record import utcnow, valid_name
from sluiceway.sources.base import ASGIApp, Source
from sluiceway.sources.ingress.archive import Contents, Limits, extract
from sluiceway.sources.ingress.config import IngressSourceConfig
from sluiceway.sources.ingress.identity import Identity, cluster_from_user_agent, from_header
from sluiceway.sources.ingress.multipart import read_form
from sluiceway.sources.ingress.track import track_status
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    from sluiceway.runtime.gateway import Gateway

log = get_logger("sluiceway.ingress")
_dumps = orjson.dumps
CONTENT_TYPE_RE = re.compile(r"application/vnd\.redhat\.([a-z0-9-]+)\.([a-z0-9-]+).*")
ADVISOR_TYPES = frozenset({"application/x-gzip; charset=binary", "application/gzip", "application/gzip; charset=binary"})
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}\Z")


def parse_content_type(value: str) -> tuple[str, str]:
    """(service, category) of a file part's content type; 415 when it names none."""
    v = value.strip()
    if v.lower() in ADVISOR_TYPES:
        return "advisor", "upload"
    m = CONTENT_TYPE_RE.fullmatch(v)
    if not m:
        raise UnsupportedMediaType(f"file part content type {v!r} is not application/vnd.redhat.<service>.<category>")
    return m.group(1), m.group(2)


class IngressReceiver(Source):
    config: IngressSourceConfig

    def __init__(self, name: str, config: IngressSourceConfig, gateway: "Gateway"):
        super().__init__(name, config, gateway)
        a = config.archive
        self.limits = Limits(a.max_members, a.max_member_bytes, a.max_uncompressed_bytes, a.max_ratio)
        self.allowed = frozenset(config.valid_upload_types)
        self.max_any = max([config.max_size, *config.max_size_map.values()])

    def routes(self) -> list[tuple[str, str, ASGIApp]]:
        out: list[tuple[str, str, ASGIApp]] = []
        for m in self.config.mounts:
            out += [("POST", f"{m}/upload", self.upload), ("GET", f"{m}/track/{{request_id}}", self.track),
                    ("GET", f"{m}/", self.lubdub), ("GET", f"{m}/version", self.version)]
        return out

    def openapi_paths(self) -> dict[str, Any]:
        from sluiceway.sources.ingress.openapi import ingress_paths

        return ingress_paths(self.config.mounts)

    # -- small routes ---------------------------------------------------------------------
    async def lubdub(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"6")]})
        await send({"type": "http.response.body", "body": b"lubdub"})

    async def version(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send_json(send, 200, {"version": __version__, "commit": "sluiceway"})

    # -- identity -------------------------------------------------------------------------
    async def _identify(self, headers: dict[bytes, bytes], scope: str) -> tuple[Identity, str]:
        """(identity, tenant) of the request; 400/401/403 as the reference says."""
        cfg = self.config
        ua = (headers.get(b"user-agent") or b"").decode("latin-1")
        rh = headers.get(b"x-rh-identity")
        if rh is not None and cfg.trust_identity_header:
            ident = from_header(rh)
            if not _valid_tenant(ident.org_id):
                raise BadRequest(f"org_id {ident.org_id!r} cannot be used as a tenant id")
            return ident, ident.org_id
        auth = headers.get(b"authorization")
        if cfg.tokens and auth:
            token = await self.gateway.auth.token(auth.decode("latin-1"))
            check(token, scope, token.tenant)
            return Identity(org_id=token.tenant, cluster_id=cluster_from_user_agent(ua)), token.tenant
        if cfg.trust_identity_header:
            raise BadRequest("Bad Request: missing x-rh-identity header")
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")

    # -- upload ---------------------------------------------------------------------------
    async def upload(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        gw = self.gateway
        cfg = self.config

        async def handle(headers: dict[bytes, bytes], _: str) -> tuple[int, str | None, str | None]:
            request_id = _request_id(headers)
            received = utcnow()
            tenant: str | None = None
            ident: Identity | None = None
            service = None
            rid_header = {"x-rh-insights-request-id": request_id}
            try:
                ident, tenant = await self._identify(headers, "ingest")
                if ident.org_id in cfg.deny_listed_orgids:
                    raise Forbidden("Upload denied. Please contact Red Hat Support.")
                ctype = (headers.get(b"content-type") or b"").decode("latin-1")
                if media_type(ctype) == "application/json":
                    body = await read_body(receive, 64 * 1024, content_length(headers))
                    if _is_test(body):
                        await send_json(send, 200, _answer(request_id, ident), rid_header)
                        return 200, tenant, None
                    raise BadRequest("File or upload field not found")
                cl = content_length(headers)
                if cl is not None and cl > self.max_any + 64 * 1024:
                    raise _too_large(cl, self.max_any)
                gw.check_room()

                def on_file(part_type: str) -> int:
                    nonlocal service
                    svc, category = parse_content_type(part_type)
                    if svc not in self.allowed:
                        raise UnsupportedMediaType(f"service {svc!r} is not accepted here; valid: "
                                                   f"{', '.join(sorted(self.allowed))}")
                    service = (svc, category)
                    return cfg.limit_for(svc)

                form = await read_form(receive, ctype, gw.blobs, on_file)
                if form.blob is None:
                    if form.fields.get("test") == b"test":
                        await send_json(send, 200, _answer(request_id, ident), rid_header)
                        return 200, tenant, None
                    raise BadRequest("File or upload field not found")
                assert service is not None
                try:
                    contents = await asyncio.to_thread(extract, form.blob.path, self.limits) if cfg.extract \
                        else Contents()
                    info = self._info(request_id, ident, service, form, contents, received)
                    items = self._encode(request_id, ident, service[0], form, contents, info, tenant, received)
                    first, last = await gw.accept(items, service[0])
                except BaseException:
                    gw.blobs.discard(form.blob.key)
                    raise
                await self._track(request_id, tenant, "accepted", 202, received, info, None,
                                  (gw.partition_name, first, last))
                log.info("upload accepted", request_id=request_id, service=service[0], org_id=ident.org_id,
                         size=form.blob.size, records=len(contents.documents), invalid=len(contents.invalid))
                await send_json(send, 202, _answer(request_id, ident), rid_header)
                return 202, tenant, service[0]
            except HTTPError as e:
                e.headers = {**(e.headers or {}), **rid_header}
                if tenant is not None:
                    info = {"service": service[0] if service else None, "org_id": ident.org_id if ident else None}
                    await self._track(request_id, tenant, "rejected", e.status, received, info, e.detail, None)
                raise

        await run_endpoint(gw, scope["path"], scope, send, handle)

    def _info(self, request_id: str, ident: Identity, service: tuple[str, str], form: Any,
              contents: Contents, received: datetime) -> dict[str, Any]:
        blob = form.blob
        obj = f"{service[0]}/{ident.org_id}/{ident.cluster_id}/{received:%Y%m%d%H%M%S}/{request_id}.tgz"
        return {
            "request_id": request_id, "service": service[0], "category": service[1], "content_type": form.content_type,
            "filename": form.filename, "org_id": ident.org_id, "account_number": ident.account_number,
            "cluster_id": ident.cluster_id, "size": blob.size, "sha256": blob.sha256, "object": obj,
            "records": len(contents.documents), "members": contents.members, "invalid_members": contents.invalid,
            "skipped_members": contents.skipped[:100],
        }

    def _encode(self, request_id: str, ident: Identity, service: str, form: Any, contents: Contents,
                info: dict[str, Any], tenant: str, received: datetime) -> list[bytes]:
        blob = form.blob
        received_at = received.isoformat().replace("+00:00", "Z")
        attachment = {"key": blob.key, "sha256": blob.sha256, "size": blob.size, "content_type": "application/gzip",
                      "name": info["object"],
                      "metadata": {"requestID": request_id, "account": ident.account_number, "org": ident.org_id}}
        items = encode_events([({}, _dumps(info))], tenant=tenant, stream=self.config.upload_stream,
                              source=self.name, received_at=received_at, idempotency_key=request_id,
                              attachments=_dumps([attachment]))
        head = b"".join((b'{"request_id":', _dumps(request_id), b',"org_id":', _dumps(ident.org_id),
                         b',"cluster_id":', _dumps(ident.cluster_id), b',"file":'))
        events = [(d.doc if type(d.doc) is dict else {},
                   b"".join((head, _dumps(d.file), b',"line":', _dumps(d.line), b',"data":', d.raw, b"}")))
                  for d in contents.documents]
        if events:
            items += encode_events(events, tenant=tenant, stream=service, source=self.name,
                                   received_at=received_at, idempotency_key=None)
        return items

    async def _track(self, request_id: str, tenant: str, status: str, http_status: int, received: datetime,
                     info: dict[str, Any], error: str | None, span: tuple[str, int, int] | None) -> None:
        """Keep the outcome for the track endpoint. The data is safe either way: a failure
        here is logged, never turned into an error for an upload already journalled."""
        try:
            await self.gateway.store.add_upload(
                request_id, tenant, status=status, http_status=http_status, received_at=received, info=info,
                error=error, partition=span[0] if span else None, first_offset=span[1] if span else None,
                last_offset=span[2] if span else None)
        except Exception as e:  # noqa: BLE001
            log.warning("cannot record upload status", request_id=request_id, error=str(e))

    # -- track ----------------------------------------------------------------------------
    async def track(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        gw = self.gateway

        async def handle(headers: dict[bytes, bytes], _: str) -> tuple[int, str | None, str | None]:
            ident, tenant = await self._identify(headers, "read")
            request_id = scope["path_params"]["request_id"]
            row = await gw.store.get_upload(request_id)
            if row is None or row["tenant"] != tenant:
                raise NotFound(f"no upload with request id {request_id!r}")
            await send_json(send, 200, await track_status(row, gw, self.config.upload_stream))
            return 200, tenant, None

        await run_endpoint(gw, "/track/{request_id}", scope, send, handle)


def _request_id(headers: dict[bytes, bytes]) -> str:
    given = (headers.get(b"x-rh-insights-request-id") or b"").decode("latin-1")
    return given if _REQUEST_ID_RE.match(given) and given not in (".", "..") else uuid.uuid4().hex


def _answer(request_id: str, ident: Identity) -> dict[str, Any]:
    upload = {k: v for k, v in (("account_number", ident.account_number), ("org_id", ident.org_id)) if v}
    return {"request_id": request_id, "upload": upload}


def _is_test(body: bytes) -> bool:
    try:
        return orjson.loads(body) == {"test": "test"}
    except orjson.JSONDecodeError:
        return False


def _too_large(size: int, limit: int) -> HTTPError:
    return PayloadTooLarge(f"File exceeds maximum file size ({limit}) for upload: {size}")


def _valid_tenant(org: str) -> bool:
    return valid_name(org)
