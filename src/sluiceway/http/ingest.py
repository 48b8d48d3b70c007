"""``/v1/streams/{stream}/events``: the hot ingest path (POST) and the query API (GET).

POST stays at the raw ASGI level: headers are read once, the body is parsed (orjson; for
NDJSON, msgspec reading only the event's time fields and keeping each line as sent), each
event becomes an encoded Record, the batch is appended to the journal (group commit)
and only then is 202 sent.
"""

from __future__ import annotations

from datetime import datetime
from time import perf_counter
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import msgspec
import orjson
import uuid_utils

from sluiceway.errors import BadRequest, MethodNotAllowed, NotFound
from sluiceway.http.auth import check, requested_tenant
from sluiceway.http.body import check_media_type, content_length, decode_content, media_type, parse_events_raw, read_body
from sluiceway.http.endpoint import durable_handler, run_endpoint
from sluiceway.http.params import is_uuid, limit_param, query_params, time_param
from sluiceway.http.responses import send_json
from sluiceway.record import DEPTH_BYTES, MAX_DEPTH, dumps_exact, now_rfc3339, parse_time, too_deep, valid_name

if TYPE_CHECKING:
    from sluiceway.http.protocol import Direct
    from sluiceway.runtime.gateway import Gateway
    from sluiceway.store import TokenInfo

_dumps = orjson.dumps
_uuid7 = uuid_utils.uuid7
_fromiso = datetime.fromisoformat
_TIME_KEYS = ("event_time", "timestamp", "time")


class EventTime(msgspec.Struct):
    """What the hot path reads of an NDJSON event: the fields that may hold its own time
    (``_TIME_KEYS``); the rest of the line is checked, skipped, and journaled as sent."""

    event_time: Any = None
    timestamp: Any = None
    time: Any = None


_EVENT_TIME = msgspec.json.Decoder(EventTime)
ROUTE = "/v1/streams/{stream}/events"


def _time_json(v: str) -> bytes:
    """A time string as the JSON value of ``event_time`` (null when it is not a time)."""
    try:
        if v[-1:] == "Z":
            _fromiso(v)  # validates; a parsable "…Z" string has nothing to escape
            return b'"%s"' % v.encode()  # already RFC 3339 UTC: keep it as sent
        return _dumps(parse_time(v).isoformat().replace("+00:00", "Z"))
    except ValueError:
        return b"null"


_TIMES_OF_STRUCT = attrgetter(*_TIME_KEYS)
_TAIL_SPAN = 1 << 32  # the last 8 hex digits of an id


def _times_of_dict(ev: dict[str, Any]) -> tuple[Any, ...]:
    return ev.get("event_time"), ev.get("timestamp"), ev.get("time")


_ENVELOPES: dict[tuple[str, str, str], bytes] = {}


def _envelope(tenant: str, stream: str, source: str) -> bytes:
    """The part of a Record's JSON from the end of its id to ``"received_at":``, per
    (tenant, stream, source): few combinations, each encoded once."""
    key = (tenant, stream, source)
    env = _ENVELOPES.get(key)
    if env is None:
        if len(_ENVELOPES) >= 4096:
            _ENVELOPES.clear()
        env = _ENVELOPES[key] = b"".join((b'","tenant":', _dumps(tenant), b',"stream":', _dumps(stream),
                                          b',"source":', _dumps(source), b',"received_at":'))
    return env


