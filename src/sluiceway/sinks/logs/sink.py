"""Writes records of stream ``log`` (payload: one pino / nestjs-pino record, plus the
collector's ``_file`` provenance) as rows of the ``logs`` table: see ``logs.pino`` for the
mapping and ``store.logs`` for partitions and the bulk path. Inserts skip ``(time, id)``
already stored, and a row's time never depends on when it was delivered, so a re-sent batch
changes nothing. A payload that is not a JSON object is refused (dead-lettered alone).

Rows are normalised lazily, as ``store.insert_logs`` streams them into its COPY: PostgreSQL
(on its own core) stores the first rows of a batch while Python still builds the last.

Connection handling and failure classification are the ``sql`` sink's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from sluiceway.errors import RejectedRecords
from sluiceway.logs.pino import normalise
from sluiceway.sinks.base import Batch
from sluiceway.sinks.sql.sink import SqlSink, SqlSinkConfig

if TYPE_CHECKING:
    from sluiceway.store import Store

STREAM = "log"


class LogsSinkConfig(SqlSinkConfig):
    type: Literal["logs"] = "logs"  # type: ignore[assignment]
    streams: list[str] = [STREAM]


class LogsSink(SqlSink):
    async def write(self, store: "Store", batch: Batch) -> None:
        rejected: dict[int, str] = {}

        def rows() -> Iterator[dict[str, Any]]:  # lazy: the COPY sends rows as they are made
            for i, d in enumerate(batch.docs):
                payload = d.get("payload")
                if not isinstance(payload, dict):
                    rejected[i] = "not a log record: payload is not a JSON object"
                    continue
                yield normalise(payload, id=d["id"], tenant=d["tenant"],
                                fallback=d.get("event_time") or d["received_at"])

        await store.insert_logs(rows())
        if rejected:
            raise RejectedRecords(rejected)
