"""Tiny raw-ASGI response helpers for the hot path (no Request/Response objects)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import orjson

from sluiceway.errors import HTTPError

_JSON = (b"content-type", b"application/json")


def dumps(body: Any) -> bytes:
    """``body`` as JSON (orjson). Stored payloads are kept as sent, so they may hold integers
    past 64 bits, which orjson refuses: those bodies go through the standard library, with
    numbers beyond a double's range as null (as orjson writes them)."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(_finite(body), ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _finite(v: Any) -> Any:
    if type(v) is float:
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


async def send_json(send: Any, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
    data = body if isinstance(body, bytes) else dumps(body)
    raw = [_JSON, (b"content-length", str(len(data)).encode())]
    if headers:
        raw.extend((k.lower().encode(), v.encode()) for k, v in headers.items())
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


def error_body(err: HTTPError) -> bytes:
    return orjson.dumps({"error": err.code, "detail": err.detail})

