"""The base of the fake platform servers: a Starlette app under uvicorn on 127.0.0.1.

Each fake (``playstore``, ``x``, ``discourse``, ``intercom``) subclasses ``FakeServer``: it
declares its routes and how the platform answers errors and rate limits; this module runs
it in a background thread on a free port, records every request (method, path, query,
headers, body) and injects faults on chosen requests:

    fake.fail("429", wait=7)         # the next request: the platform's 429, asking for 7 s
    fake.fail("500", after=1)        # the request after the next one: a 500
    fake.fail("hang", times=2)       # the next two: no answer until the client gives up
    fake.fail("401", times=99)       # a permanent auth failure

``clock`` is the fake's time (unix seconds); tests pin it and the connector's ``now`` to
the same value, so rate-limit waits are asserted exactly, never measured. One server can
serve a whole test module: ``reset()`` forgets the data (``clear()``), requests and faults,
and releases hung requests.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Fault:
    kind: str  # "429", "500", "hang", or any other status code as text
    after: int = 0
    times: int = 1
    options: dict[str, Any] = field(default_factory=dict)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers=headers, media_type="application/json")


def page_token(offset: int, salt: str) -> str:
    """An opaque page token holding an offset (platform tokens are opaque too)."""
    return base64.urlsafe_b64encode(f"{salt}:{offset}".encode()).decode().rstrip("=")


def token_offset(token: str | None, salt: str) -> int | None:
    """The offset in a token, or None when it is not one of ours."""
    if not token:
        return 0
    try:
        prefix, offset = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split(":")
        return int(offset) if prefix == salt else None
    except ValueError:
        return None


class FakeServer:
    hang_limit = 10.0  # a hung request is released after this long (or at stop)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.reset()

    def reset(self) -> None:
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.clock: Callable[[], float] = time.time
        if self._loop is not None and self._server is not None:
            asyncio.run_coroutine_threadsafe(self._renew_release(), self._loop).result(5)
        self.clear()

    async def _renew_release(self) -> None:
        if self._release is not None:
            self._release.set()
        self._release = asyncio.Event()

    # -- to override -----------------------------------------------------------------------
    def clear(self) -> None:
        """Forget the platform's data (back to as constructed)."""

    def routes(self) -> list[tuple[str, str, Callable[[Request], Any]]]:
        """``(method, path, handler)``; handlers are async and may raise ``Reply``."""
        raise NotImplementedError

    def error(self, status: int, message: str) -> Response:
        """The platform's error envelope."""
        return json_response({"error": message}, status)

    def rate_limited(self, wait: float | None) -> Response:
        """The platform's 429, asking for ``wait`` seconds (None: the platform's default signal)."""
        return json_response({"error": "rate limited"}, 429, {"Retry-After": str(int(wait or 1))})

    # -- faults and records ----------------------------------------------------------------
    def fail(self, kind: str, *, after: int = 0, times: int = 1, **options: Any) -> None:
        with self._lock:
            self.faults.append(Fault(str(kind), after, times, options))

    def _take_fault(self) -> Fault | None:
        with self._lock:
            chosen = None
            for f in self.faults:
                if f.after > 0:
                    f.after -= 1
                elif chosen is None:
                    chosen = f
            if chosen is not None:
                chosen.times -= 1
                if chosen.times <= 0:
                    self.faults.remove(chosen)
            return chosen

    def calls(self, path_suffix: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.path.endswith(path_suffix)]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- serving ---------------------------------------------------------------------------
    def _wrap(self, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            self.requests.append(Recorded(request.method, request.url.path, dict(request.query_params),
                                          list(request.query_params.multi_items()),
                                          {k.lower(): v for k, v in request.headers.items()}, body))
            fault = self._take_fault()
            if fault is not None:
                response = await self._fault(fault)
            else:
                try:
                    response = await handler(request)
                except Reply as r:
                    response = self.error(r.status, r.message)
            response.headers["date"] = formatdate(self.clock(), usegmt=True)
            return response
        return endpoint

    async def _fault(self, fault: Fault) -> Response:
        if fault.kind == "hang":
            assert self._release is not None
            try:
                await asyncio.wait_for(self._release.wait(), self.hang_limit)
            except asyncio.TimeoutError:
                pass
            return self.error(504, "released")
        if fault.kind == "429":
            return self.rate_limited(fault.options.get("wait"))
        return self.error(int(fault.kind), fault.options.get("message", f"injected {fault.kind}"))

    def start(self) -> "FakeServer":
        app = Starlette(routes=[Route(path, self._wrap(h), methods=[m]) for m, path, h in self.routes()])
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False, loop="asyncio",
                                http="httptools", server_header=False, date_header=False, timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._release = asyncio.Event()
            await self._server.serve(sockets=[sock])  # type: ignore[union-attr]

        self._thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        if self._loop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)
        if self._thread is not None:
            self._thread.join(10)
        self._server = None

    def __enter__(self) -> "FakeServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class Reply(Exception):
    """Raised by a handler: answer with the platform's error envelope."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth[len("Bearer "):] if auth.startswith("Bearer ") else None
