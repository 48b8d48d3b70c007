"""pino / nestjs-pino records → rows of the ``logs`` table.

A record (one element of a log file, see docs/logs.md) keeps its shape in the journal; the
``logs`` sink calls ``normalise`` on each. Field mapping:

- ``time``: ``time`` (epoch ms, or an ISO string), else ``timestamp`` (ISO, or epoch ms),
  else the caller's ``fallback`` (the record's ``event_time``/``received_at``): never "now",
  so a re-delivered record keeps its primary key ``(time, id)``.
- ``level``: pino numbers become names (10 trace, 20 debug, 30 info, 40 warn, 50 error,
  60 fatal; other numbers their digits); strings are kept. ``severity`` is the number
  (strings mapped back: ``log``→30, ``warning``→40, ``verbose``→10; unknown → null), which
  the API's minimum-level filter compares.
- ``method``, ``url``, ``query`` (the HTTP query object), ``params``, ``headers``,
  ``remote_address``, ``remote_port``: from ``req`` (top-level fallbacks for
  ``method``/``url``/``headers``).
- ``message``: ``message`` (nestjs-pino's ``messageKey``) or ``msg`` (pino's default).
- ``auth_user_id`` (``authUserId``; text), ``pid``, ``hostname``, ``context``,
  ``processing_time_ms``, ``cache_hit``, ``document_count``: as named (camelCase in records).
- ``raw``: the whole record without the gateway's ``_file`` provenance; ``file``/``line``
  come from that provenance.

Headers named in ``REDACTED`` (any case) are replaced by ``"[REDACTED]"`` in ``headers`` and
in ``raw`` (``req.headers``, ``res.headers``, top-level ``headers``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sluiceway.record import UTC, parse_time

LEVELS = {10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal"}
SEVERITY = {name: n for n, name in LEVELS.items()} | {"log": 30, "warning": 40, "verbose": 10, "critical": 60}
REDACTED = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization"})
MASK = "[REDACTED]"
PROVENANCE = "_file"  # the key collectors add to each record's payload
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def level_name(level: Any) -> str | None:
    if type(level) is int:
        return LEVELS.get(level) or str(level)
    if isinstance(level, bool) or level is None:
        return None
    if isinstance(level, (int, float)):
        return LEVELS.get(int(level), str(int(level)))
    return str(level)


def severity(level: Any) -> int | None:
    """The numeric level (pino's scale) of a level value, or None when unknown."""
    if type(level) is int:
        return level
    if isinstance(level, bool) or level is None:
        return None
    if isinstance(level, (int, float)):
        return int(level)
    text = str(level).strip().lower()
    if text.isdigit():
        return int(text)
    return SEVERITY.get(text)


def _from_value(v: Any) -> datetime | None:
    try:
        if type(v) is int:  # the common case: pino's epoch milliseconds
            return _EPOCH + timedelta(milliseconds=v)
        if isinstance(v, bool) or v is None:
            return None
        if isinstance(v, (int, float)):
            return _EPOCH + timedelta(milliseconds=v)
        if isinstance(v, str) and v:
            return parse_time(v)
    except (ValueError, OverflowError):
        return None
    return None


def record_time(record: dict[str, Any]) -> datetime | None:
    """The record's own time: ``time``, else ``timestamp``; None if neither is usable."""
    return _from_value(record.get("time")) or _from_value(record.get("timestamp"))


def redact_headers(headers: Any) -> Any:
    """``headers`` with secret values masked: a copy if any is secret, else ``headers`` itself."""
    if not isinstance(headers, dict):
        return headers
    for k in headers:
        if isinstance(k, str) and k.lower() in REDACTED:
            return {k: (MASK if isinstance(k, str) and k.lower() in REDACTED else v) for k, v in headers.items()}
    return headers


def _redact_in(record: dict[str, Any]) -> None:
    """Mask secret headers of ``record``, a copy of its own at the top level: nested parts
    that change are replaced by copies, so what it shares with its original stays as it was."""
    for part in ("req", "res", "request", "response"):
        sub = record.get(part)
        if isinstance(sub, dict) and "headers" in sub:
            headers = sub["headers"]
            masked = redact_headers(headers)
            if masked is not headers:
                record[part] = {**sub, "headers": masked}
    if "headers" in record:
        record["headers"] = redact_headers(record["headers"])


def _int(v: Any) -> int | None:
    if type(v) is int:
        return v if -2**31 <= v < 2**31 else None
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if -2**31 <= v < 2**31 else None
    if isinstance(v, float) and v.is_integer():
        return _int(int(v))
    if isinstance(v, str) and v.strip().lstrip("-").isdigit():
        return _int(int(v))
    return None


def _float(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    try:
        return float(v) if isinstance(v, str) else None
    except ValueError:
        return None


def _text(v: Any) -> str | None:
    if type(v) is str:
        return v
    if v is None or isinstance(v, (dict, list)):
        return None
    return str(v)


def _obj(v: Any) -> Any:
    return v if isinstance(v, (dict, list)) else None


def normalise(payload: dict[str, Any], *, id: str, tenant: str, fallback: datetime | str) -> dict[str, Any]:
    """One ``logs`` row (column → value) from a record's payload. ``fallback`` (a time, or
    RFC 3339 text parsed only when needed) is the row's time when the record has none.

    ``payload`` is not changed; the row may share unchanged parts of it (``query``,
    ``params``, headers without secrets, nested values of ``raw``)."""
    record = dict(payload)  # becomes ``raw``: the record without provenance, secrets masked
    prov = record.pop(PROVENANCE, None)
    if not isinstance(prov, dict):
        prov = {}
    _redact_in(record)
    req = record.get("req")
    if not isinstance(req, dict):
        req = {}
    level = record.get("level")
    message = record.get("message", record.get("msg"))
    cache_hit = record.get("cacheHit")
    headers = req["headers"] if "headers" in req else record.get("headers")  # both already masked
    time = record_time(record)
    if time is None:
        time = parse_time(fallback)
    return {
        "tenant": tenant,
        "time": time,
        "id": id,
        "level": level_name(level),
        "severity": severity(level),
        "method": _text(req.get("method", record.get("method"))),
        "url": _text(req.get("url", record.get("url"))),
        "query": _obj(req.get("query")),
        "headers": _obj(headers),
        "context": _text(record.get("context")),
        "message": message if isinstance(message, str) else _text(message),
        "auth_user_id": _text(record.get("authUserId")),
        "pid": _int(record.get("pid")),
        "hostname": _text(record.get("hostname")),
        "remote_address": _text(req.get("remoteAddress")),
        "remote_port": _int(req.get("remotePort")),
        "processing_time_ms": _float(record.get("processingTimeMs")),
        "cache_hit": cache_hit if isinstance(cache_hit, bool) else None,
        "document_count": _int(record.get("documentCount")),
        "params": _obj(req.get("params")),
        "file": _text(prov.get("key")),
        "line": _int(prov.get("line")),
        "raw": record,
    }
