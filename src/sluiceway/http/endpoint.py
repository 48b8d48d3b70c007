"""The frame every raw-ASGI endpoint shares: request id, JSON errors, metrics, access log.

``run_endpoint`` calls ``handler(headers, request_id)``, which sends its own success response
and returns ``(status, tenant, stream)`` for the log. Every ``HTTPError`` becomes a JSON error
(``render_error`` decides its body: sluiceway's ``{"error","detail"}`` by default), a client
that went away is logged as 499, a store (or disk, or network) that cannot serve now is 503
``unavailable`` with Retry-After (``store.lite.unavailable_reason``), and anything else is a
bug: logged with its traceback and answered 500.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import uuid_utils

from sluiceway.errors import HTTPError, Unavailable
from sluiceway.http.body import ClientDisconnected
from sluiceway.http.responses import error_body, send_json
from sluiceway.store.lite import unavailable_reason
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    import asyncio

    from sluiceway.http.protocol import Direct, Respond
    from sluiceway.runtime.gateway import Gateway

log = get_logger("sluiceway.http")
Handler = Callable[[dict[bytes, bytes], str], Awaitable[tuple[int, "str | None", "str | None"]]]
UNAVAILABLE_RETRY = 5.0  # Retry-After when the store or the system cannot serve now
INTERNAL_ERROR = b'{"error":"internal_error","detail":"an internal error occurred; see the server log"}'


def request_id(headers: dict[bytes, bytes]) -> str:
    rid = headers.get(b"x-request-id")
    return rid.decode("latin-1")[:128] if rid else uuid_utils.uuid7().hex


async def run_endpoint(gw: "Gateway", route: str, scope: dict[str, Any], send: Any, handler: Handler, *,
                       render_error: Callable[[HTTPError], bytes] = error_body,
                       stream: str | None = None) -> None:
    started = time.perf_counter()
    status, tenant, rid = 500, None, None
    try:
        headers: dict[bytes, bytes] = dict(scope["headers"])
        rid = request_id(headers)
        status, tenant, stream = await handler(headers, rid)
    except HTTPError as e:
        status = e.status
        await send_json(send, e.status, render_error(e), e.headers)
    except ClientDisconnected:
        status = 499
    except Exception as exc:
        reason = unavailable_reason(exc)
        try:
            if reason is not None:  # the store (or the disk, the network) cannot serve now
                status = 503
                log.warning("request failed: a service is unavailable", path=scope.get("path"), request_id=rid,
                            error=reason)
                err = Unavailable(f"{reason}; retry later", retry_after=UNAVAILABLE_RETRY, code="unavailable")
                await send_json(send, 503, render_error(err), err.headers)
            else:  # a bug: answer like the app's server-error handler would
                status = 500
                log.exception("unhandled error", path=scope.get("path"), request_id=rid)
                await send_json(send, 500, INTERNAL_ERROR)
        except Exception:  # noqa: BLE001 - the response had already started
            pass
    finally:
        gw.observe_request(route, scope["method"], status, started, request_id=rid, tenant=tenant, stream=stream)


def durable_handler(gw: "Gateway", headers: dict[bytes, bytes], records: Callable[[bytes], list[bytes]],
                    success: Callable[[str, int], tuple[int, bytes, Mapping[str, str] | None]], *, route: str,
                    method: str, started: float, tenant: str, stream: str,
                    render_error: Callable[[HTTPError], bytes] = error_body) -> "Direct":
    """The body handler a direct route returns (``http.protocol``): ``records(body)`` makes
    the encoded records (any exception: False, the ASGI way answers the request), which are
    queued to the journal; once durable, ``respond`` with ``success(request_id, count)``, or
    a 503 if the journal cannot take them; then the request is counted and logged like
    ``run_endpoint`` does."""
    def with_body(body: bytes, respond: "Respond") -> bool:
        try:
            items = records(body)
        except Exception:  # noqa: BLE001 - the ASGI way answers it
            return False
        rid = request_id(headers)
        n = len(items)

        def answer(status: int, payload: bytes, extra: Mapping[str, str] | None = None) -> None:
            respond(status, payload, extra)
            gw.observe_request(route, method, status, started, request_id=rid, tenant=tenant, stream=stream)

        def durable(fut: "asyncio.Future[tuple[int, int]]") -> None:
            try:
                gw.accepted(fut, n, stream)
            except HTTPError as e:
                answer(e.status, render_error(e), e.headers)
            except BaseException:  # noqa: BLE001 - the journal settles every future it is given
                log.exception("unhandled error", path=route, request_id=rid)
                answer(500, INTERNAL_ERROR)
            else:
                answer(*success(rid, n))

        try:
            fut = gw.accept_soon(items)
        except HTTPError as e:  # the journal is full (counted as rejected once, here)
            answer(e.status, render_error(e), e.headers)
            return True
        fut.add_done_callback(durable)
        return True

    return with_body
