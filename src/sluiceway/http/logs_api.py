"""``GET /v1/logs``: the ``logs`` table (``read`` scope), one tenant at a time.

Filters: ``since`` (inclusive) and ``until`` (exclusive) on the line's time, ``level`` (a
minimum: a pino name such as ``warn`` or a number such as ``40``), ``hostname``,
``context``, ``q`` (case-insensitive text in the message). Oldest first by ``(time, id)``;
``next_cursor`` is that pair, opaque. A token reads its own tenant; an admin token may name
another with ``?tenant=`` or ``X-Sluice-Tenant``. The frame is the feedback API's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.routing import Route

from sluiceway.errors import BadRequest
from sluiceway.http.feedback_api import (
    TENANT_Q, TIME, Call, _get, _limit, _ok, _plain, _q, _text, _time_param, api_route, decode_cursor,
    encode_cursor, LIMIT,
)
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
    limit = _limit(q)
    rows = await call.gw.store.query_logs(
        tenant, since=_time_param(q, "since"), until=_time_param(q, "until"), min_severity=_level(q),
        hostname=q.get("hostname") or None, context=q.get("context") or None, q=_text(q),
        after=decode_cursor(q.get("cursor")), limit=limit + 1)
    more = len(rows) > limit
    rows = [_plain(r) for r in rows[:limit]]
    cursor = encode_cursor({"created_at": rows[-1]["time"], "id": rows[-1]["id"]}) if more else None
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
    return {"/v1/logs": _get(
        "Query log lines (oldest first)", "Needs the `read` scope. Headers authorization and cookie are redacted.",
        [TENANT_Q, _q("since", "Inclusive, on time", TIME), _q("until", "Exclusive, on time", TIME),
         _q("level", "Minimum level: trace, debug, info, warn, error, fatal or a pino number"),
         _q("hostname", "Exact hostname"), _q("context", "Exact Nest logger context"),
         _q("q", "Case-insensitive text in the message"), LIMIT,
         _q("cursor", "next_cursor of the previous page (opaque)")],
        _ok("A page", {"type": "object", "required": ["logs", "next_cursor"], "properties": {
            "logs": {"type": "array", "items": ROW}, "next_cursor": {"type": ["string", "null"]}}}),
        e400="Bad parameter (named in detail)", e403="Token lacks read or belongs to another tenant")}