def encode_events(events: list[tuple[Any, bytes | None]], *, tenant: str, stream: str,
                  source: str, received_at: str, idempotency_key: str | None,
                  attachments: bytes = b"[]") -> list[bytes]:
    """Events → encoded Records, the journal's entry format (see record.Record).

    ``events`` pairs each event (a dict, or the ``EventTime`` the NDJSON path decodes) with
    its exact JSON text when at hand (a single object, an NDJSON line: already parsed, so
    known to be valid JSON on one line), embedded as sent instead of being re-serialised.
    Built by concatenation: the envelope is the same for every event of a call.
    ``attachments`` is the JSON array of ``record.Attachment`` objects, the same for every
    event of the call. An event that nests deeper than ``record.MAX_DEPTH`` is a
    ``BadRequest`` naming it (a sink could not read it back).

    Ids: one UUIDv7 per call; event *i* gets it with its last 32 bits (random in a UUIDv7)
    replaced by a counter starting at their value (RFC 9562 6.2, method 2: monotonic random).
    They are unique, and ordered in the order of the events: the 42-bit counter before those
    bits steps at every UUIDv7 this process makes, so no other id of this process shares their
    prefix (across processes a clash needs the same millisecond, the same randomly seeded 42-bit
    counter and overlapping tails: a chance of about n / 2**74 for two calls of n events).
    """
    n = len(events)
    first = str(_uuid7())
    head = b'{"id":"' + first[:-8].encode()
    tail = int(first[-8:], 16)
    if tail + n > _TAIL_SPAN:  # start lower rather than wrap: ids stay ordered
        tail = _TAIL_SPAN - n
    join = b"".join
    mid = join((_envelope(tenant, stream, source), _dumps(received_at),
                b',"idempotency_key":', b"null" if idempotency_key is None else _dumps(idempotency_key),
                b',"attachments":', attachments, b',"event_time":'))
    out = []
    append = out.append
    times: dict[str, bytes] = {}  # time string -> JSON value: events of a batch often share it
    times_of = _TIMES_OF_STRUCT if n and type(events[0][0]) is EventTime else _times_of_dict
    for ev, raw in events:
        t = b"null"
        for v in times_of(ev):  # the event's own time: the first key holding a string
            if type(v) is str:
                t = times.get(v)
                if t is None:
                    t = times[v] = _time_json(v)
                break
        try:
            payload = raw if raw is not None else dumps_exact(ev)  # integers past 64 bits too
        except RecursionError:
            raise _too_deep(len(out)) from None
        if len(payload) > DEPTH_BYTES and too_deep(payload):
            raise _too_deep(len(out))
        append(join((head, b"%08x" % tail, mid, t, b',"payload":', payload, b"}")))
        tail += 1
    return out


def _authorization(headers: dict[bytes, bytes]) -> str | None:
    auth = headers.get(b"authorization")
    return auth.decode("latin-1") if auth else None


def _too_deep(i: int) -> BadRequest:
    return BadRequest(f"event {i} nests objects and arrays more than {MAX_DEPTH} levels deep")


