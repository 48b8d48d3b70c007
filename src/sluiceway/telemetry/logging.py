"""Structured logs: JSON lines (default when not a TTY) or human-readable on a TTY.

Application logs go through structlog. The access log (one line per request) is written
by ``AccessLog`` directly with orjson into a buffer flushed every 100 ms, to keep the hot
path cheap.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from datetime import datetime, timezone
from typing import Any, TextIO

import orjson
import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def use_json(fmt: str, stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    return fmt == "json" or (fmt == "auto" and not stream.isatty())


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    as_json = use_json(fmt)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info if as_json else structlog.dev.set_exc_info,
    ]
    renderer = structlog.processors.JSONRenderer(serializer=lambda o, **_: orjson.dumps(o, default=str).decode()) \
        if as_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=_LEVELS[level] if level != "debug" else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).disabled = True
    logging.getLogger("alembic").setLevel(logging.WARNING)


def get_logger(name: str = "sluiceway") -> Any:
    return structlog.get_logger(name)


class AccessLog:
    """One line per request: time, request id, method, route, status, tenant, stream, latency."""

    def __init__(self, fmt: str = "auto", stream: TextIO | None = None, enabled: bool = True):
        self.stream = stream or sys.stderr
        self.json = use_json(fmt, self.stream)
        self.enabled = enabled
        self._buf: list[tuple[Any, ...]] = []
        self._task: asyncio.Task[None] | None = None

    def log(self, method: str, path: str, status: int, seconds: float, request_id: str | None,
            tenant: str | None, stream: str | None) -> None:
        """Queue one line; formatting happens in ``flush`` (every 100 ms), off the request."""
        if self.enabled:
            self._buf.append((time.time(), method, path, status, seconds, request_id, tenant, stream))
            if len(self._buf) >= 4096:
                self.flush()

    def _format(self, entry: tuple[Any, ...]) -> bytes:
        at, method, path, status, seconds, request_id, tenant, stream = entry
        ts = datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        ms = round(seconds * 1000, 3)
        if self.json:
            return orjson.dumps({"timestamp": ts, "level": "info", "event": "request", "request_id": request_id,
                                 "method": method, "path": path, "status": status, "tenant": tenant,
                                 "stream": stream, "latency_ms": ms})
        return (f"{ts} {method} {path} {status} {ms}ms tenant={tenant or '-'} stream={stream or '-'} "
                f"request_id={request_id or '-'}").encode()

    def flush(self) -> None:
        if not self._buf:
            return
        entries, self._buf = self._buf, []
        data = b"\n".join(map(self._format, entries)) + b"\n"
        try:
            out = getattr(self.stream, "buffer", None)
            if out is not None:
                out.write(data)
                out.flush()
            else:
                self.stream.write(data.decode())
                self.stream.flush()
        except (OSError, ValueError):
            pass

    async def run(self, interval: float = 0.1) -> None:
        try:
            while True:
                await asyncio.sleep(interval)
                self.flush()
        finally:
            self.flush()
