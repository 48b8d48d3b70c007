"""FastAPI + pydantic + SQLite baseline: the usual way a small collector is written.

``POST /v1/streams/{stream}/events`` takes one JSON event as a pydantic body model, inserts
one row into a file-backed SQLite database and commits before answering 202. The database uses
SQLite's defaults (rollback journal ``DELETE``, ``synchronous=FULL``), so every request pays
for its own commit. The handler is a plain ``def``, which FastAPI runs in its thread pool, as
such collectors usually do with the blocking ``sqlite3`` module (one connection per pool
thread). ``BENCH_FASTAPI_HANDLER=async`` registers an ``async def`` handler instead, which runs
the blocking insert + commit on the event loop with one shared connection (an anti-pattern,
but measured here at about the same rate with a shorter tail). ``GET /health`` answers 200.

The database path comes from ``BENCH_SQLITE_PATH`` (default ``./fastapi_baseline.db``).

Run (this is what ``bench/run.py`` does)::

    BENCH_SQLITE_PATH=/tmp/x.db uvicorn fastapi_sqlite:app --app-dir bench/baselines \
        --host 127.0.0.1 --port 8002 --loop uvloop --http httptools --no-access-log \
        --log-level warning --workers 1
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import uuid
from datetime import datetime, timezone
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

DB_PATH = os.environ.get("BENCH_SQLITE_PATH", "fastapi_baseline.db")

_local = threading.local()


def _connect() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(DB_PATH)
        _local.conn = conn
    return conn


def _init_db() -> None:
    conn = sqlite3.connect(DB_PATH)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS events ("
        " id TEXT PRIMARY KEY, stream TEXT NOT NULL, received_at TEXT NOT NULL,"
        " event TEXT NOT NULL, timestamp TEXT, payload TEXT NOT NULL)"
    )
    conn.commit()
    conn.close()


class Event(BaseModel):
    event: str
    timestamp: datetime
    user_id: str | None = None
    session_id: str | None = None
    app: dict[str, Any] = {}
    props: dict[str, Any] = {}


_init_db()
app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


HANDLER = os.environ.get("BENCH_FASTAPI_HANDLER", "sync")


def _insert(stream: str, event: Event) -> dict[str, Any]:
    request_id = str(uuid.uuid4())
    conn = _connect()
    conn.execute(
        "INSERT INTO events (id, stream, received_at, event, timestamp, payload)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            request_id,
            stream,
            datetime.now(timezone.utc).isoformat(),
            event.event,
            event.timestamp.isoformat(),
            json.dumps(event.model_dump(mode="json")),
        ),
    )
    conn.commit()
    return {"request_id": request_id, "accepted": 1}


if HANDLER == "async":

    @app.post("/v1/streams/{stream}/events", status_code=202)
    async def ingest_async(stream: str, event: Event) -> dict[str, Any]:
        return _insert(stream, event)

else:

    @app.post("/v1/streams/{stream}/events", status_code=202)
    def ingest(stream: str, event: Event) -> dict[str, Any]:
        return _insert(stream, event)
