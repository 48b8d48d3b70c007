"""Tiny raw-ASGI response helpers for the hot path (no Request/Response objects)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from sluiceway.errors import HTTPError
from sluiceway.record import dumps_exact

_JSON = (b"content-type", b"application/json")


def dumps(body: Any) -> bytes:
    """``body`` as JSON. Stored payloads are kept as sent, so they may hold integers past 64
    bits, which orjson refuses: ``record.dumps_exact`` writes those with the standard library."""
    return dumps_exact(body)


async def send_json(send: Any, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
    data = body if isinstance(body, bytes) else dumps(body)
    raw = [_JSON, (b"content-length", str(len(data)).encode())]
    if headers:
        raw.extend((k.lower().encode(), v.encode()) for k, v in headers.items())
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


def error_body(err: HTTPError) -> bytes:
    return orjson.dumps({"error": err.code, "detail": err.detail})

