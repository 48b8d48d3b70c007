"""The Lightfile6 Insights Gateway's HTTP API, durable.

- ``PUT /usage`` and ``PUT /error``: the body is one JSON report. It becomes one record in
  the ``usage``/``error`` stream whose payload is ``{"user", "received_at", "report"}`` (or
  the bare report with ``raw_lines``), journalled (fsynced) before the 204.
- ``PUT /specimen?uri=…``: the body (any bytes) is streamed into the blob spool and fsynced,
  then a ``specimen`` record referencing it is journalled, then 204. An ``attachments`` sink
  uploads the blob under ``<user>/YYYY/MM/DD/<base>.<ts><ext>`` with the uri as metadata.
- ``GET /health``: ``{"status":"healthy"}``.

Identity is the ``USER_TOKEN`` header (also ``User-Token``: proxies drop underscores), a user
name the original never checked and neither do we. Errors carry the original's ``message``
beside sluiceway's ``error``/``detail``.
"""

from __future__ import annotations

import errno
import json
from time import perf_counter
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from sluiceway.errors import BadRequest, HTTPError, Unavailable
from sluiceway.http.body import content_length, decode_content, read_body
from sluiceway.http.endpoint import durable_handler, run_endpoint
from sluiceway.http.ingest import encode_events, now_rfc3339
from sluiceway.record import TooDeep, dumps_exact, loads_payload
from sluiceway.sources.base import ASGIApp, Source
from sluiceway.sources.lightfile6.config import Lightfile6SourceConfig
from sluiceway.sources.lightfile6.names import (
    UniqueClock,
    check_uri,
    check_user,
    content_type,
    metadata_value,
    specimen_name,
)
from sluiceway.sources.lightfile6.openapi import lightfile6_paths

if TYPE_CHECKING:
    from sluiceway.blobs import BlobSpool
    from sluiceway.http.protocol import Direct, Route
    from sluiceway.runtime.gateway import Gateway

_dumps = orjson.dumps
_HEALTHY = b'{"status":"healthy"}'
_NO_CONTENT = {"type": "http.response.body", "body": b""}


def render_error(err: HTTPError) -> bytes:
    """The original's ``{"message": …}`` plus sluiceway's ``error`` and ``detail``."""
    return _dumps({"message": err.detail, "error": err.code, "detail": err.detail})


