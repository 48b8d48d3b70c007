"""The feedback query API (``read`` scope).

- ``GET /v1/feedback``: filters ``source_type``, ``source_instance``, ``since`` (inclusive),
  ``until`` (exclusive), ``min_rating``, ``q`` (text in body or author); oldest first by
  ``(created_at, id)``; ``next_cursor`` is that pair, opaque (base64url of JSON).
- ``GET /v1/feedback/{id}``: one item; a malformed id is 400, unknown or another tenant's 404.
- ``GET /feedback`` and ``GET /feedback/{id}``: the original Ingest service's paths and
  shapes (``tenant_id`` query parameter, inclusive ``start``/``end``, a plain JSON list, the
  ``lang``/``metadata_`` field names besides ours), but authenticated: ``tenant_id`` must be
  the token's tenant unless the token is admin (403 for the list, 404 for an item).

A token reads its own tenant; an admin token may name another with ``?tenant=`` or
``X-Sluice-Tenant``. The frame is ``http.control``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.routing import Route

from sluiceway.errors import BadRequest, NotFound
from sluiceway.http.auth import check
from sluiceway.http.control import CURSOR, Call, api_route, decode_cursor, encode_cursor, get_operation
from sluiceway.http.openapi import LIMIT, TENANT_Q, TIME, UUID, ok_response, path_param, query_param, text_query
from sluiceway.http.params import int_param, is_uuid, limit_param, text_param, time_param

if TYPE_CHECKING:
    from sluiceway.runtime.gateway import Gateway


RATING = {"type": "integer", "minimum": -2**31, "maximum": 2**31 - 1}  # the store's integer column


def feedback_uuid(v: str, name: str = "id") -> str:
    if not is_uuid(v):
        raise BadRequest(f"{name} must be a UUID such as 6f1d3c1e-8a51-4f0c-9c5e-2b7d1e0a9f11, got {v!r}")
    return v.lower()


# -- handlers -------------------------------------------------------------------------------

async def list_feedback(call: Call) -> tuple[int, Any]:
    tenant = await call.acting_tenant("read")
    q = call.query
    limit = limit_param(q)
    rows = await call.gw.store.query_feedback(
        tenant, source_type=q.get("source_type") or None, source_instance=q.get("source_instance"),
        since=time_param(q, "since"), until=time_param(q, "until"),
        min_rating=int_param(q, "min_rating", None, RATING["minimum"], RATING["maximum"]),
        q=text_param(q), after=decode_cursor(q.get("cursor")), limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return 200, {"items": rows, "next_cursor": encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None}


async def get_feedback(call: Call) -> tuple[int, Any]:
    tenant = await call.acting_tenant("read")
    fid = feedback_uuid(call.params["id"])
    row = await call.gw.store.get_feedback(tenant, fid)
    if row is None:
        raise NotFound(f"no feedback item {fid}")
    return 200, row


def _original(row: dict[str, Any]) -> dict[str, Any]:
    """An item with the original service's field names too (``lang``, ``metadata_``)."""
    return {**row, "lang": row["language"], "metadata_": row["metadata"]}


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
    end = time_param(q, "end")
    rows = await call.gw.store.query_feedback(
        tenant, source_type=q.get("source_type") or None, since=time_param(q, "start"),
        until=_just_after(end), limit=limit_param(q))
    return 200, [_original(r) for r in rows]


def _just_after(end: datetime | None) -> datetime | None:
    """The exclusive bound for an inclusive ``end`` (none after the last representable time)."""
    try:
        return end + timedelta(microseconds=1) if end else None
    except OverflowError:
        return None


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

ITEM = {"type": "object", "properties": {
    "id": {"type": "string", "format": "uuid"}, "tenant_id": {"type": "string"}, "source_type": {"type": "string"},
    "source_instance": {"type": "string"}, "external_id": {"type": "string"},
    "author": {"type": ["string", "null"]}, "body": {"type": ["string", "null"]},
    "rating": {"type": ["integer", "null"]}, "language": {"type": ["string", "null"]},
    "created_at": TIME, "updated_at": {"type": ["string", "null"], "format": "date-time"}, "fetched_at": TIME,
    "metadata": {"type": "object"}}}
ORIGINAL_ITEM = {"allOf": [ITEM, {"type": "object", "properties": {
    "lang": {"type": ["string", "null"]}, "metadata_": {"type": "object"}}}]}


def openapi_paths() -> dict[str, Any]:
    id_p = path_param("id", UUID)
    tenant_id = query_param("tenant_id", "Must be the token's tenant (any tenant for admin tokens)",
                            {"type": "string", "minLength": 1}, required=True)
    return {
        "/v1/feedback": get_operation(
            "Query feedback (oldest first)", "Needs the `read` scope.",
            [TENANT_Q, query_param("source_type", "playstore, x, discourse, intercom, webhook (empty: any)"),
             query_param("source_instance", "App id, query, base URL, …"), query_param("since", "Inclusive, on created_at", TIME),
             query_param("until", "Exclusive, on created_at", TIME),
             query_param("min_rating", "Only items rated at least this", RATING),
             text_query("Case-insensitive text in body or author"), LIMIT, CURSOR],
            ok_response("A page", {"type": "object", "required": ["items", "next_cursor"], "properties": {
                "items": {"type": "array", "items": ITEM}, "next_cursor": {"type": ["string", "null"]}}}),
            e400="Bad parameter (named in detail)", e403="Token lacks read or belongs to another tenant"),
        "/v1/feedback/{id}": get_operation(
            "One feedback item", "Needs the `read` scope.", [id_p, TENANT_Q], ok_response("The item", ITEM),
            e400="Malformed id or tenant", e403="Token lacks read or belongs to another tenant",
            e404="Unknown id, or another tenant's"),
        "/feedback": get_operation(
            "Query feedback, original Ingest service form",
            "A plain JSON list, oldest first, no cursor. start and end are inclusive. Items also carry the "
            "original names lang and metadata_. metadata_key+metadata_val are refused (400).",
            [tenant_id, query_param("source_type", "Source type (empty: any)"), query_param("start", "Inclusive", TIME),
             query_param("end", "Inclusive", TIME), LIMIT],
            ok_response("Items", {"type": "array", "items": ORIGINAL_ITEM}),
            e400="Bad or missing parameter", e403="tenant_id is not the token's tenant, or no read scope"),
        "/feedback/{id}": get_operation(
            "One feedback item, original Ingest service form", "404 {\"error\",\"detail\": \"Not found\"} "
            "for unknown ids and for other tenants' items.", [id_p, tenant_id], ok_response("The item", ORIGINAL_ITEM),
            e400="Malformed id or missing tenant_id", e403="Token lacks read", e404="Not found"),
    }
