"""Query parameters of the read and admin APIs: parsed and checked the same way everywhere.

A parameter given empty (``?since=``) is not absent: a typed one (a time, a number, a UUID, a
tenant id, a cursor) is then a 400 naming it, like any other bad value. Only plain text filters
(``q``, ``hostname``, ``source_type``, …) take an empty value as "no filter". ``http.openapi``
states the same rules in the OpenAPI document.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qs

import uuid_utils

from sluiceway.errors import BadRequest
from sluiceway.record import parse_time


def query_params(qs: str) -> dict[str, str]:
    """The query string as a dict: the last value of a repeated name wins; empty values are kept.
    A NUL character (``%00``) is a 400: no parameter takes one, and PostgreSQL refuses it in text."""
    q = {k: v[-1] for k, v in parse_qs(qs, keep_blank_values=True).items()}
    for k, v in q.items():
        if "\x00" in k or "\x00" in v:
            raise BadRequest(f"query parameter {k.replace(chr(0), '%00')!r} contains a NUL character (%00)")
    return q


def time_param(q: dict[str, str], name: str) -> datetime | None:
    v = q.get(name)
    if v is None:
        return None
    try:
        return parse_time(v)
    except ValueError:
        raise BadRequest(f"{name} must be an RFC 3339 time such as 2026-01-31T00:00:00Z, got {v!r}") from None


def int_param(q: dict[str, str], name: str, default: int | None = None, lo: int | None = None,
              hi: int | None = None) -> int | None:
    v = q.get(name)
    if v is None:
        return default
    try:
        n = int(v)
    except ValueError:
        n = None
    if n is None or (lo is not None and n < lo) or (hi is not None and n > hi):
        bounds = f" between {lo} and {hi}" if lo is not None and hi is not None else ""
        raise BadRequest(f"{name} must be an integer{bounds}, got {v!r}")
    return n


def limit_param(q: dict[str, str]) -> int:
    return int_param(q, "limit", 100, 1, 1000)  # type: ignore[return-value]


def text_param(q: dict[str, str]) -> str | None:
    text = q.get("q") or None
    if text is not None and len(text) > 256:
        raise BadRequest("q must be at most 256 characters")
    return text


def is_uuid(v: str) -> bool:
    try:
        uuid_utils.UUID(v)
    except ValueError:
        return False
    return True
