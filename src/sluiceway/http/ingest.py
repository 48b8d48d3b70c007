"""``/v1/streams/{stream}/events``: the hot ingest path (POST) and the query API (GET).

POST stays at the raw ASGI level: headers are read once, the body is parsed with orjson,
each event becomes an encoded Record, the batch is appended to the journal (group commit)
and only then is 202 sent.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson
import uuid_utils

from sluiceway.errors import BadRequest, HTTPError, JournalFull, NotFound, Unavailable
from sluiceway.http.auth import check
from sluiceway.http.body import ClientDisconnected, check_media_type, decode_content, media_type, parse_events_raw, read_body
from sluiceway.http.responses import send_error, send_json
from sluiceway.record import UTC, parse_time, valid_name
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    from sluiceway.runtime.gateway import Gateway

_dumps = orjson.dumps
_uuid7 = uuid_utils.uuid7
_fromiso = datetime.fromisoformat
_TIME_KEYS = ("event_time", "timestamp", "time")
log = get_logger("sluiceway.http")


def _event_time(event: dict[str, Any]) -> bytes:
    """The event's own time (``event_time``, ``timestamp`` or ``time``) as a JSON value."""
    for k in _TIME_KEYS:
        v = event.get(k)
        if type(v) is str:
            try:
                if v[-1:] == "Z":
                    _fromiso(v)  # validates; a parsable "…Z" string has nothing to escape
                    return b'"%s"' % v.encode()  # already RFC 3339 UTC: keep it as sent
                return _dumps(parse_time(v).isoformat().replace("+00:00", "Z"))
            except ValueError:
                return b"null"
    return b"null"


def encode_events(events: list[tuple[dict[str, Any], bytes | None]], *, tenant: str, stream: str,
                  source: str, received_at: str, idempotency_key: str | None) -> list[bytes]:
    """Events → encoded Records, the journal's entry format (see record.Record).

    Built by concatenation: the envelope is the same for every event of a request, and an
    event whose exact JSON text is at hand (a single object, an NDJSON line: already parsed,
    so known to be one valid object) is embedded as sent instead of being re-serialised.
    """
    mid = b"".join((b'","tenant":', _dumps(tenant), b',"stream":', _dumps(stream), b',"source":', _dumps(source),
                    b',"received_at":', _dumps(received_at), b',"idempotency_key":', _dumps(idempotency_key),
                    b',"attachments":[],"event_time":'))
    join = b"".join
    out = []
    append = out.append
    for ev, raw in events:
        append(join((b'{"id":"', str(_uuid7()).encode(), mid, _event_time(ev), b',"payload":',
                     raw if raw is not None else _dumps(ev), b"}")))
    return out


