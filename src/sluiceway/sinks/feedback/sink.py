"""Upserts feedback items (records of stream ``feedback``, payload = ``FeedbackItem``) into the
``feedback`` table of a store, on the identity ``(tenant, source_type, source_instance,
external_id)``: new items are inserted, edited ones updated, unchanged ones write nothing.
So a re-sent batch, a replayed webhook or a re-fetched page changes nothing.

Connection handling and failure classification are the ``sql`` sink's.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Literal

from sluiceway.errors import RejectedRecords
from sluiceway.feedback.item import STREAM
from sluiceway.record import parse_time
from sluiceway.sinks.base import Batch
from sluiceway.sinks.sql.sink import SqlSink, SqlSinkConfig

if TYPE_CHECKING:
    from sluiceway.store import Store


class FeedbackSinkConfig(SqlSinkConfig):
    type: Literal["feedback"] = "feedback"  # type: ignore[assignment]
    streams: list[str] = [STREAM]


class FeedbackSink(SqlSink):
    async def write(self, store: "Store", batch: Batch) -> None:
        items, rejected = [], {}
        for i, d in enumerate(batch.docs):
            if d["stream"] != STREAM:
                continue
            why = check_payload(d.get("payload"))
            if why:
                rejected[i] = f"not a feedback item: {why}"
            else:
                items.append((d["tenant"], d["payload"]))
        if items:
            # fetched_at: when the gateway received the item (the batch's last record)
            await store.upsert_feedback(items, fetched_at=parse_time(batch.docs[-1]["received_at"]))
        if rejected:
            raise RejectedRecords(rejected)


def check_payload(p: Any) -> str | None:
    """Why ``p`` is not a storable feedback item (None if it is). Records in stream
    ``feedback`` may come from anyone who can post to the generic ingest API."""
    if not isinstance(p, dict):
        return "payload is not an object"
    for k in ("id", "source_type", "external_id", "created_at"):
        if not isinstance(p.get(k), (str, int)) or p.get(k) in ("", None):
            return f"missing {k}"
    try:
        uuid.UUID(str(p["id"]))
        parse_time(p["created_at"])
        if p.get("updated_at"):
            parse_time(p["updated_at"])
    except (ValueError, TypeError) as e:
        return str(e)
    if p.get("rating") is not None and not isinstance(p["rating"], int):
        return "rating is not an integer"
    if p.get("metadata") is not None and not isinstance(p["metadata"], dict):
        return "metadata is not an object"
    return None