class StreamEvents:
    """ASGI endpoint for one path, dispatching on method."""

    def __init__(self, gateway: "Gateway"):
        self.gw = gateway

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        stream = scope["path_params"].get("stream")

        async def handle(headers: dict[bytes, bytes], request_id: str) -> tuple[int, str | None, str | None]:
            method = scope["method"]
            if method == "POST":
                status, tenant = await self.ingest(scope, headers, receive, send, stream, request_id)
            elif method == "GET":
                status, tenant = await self.query(scope, headers, send, stream)
            else:
                raise MethodNotAllowed(f"{method} is not allowed here; use POST or GET", headers={"Allow": "GET, POST"})
            return status, tenant, stream

        await run_endpoint(self.gw, ROUTE, scope, send, handle, stream=stream)

    def _stream(self, stream: str) -> None:
        if not valid_name(stream):
            raise BadRequest(f"stream name {stream!r} must match [a-z0-9][a-z0-9_-]{{0,63}}")
        allowed = self.gw.allowed_streams
        if allowed and stream not in allowed:
            raise NotFound(f"unknown stream {stream!r}; configured streams: {', '.join(sorted(allowed))}")

    def _tenant(self, headers: dict[bytes, bytes], scope: dict[str, Any], default: str) -> str:
        query = None
        if b"x-sluice-tenant" not in headers and scope.get("query_string"):  # parsed only when needed
            query = query_params(scope["query_string"].decode("latin-1"))
        return requested_tenant(headers, query, default)

    async def ingest(self, scope, headers, receive, send, stream, request_id) -> tuple[int, str]:
        self._stream(stream)
        token = await self.gw.auth.token(_authorization(headers))
        tenant, ndjson = self._admit(scope, headers, token)
        body = await read_body(receive, self.gw.max_body_bytes, content_length(headers))
        items, idem_key = self._records(headers, body, ndjson, tenant, stream)
        del body  # keep only what is needed while waiting for the fsync
        if idem_key is not None:
            return await self.gw.idempotent(tenant, idem_key, send,
                                            lambda: self._commit(items, stream, request_id)), tenant
        status, payload = await self._commit(items, stream, request_id)
        await send_json(send, status, payload)
        return status, tenant

    def direct(self, scope: dict[str, Any], stream: str) -> "Direct | None":
        """The POST for ``http.protocol``, at the end of its headers: when nothing but the
        journal will have to be waited for (the token is in the cache, no Idempotency-Key) and
        the headers are right, the handler of its body, which queues the records and answers
        once they are durable (True), or leaves a body it cannot take to the ASGI way (False:
        ``ingest`` then does it all again and answers). None: the ASGI way from the start."""
        started = perf_counter()
        headers: dict[bytes, bytes] = dict(scope["headers"])
        if b"idempotency-key" in headers:
            return None
        gw = self.gw
        try:
            self._stream(stream)
            token = gw.auth.cached(_authorization(headers))
            if token is None:
                return None
            tenant, ndjson = self._admit(scope, headers, token)
            if (content_length(headers) or 0) > gw.max_body_bytes:  # refused before the body
                return None
        except Exception:  # noqa: BLE001 - the ASGI way answers it
            return None

        return durable_handler(gw, headers, lambda body: self._records(headers, body, ndjson, tenant, stream)[0],
                               lambda rid, n: (202, _dumps({"request_id": rid, "accepted": n}), None),
                               route=ROUTE, method="POST", started=started, tenant=tenant, stream=stream)

    def _admit(self, scope: dict[str, Any], headers: dict[bytes, bytes], token: "TokenInfo") -> tuple[str, bool]:
        """The tenant the request writes for (403 unless the token may) and whether the body
        is NDJSON (415 for a type that is not JSON)."""
        tenant = self._tenant(headers, scope, token.tenant)
        check(token, "ingest", tenant)
        return tenant, check_media_type(media_type((headers.get(b"content-type") or b"").decode("latin-1")))

    def _records(self, headers: dict[bytes, bytes], body: bytes, ndjson: bool, tenant: str,
                 stream: str) -> tuple[list[bytes], str | None]:
        """The body (decoded per Content-Encoding) as encoded Records, and the Idempotency-Key."""
        enc = headers.get(b"content-encoding")
        if enc:
            body = decode_content(body, enc.decode("latin-1"), self.gw.max_body_bytes)
        idem = headers.get(b"idempotency-key")
        idem_key = idem.decode("latin-1") if idem else None
        if idem_key is not None and not 0 < len(idem_key) <= 255:
            raise BadRequest("Idempotency-Key must be 1 to 255 characters")
        events = parse_events_raw(body, ndjson, _EVENT_TIME)
        return encode_events(events, tenant=tenant, stream=stream, source="http",
                             received_at=now_rfc3339(), idempotency_key=idem_key), idem_key

    async def _commit(self, items: list[bytes], stream: str, request_id: str) -> tuple[int, bytes]:
        await self.gw.accept(items, stream)
        return 202, _dumps({"request_id": request_id, "accepted": len(items)})

    async def query(self, scope, headers, send, stream) -> tuple[int, str]:
        gw = self.gw
        self._stream(stream)
        token = await gw.auth.token(_authorization(headers))
        tenant = self._tenant(headers, scope, token.tenant)
        check(token, "read", tenant)
        q = query_params(scope.get("query_string", b"").decode("latin-1"))
        since = time_param(q, "since")
        until = time_param(q, "until")
        limit = limit_param(q)
        cursor = q.get("cursor")
        if cursor is not None and not is_uuid(cursor):
            raise BadRequest("cursor is not valid; pass the next_cursor of a previous page")
        rows = await gw.store.query_records(tenant, stream, since=since, until=until, after_id=cursor, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        await send_json(send, 200, {"events": rows, "next_cursor": rows[-1]["id"] if more else None})
        return 200, tenant