def now_rfc3339() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class StreamEvents:
    """ASGI endpoint for one path, dispatching on method."""

    def __init__(self, gateway: "Gateway"):
        self.gw = gateway

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        method = scope["method"]
        started = time.perf_counter()
        status, tenant, stream = 500, None, scope["path_params"].get("stream")
        request_id = None
        try:
            headers: dict[bytes, bytes] = dict(scope["headers"])
            rid = headers.get(b"x-request-id")
            request_id = rid.decode("latin-1")[:128] if rid else _uuid7().hex
            if method == "POST":
                status, tenant = await self.ingest(scope, headers, receive, send, stream, request_id)
            elif method == "GET":
                status, tenant = await self.query(scope, headers, send, stream)
            else:
                status = 405
                await send_json(send, 405, {"error": "method_not_allowed", "detail": f"{method} is not allowed here; use POST or GET"},
                                {"Allow": "GET, POST"})
        except HTTPError as e:
            status = e.status
            await send_error(send, e)
        except ClientDisconnected:
            status = 499
        except Exception:  # a bug: answer like the app's server-error handler would
            status = 500
            log.exception("unhandled error", path=scope.get("path"), request_id=request_id)
            try:
                await send_json(send, 500, {"error": "internal_error",
                                            "detail": "an internal error occurred; see the server log"})
            except Exception:  # noqa: BLE001 - the response had already started
                pass
        finally:
            self.gw.observe_request("/v1/streams/{stream}/events", method, status, started,
                                    request_id=request_id, tenant=tenant, stream=stream)

    def _stream(self, stream: str) -> None:
        if not valid_name(stream):
            raise BadRequest(f"stream name {stream!r} must match [a-z0-9][a-z0-9_-]{{0,63}}")
        allowed = self.gw.allowed_streams
        if allowed and stream not in allowed:
            raise NotFound(f"unknown stream {stream!r}; configured streams: {', '.join(sorted(allowed))}")

    def _tenant(self, headers: dict[bytes, bytes], scope: dict[str, Any], default: str) -> str:
        raw = headers.get(b"x-sluice-tenant")
        if raw is None and scope.get("query_string"):
            q = parse_qs(scope["query_string"].decode("latin-1"))
            raw = q.get("tenant", [None])[0]  # type: ignore[list-item]
            raw = raw.encode() if raw else None
        tenant = raw.decode("latin-1") if raw else default
        if not valid_name(tenant):
            raise BadRequest(f"tenant id {tenant!r} must match [a-z0-9][a-z0-9_-]{{0,63}}")
        return tenant

    async def ingest(self, scope, headers, receive, send, stream, request_id) -> tuple[int, str]:
        gw = self.gw
        self._stream(stream)
        auth = headers.get(b"authorization")
        token = await gw.auth.token(auth.decode("latin-1") if auth else None)
        tenant = self._tenant(headers, scope, token.tenant)
        check(token, "ingest", tenant)
        ndjson = check_media_type(media_type((headers.get(b"content-type") or b"").decode("latin-1")))
        limit = gw.max_body_bytes
        cl = headers.get(b"content-length")
        try:
            content_length = int(cl) if cl else None
        except ValueError:
            raise BadRequest("Content-Length is not a number") from None
        body = await read_body(receive, limit, content_length)
        enc = headers.get(b"content-encoding")
        if enc:
            body = decode_content(body, enc.decode("latin-1"), limit)
        idem = headers.get(b"idempotency-key")
        idem_key = idem.decode("latin-1") if idem else None
        if idem_key is not None and not 0 < len(idem_key) <= 255:
            raise BadRequest("Idempotency-Key must be 1 to 255 characters")
        events = parse_events_raw(body, ndjson)
        del body  # keep only what is needed while waiting for the fsync
        retry = gw.journal.full()
        if retry is not None:
            gw.metrics.events_rejected.labels(reason="journal_full").inc(len(events))
            raise Unavailable("journal is full; retry later", retry_after=retry, code="journal_full")
        items = encode_events(events, tenant=tenant, stream=stream, source="http",
                              received_at=now_rfc3339(), idempotency_key=idem_key)
        del events
        if idem_key is not None:
            return await gw.idempotent(tenant, idem_key, send,
                                       lambda: self._commit(items, stream, request_id)), tenant
        status, payload = await self._commit(items, stream, request_id)
        await send_json(send, status, payload)
        return status, tenant

    async def _commit(self, items: list[bytes], stream: str, request_id: str) -> tuple[int, bytes]:
        gw = self.gw
        try:
            await gw.append(items)
        except JournalFull as e:
            gw.metrics.events_rejected.labels(reason="journal_full").inc(len(items))
            raise Unavailable(str(e), retry_after=e.retry_after, code="journal_full") from None
        gw.metrics.events_accepted.labels(stream=stream).inc(len(items))
        return 202, _dumps({"request_id": request_id, "accepted": len(items)})

    async def query(self, scope, headers, send, stream) -> tuple[int, str]:
        gw = self.gw
        self._stream(stream)
        auth = headers.get(b"authorization")
        auth_s = auth.decode("latin-1") if auth else None
        token = await gw.auth.token(auth_s)
        tenant = self._tenant(headers, scope, token.tenant)
        check(token, "read", tenant)
        q = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
        since = _time_param(q, "since")
        until = _time_param(q, "until")
        try:
            limit = int(q.get("limit", "100"))
        except ValueError:
            raise BadRequest("limit must be an integer between 1 and 1000") from None
        if not 1 <= limit <= 1000:
            raise BadRequest("limit must be an integer between 1 and 1000")
        cursor = q.get("cursor") or None
        if cursor is not None and not _is_uuid(cursor):
            raise BadRequest("cursor is not valid; pass the next_cursor of a previous page")
        rows = await gw.store.query_records(tenant, stream, since=since, until=until, after_id=cursor, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        await send_json(send, 200, {"events": rows, "next_cursor": rows[-1]["id"] if more else None})
        return 200, tenant


def _time_param(q: dict[str, str], name: str) -> datetime | None:
    v = q.get(name)
    if not v:
        return None
    try:
        return parse_time(v)
    except ValueError:
        raise BadRequest(f"{name} must be an RFC 3339 time such as 2026-01-31T00:00:00Z, got {v!r}") from None


def _is_uuid(v: str) -> bool:
    try:
        uuid_utils.UUID(v)
    except ValueError:
        return False
    return True

