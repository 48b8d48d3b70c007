"""uvicorn's httptools protocol, with a direct way for the hot POST.

uvicorn runs every request as an asyncio task that drives the ASGI app through ``receive``
and ``send`` message dicts. For a small ``POST /v1/streams/{stream}/events`` that machinery
(the task, its coroutines, the messages, the header checks of ``send``) costs about as much
as all of sluiceway's own work on the request. Here, once such a request's body is in, the
protocol hands it to the app's ``direct`` route (``FastPath.direct`` →
``StreamEvents.post_direct``, or a source's ``direct_routes``, such as Lightfile6's
``PUT /usage`` and ``PUT /error``) in its parser callback: that queues the records to the
journal and the response is written by the journal future's callback, once they are durable
(``http.endpoint.durable_handler``). No task.

The direct way takes only what it can finish without awaiting anything but the journal: a
``Content-Length`` body of at most ``DIRECT_MAX_BODY`` bytes (uvicorn stops reading past
64 KiB until the app asks for more), no ``Expect: 100-continue``, a client that is reading
its responses (otherwise ``send`` would wait for the buffer to drain), a token in the cache,
no Idempotency-Key, and no error. Everything else, including every error answer, is started
as the usual ASGI task with the body already read, so it is answered exactly as before.
Pipelined requests, keep-alive, ``Connection: close`` and graceful shutdown (``shutdown``
lets an in-flight request finish, then closes) follow uvicorn's own bookkeeping: the
response marks the request cycle complete and calls its ``on_response``. A request whose
client leaves before its body is in gets its ASGI task then (uvicorn's own protocol would have
one running), which sees the disconnect: it is logged and counted as 499 either way.

This subclass uses uvicorn internals (``_start_asgi_task``, the request cycle's fields,
``STATUS_LINE``): uvicorn is pinned in pyproject.toml, and tests/http/test_protocol.py and
fuzz/direct_post.py (the same bytes through this class and through uvicorn's own, answers
compared) are what to run when moving to another version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

DIRECT_MAX_BODY = 65536  # uvicorn's HIGH_WATER_LIMIT: past it, reading waits for receive()
_METHODS = frozenset({"POST", "PUT"})  # what a direct route may be
_WAITING, _RUNNING = 1, 2  # a direct cycle's state: its body is arriving / it has been handled

Respond = Callable[[int, bytes, "Mapping[str, str] | None"], None]  # status, body, extra headers
# (body, respond) -> True when it answers (through respond, once); False: run the ASGI app.
Direct = Callable[[bytes, Respond], bool]
# At the end of a request's headers: its Direct handler, or None for the ASGI way from the start.
Route = Callable[[dict[str, Any]], "Direct | None"]


def protocol_class(route: Route) -> type[HttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=…)``; ``route(scope)`` is called when a
    request's headers are in (``FastPath.direct``): it checks what the headers alone decide and
    returns the request's direct handler, or None (a problem: the ASGI task answers it, as soon
    as uvicorn's own protocol would)."""
    return type("SluiceHttpProtocol", (DirectProtocol,), {"route": staticmethod(route)})


class DirectProtocol(HttpToolsProtocol):
    route: Route

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        handler = self._direct_handler(cycle, app)
        if handler is None:
            super()._start_asgi_task(cycle, app)
            return
        cycle.direct = (_WAITING, handler, app)  # type: ignore[attr-defined]
        if not cycle.more_body:  # a pipelined request: its body is already in
            self._run_direct(cycle)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        cycle = self.cycle
        direct = getattr(cycle, "direct", None)
        if direct is not None and direct[0] == _WAITING and not cycle.disconnected:
            self._run_direct(cycle)

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        super().connection_lost(exc)
        direct = getattr(cycle, "direct", None)
        if direct is not None and direct[0] == _WAITING:  # the client left mid-body
            # uvicorn's own protocol would have an ASGI task for it by now, and that task would
            # see the disconnect: start it, so the request is logged and counted (499) the same.
            cycle.direct = (_RUNNING, *direct[1:])
            super()._start_asgi_task(cycle, direct[2])

    def _direct_handler(self, cycle: RequestResponseCycle, app: Any) -> Direct | None:
        scope = cycle.scope
        if (scope["method"] not in _METHODS or app is not self.app or cycle.waiting_for_100_continue
                or self.flow.write_paused):
            return None
        length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                if length is not None:
                    return None
                length = value
            elif name == b"transfer-encoding":
                return None
        if length is None or not length.isdigit() or int(length) > DIRECT_MAX_BODY:
            return None
        return self.route(scope)

    def _run_direct(self, cycle: RequestResponseCycle) -> None:
        _, handler, app = cycle.direct  # type: ignore[attr-defined]
        cycle.direct = (_RUNNING, handler, app)  # type: ignore[attr-defined]
        if not handler(bytes(cycle.body), lambda *a: self._respond(cycle, *a)):
            super()._start_asgi_task(cycle, app)  # the body stays in the cycle for receive()

    def _respond(self, cycle: RequestResponseCycle, status: int, body: bytes,
                 headers: Mapping[str, str] | None) -> None:
        """Write a complete JSON response (or a 204), as ``RequestResponseCycle.send`` would."""
        if cycle.disconnected or cycle.response_started:
            return
        cycle.response_started = cycle.response_complete = True
        out = [STATUS_LINE[status]]
        for name, value in cycle.default_headers:
            out += (name, b": ", value, b"\r\n")
        if status != 204:  # which has neither (RFC 9110 8.6)
            out += (b"content-type: application/json\r\ncontent-length: ", b"%d" % len(body), b"\r\n")
        if headers:
            for name, value in headers.items():
                out += (name.lower().encode("latin-1"), b": ", value.encode("latin-1"), b"\r\n")
        if not cycle.keep_alive:
            out.append(b"connection: close\r\n")
        out += (b"\r\n", body)
        transport = cycle.transport
        transport.write(b"".join(out))
        cycle.message_event.set()
        if not cycle.keep_alive:
            transport.close()
        cycle.on_response()
