"""No-op Starlette baseline: the HTTP ceiling sluiceway is compared against.

Every POST reads the whole body (``await request.body()``) and answers 202 with a small JSON
body shaped like sluiceway's ack. Nothing is parsed, validated or stored. ``GET /health``
answers 200 so the harness can tell when the server is up. Every PUT (bench/lightfile6.py's
specimen uploads) streams the body and drops it, then answers 204: the ceiling of receiving a
large body over HTTP. Its route comes last, so POSTs are matched exactly as before.

Run (this is what ``bench/run.py`` does)::

    uvicorn noop_starlette:app --app-dir bench/baselines --host 127.0.0.1 --port 8001 \
        --loop uvloop --http httptools --no-access-log --log-level warning --workers 1
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_ACK = b'{"request_id":"00000000-0000-0000-0000-000000000000","accepted":1}'


async def ingest(request: Request) -> Response:
    await request.body()
    return Response(_ACK, status_code=202, media_type="application/json")


async def drain(request: Request) -> Response:
    async for _ in request.stream():
        pass
    return Response(status_code=204)


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/health", health, methods=["GET"]),
        Route("/{path:path}", ingest, methods=["POST"]),
        Route("/{path:path}", drain, methods=["PUT"]),
    ]
)