class Lightfile6Receiver(Source):
    config: Lightfile6SourceConfig

    def __init__(self, name: str, config: Lightfile6SourceConfig, gateway: "Gateway"):
        super().__init__(name, config, gateway)
        self.clock = UniqueClock(gateway.worker_index or 0)
        self._tenant = config.tenant

    def routes(self) -> list[tuple[str, str, ASGIApp]]:
        p = self.config.path_prefix
        out: list[tuple[str, str, ASGIApp]] = [
            ("PUT", f"{p}/usage", self.usage), ("PUT", f"{p}/error", self.error),
            ("PUT", f"{p}/specimen", self.specimen),
        ]
        if self.config.health:
            out.append(("GET", f"{p}/health", self.health))
        return out

    def openapi_paths(self) -> dict[str, Any]:
        return lightfile6_paths(self.config.path_prefix, self.config.health)

    # -- endpoints ------------------------------------------------------------------------
    async def health(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"20")]})
        await send({"type": "http.response.body", "body": _HEALTHY})

    async def usage(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self._report(scope, receive, send, self.config.usage_stream)

    async def error(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self._report(scope, receive, send, self.config.error_stream)

    async def _report(self, scope: dict[str, Any], receive: Any, send: Any, stream: str) -> None:
        async def handle(headers: dict[bytes, bytes], request_id: str) -> tuple[int, str | None, str | None]:
            user = check_user(_user_header(headers))
            body = await read_body(receive, self.config.max_report_bytes, content_length(headers))
            await self.gateway.accept(self._report_items(headers, body, user, stream), stream)
            await _send_no_content(send, request_id)
            return 204, self._tenant, stream

        await run_endpoint(self.gateway, scope["path"], scope, send, handle, render_error=render_error)

    def direct_routes(self) -> list[tuple[str, str, Route]]:
        p = self.config.path_prefix
        return [("PUT", f"{p}/usage", self._report_route(self.config.usage_stream)),
                ("PUT", f"{p}/error", self._report_route(self.config.error_stream))]

    def _report_route(self, stream: str) -> Route:
        """``_report`` for ``http.protocol``: a report whose user and size are right gets a
        direct handler; False from it (a problem with the body) leaves the request to ``_report``."""
        def route(scope: dict[str, Any]) -> Direct | None:
            started = perf_counter()
            headers: dict[bytes, bytes] = dict(scope["headers"])
            try:
                user = check_user(_user_header(headers))
                if (content_length(headers) or 0) > self.config.max_report_bytes:  # refused before the body
                    return None
            except Exception:  # noqa: BLE001 - the ASGI way answers it
                return None

            return durable_handler(self.gateway, headers, lambda body: self._report_items(headers, body, user, stream),
                                   lambda rid, n: (204, b"", {"x-request-id": rid}), route=scope["path"],
                                   method="PUT", started=started, tenant=self._tenant, stream=stream,
                                   render_error=render_error)

        return route

    def _report_items(self, headers: dict[bytes, bytes], body: bytes, user: str, stream: str) -> list[bytes]:
        """A report's body (decoded per Content-Encoding) as its one encoded record."""
        cfg = self.config
        enc = headers.get(b"content-encoding")
        if enc:
            body = decode_content(body, enc.decode("latin-1"), cfg.max_report_bytes)
        report, event = self._parse_report(body)
        received_at = now_rfc3339()
        if cfg.raw_lines:
            payload = report
        else:
            payload = b"".join((b'{"user":', _dumps(user), b',"received_at":"', received_at.encode(),
                                b'","report":', report, b"}"))
        return encode_events([(event, payload)], tenant=self._tenant, stream=stream, source=self.name,
                             received_at=received_at, idempotency_key=None)

    async def specimen(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        gw = self.gateway
        cfg = self.config
        stream = cfg.specimen_stream

        async def handle(headers: dict[bytes, bytes], request_id: str) -> tuple[int, str | None, str | None]:
            user = check_user(_user_header(headers))
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            uri = check_uri((query.get("uri") or [""])[-1])
            gw.check_room()
            spool: "BlobSpool" = gw.blobs
            try:
                blob = await spool.receive(receive, cfg.max_specimen_bytes, content_length(headers))
            except OSError as e:
                raise _disk_error(e) from None
            try:
                received, ts_ns = self.clock.next()
                received_at = received.isoformat().replace("+00:00", "Z")
                name, ext = specimen_name(user, uri, received, ts_ns)
                ctype = content_type((headers.get(b"content-type") or b"").decode("latin-1"), ext)
                attachment = {"key": blob.key, "sha256": blob.sha256, "size": blob.size, "content_type": ctype,
                              "name": name, "metadata": {"uri": metadata_value(uri)}}
                payload = _dumps({"user": user, "uri": uri, "received_at": received_at, "object": name,
                                  "size": blob.size, "sha256": blob.sha256, "content_type": ctype})
                items = encode_events([({}, payload)], tenant=self._tenant, stream=stream, source=self.name,
                                      received_at=received_at, idempotency_key=None,
                                      attachments=_dumps([attachment]))
                await gw.accept(items, stream)
            except BaseException:
                spool.discard(blob.key)
                raise
            await _send_no_content(send, request_id)
            return 204, self._tenant, stream

        await run_endpoint(gw, scope["path"], scope, send, handle, render_error=render_error)

    # -- helpers --------------------------------------------------------------------------
    def _parse_report(self, body: bytes) -> tuple[bytes, dict[str, Any]]:
        """(report as one line of JSON, the parsed report when it is an object)."""
        try:
            doc = loads_payload(body, within=1)  # a record's payload holds it as "report"
        except TooDeep as e:
            raise BadRequest(f"report {e}") from None
        except json.JSONDecodeError as e:
            if self.config.invalid_json == "string":
                return _dumps(body.decode("utf-8", "replace")), {}
            if not body.strip():
                raise BadRequest("empty body: send the report as JSON") from None
            raise BadRequest(f"report is not valid JSON: line {e.lineno}, column {e.colno} (offset {e.pos}): {e.msg}") \
                from None
        raw = body.strip()
        if b"\n" in raw or b"\r" in raw:
            raw = dumps_exact(doc)  # one JSONL line per report
        return raw, doc if type(doc) is dict else {}



def _user_header(headers: dict[bytes, bytes]) -> bytes | None:
    return headers.get(b"user_token") or headers.get(b"user-token")


def _disk_error(e: OSError) -> HTTPError:
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return Unavailable("no space left for the upload; retry later", retry_after=30.0, code="disk_full")
    return Unavailable(f"cannot store the upload: {e.strerror or e}", retry_after=5.0, code="storage_error")


async def _send_no_content(send: Any, request_id: str) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": [(b"x-request-id", request_id.encode())]})
    await send(_NO_CONTENT)
