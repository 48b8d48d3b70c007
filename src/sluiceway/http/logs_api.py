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
from sluiceway.http.control import CURSOR, Call, api_route, decode_cursor, encode_cursor, get_operation
from sluiceway.http.openapi import LIMIT, TENANT_Q, TIME, ok_response, query_param, text_query
from sluiceway.http.params import limit_param, text_param, time_param
from sluiceway.logs.pino import SEVERITY

if TYPE_CHECKING:
    from sluiceway.runtime.gateway import Gateway


def _level(q: dict[str, str]) -> int | None:
    """``level``: a number of at most 4 digits (the store keeps a smallint), or a level name in
    any case (``warn``, ``WARN``)."""
    v = q.get("level")
    if v is None:
        return None
    if v.isascii() and v.isdigit() and len(v) <= 4:
        return int(v)
    n = SEVERITY.get(v.lower())
    if n is None:
        raise BadRequest(f"level must be a number from 0 to 9999 or one of {', '.join(SEVERITY)}, got {v!r}")
    return n


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else c for c in word)


LEVEL = {"type": "string", "pattern": f"^([0-9]{{1,4}}|{'|'.join(map(_any_case, SEVERITY))})$"}


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
         query_param("level", f"Minimum level: a pino number (0 to 9999) or a name, any case: {', '.join(SEVERITY)}",
                     LEVEL),
         query_param("hostname", "Exact hostname (empty: any)"),
         query_param("context", "Exact Nest logger context (empty: any)"),
         text_query("Case-insensitive text in the message"), LIMIT, CURSOR],
        ok_response("A page", {"type": "object", "required": ["logs", "next_cursor"], "properties": {
            "logs": {"type": "array", "items": ROW}, "next_cursor": {"type": ["string", "null"]}}}),
        e400="Bad parameter (named in detail)", e403="Token lacks read or belongs to another tenant")}
