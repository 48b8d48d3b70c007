"""The feedback query API (``read`` scope), and the frame the control-plane endpoints share.

- ``GET /v1/feedback``: filters ``source_type``, ``source_instance``, ``since`` (inclusive),
  ``until`` (exclusive), ``min_rating``, ``q`` (text in body or author); oldest first by
  ``(created_at, id)``; ``next_cursor`` is that pair, opaque (base64url of JSON).
- ``GET /v1/feedback/{id}``: one item; a malformed id is 400, unknown or another tenant's 404.
- ``GET /feedback`` and ``GET /feedback/{id}``: the original Ingest service's paths and
  shapes (``tenant_id`` query parameter, inclusive ``start``/``end``, a plain JSON list, the
  ``lang``/``metadata_`` field names besides ours), but authenticated: ``tenant_id`` must be
  the token's tenant unless the token is admin (403 for the list, 404 for an item).

A token reads its own tenant; an admin token may name another with ``?tenant=`` or
``X-Sluice-Tenant``. The frame (``Call``, ``api_route``) runs a handler under
``run_endpoint`` (request id, JSON errors, metrics, access log) like the ingest path.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import parse_qs

import orjson
from starlette.routing import Route

from sluiceway.errors import BadRequest, NotFound
from sluiceway.http.auth import check
from sluiceway.http.body import content_length, read_body
from sluiceway.http.endpoint import run_endpoint
from sluiceway.http.ingest import _is_uuid, _time_param
from sluiceway.http.openapi import _err
from sluiceway.http.responses import send_json
from sluiceway.record import parse_time, valid_name

if TYPE_CHECKING:
    from sluiceway.runtime.gateway import Gateway
    from sluiceway.store import TokenInfo

MAX_CONTROL_BODY = 1024 * 1024
NAME_RULE = "[a-z0-9][a-z0-9_-]{0,63}"


# -- the frame ------------------------------------------------------------------------------

class Call:
    """One request to a control-plane endpoint: parsed query, path parameters, auth, body."""

    def __init__(self, gw: "Gateway", scope: dict[str, Any], receive: Any, headers: dict[bytes, bytes]):
        self.gw, self.receive, self.headers = gw, receive, headers
        qs = scope.get("query_string", b"").decode("latin-1")
        self.query = {k: v[-1] for k, v in parse_qs(qs, keep_blank_values=True).items()}
        self.params: dict[str, str] = scope.get("path_params", {})
        self.tenant: str | None = None  # for the access log

    async def auth(self, scope: str, tenant: str | None = None) -> "TokenInfo":
        raw = self.headers.get(b"authorization")
        token = await self.gw.auth.token(raw.decode("latin-1") if raw else None)
        check(token, scope, tenant)
        self.tenant = self.tenant or token.tenant
        return token

    async def acting_tenant(self, scope: str) -> str:
        """The token's tenant, or the one named by X-Sluice-Tenant / ?tenant (admin for others)."""
        token = await self.auth(scope)
        raw = self.headers.get(b"x-sluice-tenant")
        tenant = raw.decode("latin-1") if raw else (self.query.get("tenant") or token.tenant)
        if not valid_name(tenant):
            raise BadRequest(f"tenant id {tenant!r} must match {NAME_RULE}")
        check(token, scope, tenant)
        self.tenant = tenant
        return tenant

    async def json_object(self) -> dict[str, Any]:
        body = await read_body(self.receive, MAX_CONTROL_BODY, content_length(self.headers))
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise BadRequest(f"body is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise BadRequest("body must be a JSON object")
        return data


Handler = Callable[[Call], Awaitable[tuple[int, Any]]]


class _Endpoint:
    def __init__(self, gw: "Gateway", route: str, handlers: dict[str, Handler]):
        self.gw, self.route, self.handlers = gw, route, handlers

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        handler = self.handlers["GET" if scope["method"] == "HEAD" else scope["method"]]

        async def handle(headers: dict[bytes, bytes], request_id: str) -> tuple[int, str | None, None]:
            call = Call(self.gw, scope, receive, headers)
            status, body = await handler(call)
            if status == 204:
                await send({"type": "http.response.start", "status": 204, "headers": []})
                await send({"type": "http.response.body", "body": b""})
            else:
                await send_json(send, status, body)
            return status, call.tenant, None

        await run_endpoint(self.gw, self.route, scope, send, handle)


def api_route(gw: "Gateway", path: str, **handlers: Handler) -> Route:
    """A route whose methods (``GET=…, POST=…``) answer JSON; other methods get 405 + Allow."""
    return Route(path, _Endpoint(gw, path, handlers), methods=list(handlers))


# -- parameters -----------------------------------------------------------------------------

def int_param(q: dict[str, str], name: str, default: int | None = None, lo: int | None = None,
              hi: int | None = None) -> int | None:
    v = q.get(name)
    if not v:
        return default
    try:
        n = int(v)
    except ValueError:
        n = None
    if n is None or (lo is not None and n < lo) or (hi is not None and n > hi):
        bounds = f" between {lo} and {hi}" if lo is not None and hi is not None else ""
        raise BadRequest(f"{name} must be an integer{bounds}, got {v!r}")
    return n


def _limit(q: dict[str, str]) -> int:
    return int_param(q, "limit", 100, 1, 1000)  # type: ignore[return-value]


def feedback_uuid(v: str, name: str = "id") -> str:
    if not _is_uuid(v):
        raise BadRequest(f"{name} must be a UUID such as 6f1d3c1e-8a51-4f0c-9c5e-2b7d1e0a9f11, got {v!r}")
    return v.lower()


def encode_cursor(row: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([row["created_at"], row["id"]])).decode().rstrip("=")


def decode_cursor(v: str | None) -> tuple[Any, str] | None:
    if not v:
        return None
    try:
        at, fid = orjson.loads(base64.urlsafe_b64decode(v + "=" * (-len(v) % 4)))
        if not (isinstance(at, str) and isinstance(fid, str) and _is_uuid(fid)):
            raise ValueError
        return parse_time(at), fid
    except (TypeError, ValueError):  # binascii.Error and orjson.JSONDecodeError are ValueErrors
        raise BadRequest("cursor is not valid; pass the next_cursor of a previous page") from None


def _text(q: dict[str, str]) -> str | None:
    text = q.get("q") or None
    if text is not None and len(text) > 256:
        raise BadRequest("q must be at most 256 characters")
    return text


# -- handlers -------------------------------------------------------------------------------

def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """Plain ``str`` keys: the store's rows are keyed by SQLAlchemy's ``quoted_name`` (a str
    subclass), which orjson refuses as a dict key."""
    return {str(k): v for k, v in row.items()}


async def list_feedback(call: Call) -> tuple[int, Any]:
    tenant = await call.acting_tenant("read")
    q = call.query
    limit = _limit(q)
    rows = await call.gw.store.query_feedback(
        tenant, source_type=q.get("source_type") or None, source_instance=q.get("source_instance"),
        since=_time_param(q, "since"), until=_time_param(q, "until"), min_rating=int_param(q, "min_rating"),
        q=_text(q), after=decode_cursor(q.get("cursor")), limit=limit + 1)
    more = len(rows) > limit
    rows = [_plain(r) for r in rows[:limit]]
    return 200, {"items": rows, "next_cursor": encode_cursor(rows[-1]) if more else None}


async def get_feedback(call: Call) -> tuple[int, Any]:
    tenant = await call.acting_tenant("read")
    fid = feedback_uuid(call.params["id"])
    row = await call.gw.store.get_feedback(tenant, fid)
    if row is None:
        raise NotFound(f"no feedback item {fid}")
    return 200, _plain(row)


def _original(row: dict[str, Any]) -> dict[str, Any]:
    """An item with the original service's field names too (``lang``, ``metadata_``)."""
    return {**_plain(row), "lang": row["language"], "metadata_": row["metadata"]}


def _tenant_id(call: Call) -> str:
    tenant = call.query.get("tenant_id")
    if not tenant:
        raise BadRequest("tenant_id is required")
    return tenant


async def compat_list(call: Call) -> tuple[int, Any]:
    token = await call.auth("read")
    tenant = _tenant_id(call)
    check(token, "read", tenant)  # another tenant's list: 403
    call.tenant = tenant
    q = call.query
    if q.get("metadata_key") and q.get("metadata_val"):
        raise BadRequest("metadata_key/metadata_val filters are not supported; filter the returned items instead")
    end = _time_param(q, "end")
    rows = await call.gw.store.query_feedback(
        tenant, source_type=q.get("source_type") or None, since=_time_param(q, "start"),
        until=end + timedelta(microseconds=1) if end else None, limit=_limit(q))  # end is inclusive
    return 200, [_original(r) for r in rows]


async def compat_item(call: Call) -> tuple[int, Any]:
    token = await call.auth("read")
    tenant = _tenant_id(call)
    fid = feedback_uuid(call.params["id"], "feedback_id")
    row = None
    if tenant == token.tenant or "admin" in token.scopes:
        row = await call.gw.store.get_feedback(tenant, fid)
    if row is None:
        raise NotFound("Not found")
    return 200, _original(row)


def feedback_routes(gw: "Gateway") -> list[Route]:
    return [
        api_route(gw, "/v1/feedback", GET=list_feedback),
        api_route(gw, "/v1/feedback/{id}", GET=get_feedback),
        api_route(gw, "/feedback", GET=compat_list),
        api_route(gw, "/feedback/{id}", GET=compat_item),
    ]


# -- OpenAPI --------------------------------------------------------------------------------

def _q(name: str, description: str, schema: dict[str, Any] | None = None, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


TIME = {"type": "string", "format": "date-time"}
LIMIT = _q("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100})
ITEM = {"type": "object", "properties": {
    "id": {"type": "string", "format": "uuid"}, "tenant_id": {"type": "string"}, "source_type": {"type": "string"},
    "source_instance": {"type": "string"}, "external_id": {"type": "string"},
    "author": {"type": ["string", "null"]}, "body": {"type": ["string", "null"]},
    "rating": {"type": ["integer", "null"]}, "language": {"type": ["string", "null"]},
    "created_at": TIME, "updated_at": {"type": ["string", "null"], "format": "date-time"}, "fetched_at": TIME,
    "metadata": {"type": "object"}}}
ORIGINAL_ITEM = {"allOf": [ITEM, {"type": "object", "properties": {
    "lang": {"type": ["string", "null"]}, "metadata_": {"type": "object"}}}]}
TENANT_Q = _q("tenant", "Tenant to read (default: the token's; others need admin). Or X-Sluice-Tenant.")


def _ok(desc: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": schema}}}


def _get(summary: str, description: str, params: list[dict[str, Any]], ok: dict[str, Any],
         **errors: str) -> dict[str, Any]:
    return {"get": {"summary": summary, "description": description, "parameters": params,
                    "responses": {"200": ok, "401": _err("Missing or invalid token"),
                                  **{k[1:]: _err(v) for k, v in errors.items()}}}}


def openapi_paths() -> dict[str, Any]:
    id_p = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    tenant_id = _q("tenant_id", "Must be the token's tenant (any tenant for admin tokens)", required=True)
    return {
        "/v1/feedback": _get(
            "Query feedback (oldest first)", "Needs the `read` scope.",
            [TENANT_Q, _q("source_type", "playstore, x, discourse, intercom, webhook"),
             _q("source_instance", "App id, query, base URL, …"), _q("since", "Inclusive, on created_at", TIME),
             _q("until", "Exclusive, on created_at", TIME),
             _q("min_rating", "Only items rated at least this", {"type": "integer"}),
             _q("q", "Case-insensitive text in body or author"), LIMIT,
             _q("cursor", "next_cursor of the previous page (opaque)")],
            _ok("A page", {"type": "object", "required": ["items", "next_cursor"], "properties": {
                "items": {"type": "array", "items": ITEM}, "next_cursor": {"type": ["string", "null"]}}}),
            e400="Bad parameter (named in detail)", e403="Token lacks read or belongs to another tenant"),
        "/v1/feedback/{id}": _get(
            "One feedback item", "Needs the `read` scope.", [id_p, TENANT_Q], _ok("The item", ITEM),
            e400="Malformed id", e403="Token lacks read", e404="Unknown id, or another tenant's"),
        "/feedback": _get(
            "Query feedback, original Ingest service form",
            "A plain JSON list, oldest first, no cursor. start and end are inclusive. Items also carry the "
            "original names lang and metadata_. metadata_key+metadata_val are refused (400).",
            [tenant_id, _q("source_type", "Source type"), _q("start", "Inclusive", TIME),
             _q("end", "Inclusive", TIME), LIMIT],
            _ok("Items", {"type": "array", "items": ORIGINAL_ITEM}),
            e400="Bad or missing parameter", e403="tenant_id is not the token's tenant, or no read scope"),
        "/feedback/{id}": _get(
            "One feedback item, original Ingest service form", "404 {\"error\",\"detail\": \"Not found\"} "
            "for unknown ids and for other tenants' items.", [id_p, tenant_id], _ok("The item", ORIGINAL_ITEM),
            e400="Malformed id or missing tenant_id", e404="Not found"),
    }
