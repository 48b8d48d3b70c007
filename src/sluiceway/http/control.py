"""The frame the control-plane endpoints share (feedback, admin and logs APIs).

``api_route(gw, path, GET=handler, …)`` runs ``handler(call)`` under ``run_endpoint``
(request id, JSON errors, metrics, access log); the handler returns ``(status, body)``.
``Call`` holds the parsed query, path parameters, authentication and the JSON body. Also:
the parameter helpers, the opaque ``(time, id)`` keyset cursor, and OpenAPI snippets.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import orjson
from starlette.routing import Route

from sluiceway.errors import BadRequest
from sluiceway.http.auth import check, requested_tenant
from sluiceway.http.body import content_length, read_body
from sluiceway.http.endpoint import run_endpoint
from sluiceway.http.params import is_uuid, query_params
from sluiceway.http.openapi import error_response, query_param
from sluiceway.http.responses import send_json
from sluiceway.record import parse_time

if TYPE_CHECKING:
    from sluiceway.runtime.gateway import Gateway
    from sluiceway.store import TokenInfo

MAX_CONTROL_BODY = 1024 * 1024


# -- the frame ------------------------------------------------------------------------------

class Call:
    """One request to a control-plane endpoint: parsed query, path parameters, auth, body."""

    def __init__(self, gw: "Gateway", scope: dict[str, Any], receive: Any, headers: dict[bytes, bytes]):
        self.gw, self.receive, self.headers = gw, receive, headers
        qs = scope.get("query_string", b"").decode("latin-1")
        self.query = query_params(qs)
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
        tenant = requested_tenant(self.headers, self.query, token.tenant)
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


# -- the keyset cursor ----------------------------------------------------------------------

def encode_cursor(at: str, row_id: str) -> str:
    """The opaque keyset cursor after the row at ``(at, row_id)`` (RFC 3339 time, UUID id)."""
    return base64.urlsafe_b64encode(orjson.dumps([at, row_id])).decode().rstrip("=")


def decode_cursor(v: str | None) -> tuple[Any, str] | None:
    if v is None:
        return None
    try:
        at, fid = orjson.loads(base64.urlsafe_b64decode(v + "=" * (-len(v) % 4)))
        if not (isinstance(at, str) and isinstance(fid, str) and is_uuid(fid)):
            raise ValueError
        return parse_time(at), fid
    except (TypeError, ValueError):  # binascii.Error and orjson.JSONDecodeError are ValueErrors
        raise BadRequest("cursor is not valid; pass the next_cursor of a previous page") from None


# -- OpenAPI --------------------------------------------------------------------------------

CURSOR = query_param("cursor", "next_cursor of the previous page (opaque: base64url, only a next_cursor is valid)",
                     {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"})


def get_operation(summary: str, description: str, params: list[dict[str, Any]], ok: dict[str, Any],
         **errors: str) -> dict[str, Any]:
    return {"get": {"summary": summary, "description": description, "parameters": params,
                    "responses": {"200": ok, "401": error_response("Missing or invalid token"),
                                  **{k[1:]: error_response(v) for k, v in errors.items()}}}}


