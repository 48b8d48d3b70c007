"""``GET /v1/logs``: the ``logs`` table (``read`` scope), one tenant at a time.

Filters: ``since`` (inclusive) and ``until`` (exclusive) on the line's time, ``level`` (a
minimum: a pino name such as ``warn`` or a number such as ``40``), ``hostname``,
``context``, ``q`` (case-insensitive text in the message). Oldest first by ``(time, id)``;
``next_cursor`` is that pair, opaque. A token reads its own tenant; an admin token may name
another with ``?tenant=`` or ``X-Sluice-Tenant``. The frame is ``http.control``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.routing import Route

from sluiceway.errors import BadRequest
from sluiceway.http.control import (
    LIMIT, TENANT_Q, TIME, Call, api_route, decode_cursor, encode_cursor, get_operation, limit_param, ok_response,
    query_param, text_param,
)
from sluiceway.http.ingest import time_param
from sluiceway.logs.pino import LEVELS, severity

if TYPE_CHECKING:
    from sluiceway.runtime.gateway import Gateway


def _level(q: dict[str, str]) -> int | None:
    v = q.get("level")
    if not v:
        return None
    n = severity(v)
    if n is None:
        raise BadRequest(f"level must be a number or one of {', '.join(LEVELS.values())}, got {v!r}")
    return n


async def list_logs(call: Call) -> tuple[int, Any]:
    tenant = await call.acting_tenant("read")
    q = call.query
    limit = limit_param(q)
    rows = await call.gw.store.query_logs(
        tenant, since=time_param(q, "since"), until=time_param(q, "until"), min_severity=_level(q),
        hostname=q.get("hostname") or None, context=q.get("context") or None, q=text_param(q),
        after=decode_cursor(q.get("cursor")), limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = encode_cursor(rows[-1]["time"], rows[-1]["id"]) if more else None
    return 200, {"logs": rows, "next_cursor": cursor}


def logs_routes(gw: "Gateway") -> list[Route]:
    return [api_route(gw, "/v1/logs", GET=list_logs)]


_J = {"type": ["object", "null"]}
_S = {"type": ["string", "null"]}
_I = {"type": ["integer", "null"]}
ROW = {"type": "object", "properties": {
    "tenant": {"type": "string"}, "time": TIME, "id": {"type": "string", "format": "uuid"}, "level": _S,
    "severity": _I, "method": _S, "url": _S, "query": _J, "headers": _J, "context": _S, "message": _S,
    "auth_user_id": _S, "pid": _I, "hostname": _S, "remote_address": _S, "remote_port": _I,
    "processing_time_ms": {"type": ["number", "null"]}, "cache_hit": {"type": ["boolean", "null"]},
    "document_count": _I, "params": _J, "file": _S, "line": _I, "raw": {"type": "object"}}}


def openapi_paths() -> dict[str, Any]:
    return {"/v1/logs": get_operation(
        "Query log lines (oldest first)", "Needs the `read` scope. Headers authorization and cookie are redacted.",
        [TENANT_Q, query_param("since", "Inclusive, on time", TIME), query_param("until", "Exclusive, on time", TIME),
         query_param("level", "Minimum level: trace, debug, info, warn, error, fatal or a pino number"),
         query_param("hostname", "Exact hostname"), query_param("context", "Exact Nest logger context"),
         query_param("q", "Case-insensitive text in the message"), LIMIT,
         query_param("cursor", "next_cursor of the previous page (opaque)")],
        ok_response("A page", {"type": "object", "required": ["logs", "next_cursor"], "properties": {
            "logs": {"type": "array", "items": ROW}, "next_cursor": {"type": ["string", "null"]}}}),
        e400="Bad parameter (named in detail)", e403="Token lacks read or belongs to another tenant")}
