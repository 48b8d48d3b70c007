"""ASGI app assembly: routes, JSON errors for every failure, lifespan opening the gateway."""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from sluiceway.errors import HTTPError
from sluiceway.http import admin_api, feedback_api, logs_api
from sluiceway.http.ingest import StreamEvents
from sluiceway.http.openapi import openapi_spec, render_docs
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sluiceway.http.protocol import Direct
    from sluiceway.http.protocol import Route as DirectRoute
    from sluiceway.runtime.gateway import Gateway

log = get_logger("sluiceway.http")


class ORJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def api_spec(sources: "Iterable[Any]" = ()) -> dict[str, Any]:
    """The OpenAPI document of a gateway with these sources (served at /openapi.json)."""
    extra: dict[str, Any] = {**feedback_api.openapi_paths(), **admin_api.openapi_paths(),
                             **logs_api.openapi_paths()}
    for source in sources:
        extra.update(source.openapi_paths())
    return openapi_spec(extra)


def create_app(gateway: "Gateway", manage_lifecycle: bool = True) -> "FastPath":
    spec = api_spec(gateway.sources)
    ingest = StreamEvents(gateway)

    async def health(request: Request) -> Response:
        return ORJSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        checks = await gateway.readiness()
        ok = all(v == "ok" for v in checks.values())
        return ORJSONResponse({"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503)

    async def metrics(request: Request) -> Response:
        return Response(gateway.render_metrics(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi(request: Request) -> Response:
        return ORJSONResponse(spec)

    async def docs(request: Request) -> Response:
        return HTMLResponse(render_docs(spec))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPError)
        return ORJSONResponse({"error": exc.code, "detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    async def starlette_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = exc.detail
        if exc.status_code == 404:
            detail = f"no route for {request.method} {request.scope['path']}; see /docs"
        return ORJSONResponse({"error": code, "detail": detail}, status_code=exc.status_code, headers=exc.headers)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.scope.get("path"))
        return ORJSONResponse({"error": "internal_error", "detail": "an internal error occurred; see the server log"},
                              status_code=500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        if manage_lifecycle:
            await gateway.open()
        try:
            yield
        finally:
            if manage_lifecycle:
                await gateway.aclose()

    # Source routes come first: a receiver may answer a core path (e.g. /health) its own way.
    exact: dict[tuple[str, str], Any] = {}
    direct: dict[tuple[str, str], DirectRoute] = {}
    patterns: list[Pattern] = []
    by_path: dict[str, dict[str, Any]] = {}
    for source in gateway.sources:
        for method, path, route in source.direct_routes():
            direct[(method, path)] = route
        for method, path, endpoint in source.routes():
            if "{" not in path:
                exact[(method, path)] = endpoint
            else:
                patterns.append(Pattern(method, path, endpoint))
            by_path.setdefault(path, {})[method] = endpoint
    routes: list[Route] = [Route(path, _Methods(methods), methods=list(methods)) for path, methods in by_path.items()]
    routes += [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs, methods=["GET"]),
        Route("/v1/streams/{stream}/events", ingest, methods=["GET", "POST"]),
        *feedback_api.feedback_routes(gateway),
        *admin_api.admin_routes(gateway),
        *logs_api.logs_routes(gateway),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPError: http_error, StarletteHTTPException: starlette_error, Exception: server_error},
    )
    app.state.gateway = gateway
    return FastPath(app, ingest, exact, patterns, direct)


class _Methods:
    """A raw ASGI endpoint per method, as one Starlette route endpoint (the router answers
    other methods with 405 and Allow)."""

    def __init__(self, methods: dict[str, Any]):
        self.methods = methods

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        method = scope["method"]
        await self.methods["GET" if method == "HEAD" else method](scope, receive, send)


class Pattern:
    """A route with ``{param}`` segments, matched segment by segment (no regex): params take
    one non-empty segment each; the first matching pattern wins, in the sources' order."""

    __slots__ = ("method", "segments", "n", "endpoint")

    def __init__(self, method: str, path: str, endpoint: Any):
        self.method = method
        self.segments = [(seg[1:-1], True) if seg.startswith("{") and seg.endswith("}") else (seg, False)
                         for seg in path.split("/")]
        self.n = len(self.segments)
        self.endpoint = endpoint

    def match(self, method: str, parts: list[str]) -> dict[str, str] | None:
        if method != self.method or len(parts) != self.n:
            return None
        params = {}
        for (seg, is_param), part in zip(self.segments, parts):
            if is_param:
                if not part:
                    return None
                params[seg] = part
            elif seg != part:
                return None
        return params


class FastPath:
    """Sends ``POST /v1/streams/{stream}/events`` and the receivers' routes straight to their
    raw ASGI endpoints, past the middleware and router (which they do not need: they answer
    every error themselves as JSON). Everything else goes to the Starlette app."""

    PREFIX, SUFFIX = "/v1/streams/", "/events"

    def __init__(self, app: Starlette, ingest: StreamEvents, exact: dict[tuple[str, str], Any] | None = None,
                 patterns: list[Pattern] | None = None, direct: "dict[tuple[str, str], DirectRoute] | None" = None):
        self.app = app
        self.direct_exact = direct or {}
        self.ingest = ingest
        self.exact = exact or {}
        self.patterns = patterns or []
        self.state = app.state

    def direct(self, scope: dict[str, Any]) -> "Direct | None":
        """``http.protocol``'s route: the direct handler of a request whose headers are in (a
        POST of events, or a source's ``direct_routes``), or None for the ASGI way."""
        path: str = scope["path"]
        route = self.direct_exact.get((scope["method"], path))
        if route is not None:
            return route(scope)
        if path.startswith(self.PREFIX) and path.endswith(self.SUFFIX) and (scope["method"], path) not in self.exact:
            stream = path[len(self.PREFIX):-len(self.SUFFIX)]
            if stream and "/" not in stream and not self._pattern_matches(scope["method"], path):
                return self.ingest.direct(scope, stream)
        return None

    def _pattern_matches(self, method: str, path: str) -> bool:
        if not self.patterns:
            return False
        parts = path.split("/")
        return any(pattern.match(method, parts) is not None for pattern in self.patterns)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            endpoint = self.exact.get((scope["method"], scope["path"]))
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
            if self.patterns:
                parts = scope["path"].split("/")
                for pattern in self.patterns:
                    params = pattern.match(scope["method"], parts)
                    if params is not None:
                        scope["path_params"] = params
                        await pattern.endpoint(scope, receive, send)
                        return
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(self.PREFIX) and path.endswith(self.SUFFIX):
                stream = path[len(self.PREFIX):-len(self.SUFFIX)]
                if stream and "/" not in stream:
                    scope["path_params"] = {"stream": stream}
                    await self.ingest(scope, receive, send)
                    return
        query = scope.get("query_string")
        if query and not query.isascii():
            # Servers pass the query string's bytes as sent; Starlette decodes them as UTF-8 in
            # places (its URL, the trailing-slash redirect) and raised on other bytes (a 500).
            # Percent-encoded, they read as a well-behaved client would have sent them.
            scope = {**scope, "query_string": _NON_ASCII.sub(lambda m: b"%%%02X" % m[0][0], query)}
        await self.app(scope, receive, send)


_NON_ASCII = re.compile(rb"[\x80-\xff]")
