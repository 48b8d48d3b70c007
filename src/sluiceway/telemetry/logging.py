"""Structured logs: JSON lines (default when not a TTY) or human-readable on a TTY.

Application logs go through structlog. The access log (one line per request) is formatted by
``AccessLog`` itself, cheaply, and written in small batches (every 20 ms at most), to keep
the hot path cheap and free of long pauses.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any, TextIO

import orjson
import structlog

from sluiceway.record import now_rfc3339

_dumps = orjson.dumps
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
    """One line per request: time, request id, method, route, status, tenant, stream, latency.

    Each line is formatted when it is logged (about a microsecond: %-formatting,
    ``now_rfc3339`` for the time, orjson only for the strings that may need escaping), so no request pays for a block of others. Lines are written together, at most
    ``interval`` seconds after the first of them (or at ``MAX_LINES``); an idle gateway does
    not wake up for them.
    """

    MAX_LINES = 1024

    def __init__(self, fmt: str = "auto", stream: TextIO | None = None, enabled: bool = True):
        self.stream = stream or sys.stderr
        self.json = use_json(fmt, self.stream)
        self.enabled = enabled
        self._buf: list[bytes] = []
        self._pending = asyncio.Event()

    def log(self, method: str, path: str, status: int, seconds: float, request_id: str | None,
            tenant: str | None, stream: str | None) -> None:
        """Format one line and queue it for the next write."""
        if not self.enabled:
            return
        ts = now_rfc3339()[:-4].encode() + b"Z"  # to the millisecond
        if self.json:
            line = (b'{"timestamp":"%s","level":"info","event":"request","request_id":%s,"method":%s,"path":%s,'
                    b'"status":%d,"tenant":%s,"stream":%s,"latency_ms":%.3f}'
                    % (ts, _dumps(request_id), _dumps(method), _dumps(path), status, _dumps(tenant),
                       _dumps(stream), seconds * 1000))
        else:
            line = (f"{ts.decode()} {method} {path} {status} {round(seconds * 1000, 3)}ms tenant={tenant or '-'} "
                    f"stream={stream or '-'} request_id={request_id or '-'}").encode()
        buf = self._buf
        if not buf:
            self._pending.set()
        buf.append(line)
        if len(buf) >= self.MAX_LINES:
            self.flush()

    def flush(self) -> None:
        if not self._buf:
            return
        lines, self._buf = self._buf, []
        data = b"\n".join(lines) + b"\n"
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

    async def run(self, interval: float = 0.02) -> None:
        try:
            while True:
                await self._pending.wait()
                await asyncio.sleep(interval)
                self._pending.clear()
                self.flush()
        finally:
            self.flush()
