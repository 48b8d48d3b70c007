"""One piece of user feedback, normalised across platforms, and its journal record.

Identity is ``(tenant, source_type, source_instance, external_id)``; ``source_instance`` is
never null (``""`` when a platform has one instance). The row id is a UUIDv5 of all four
parts, so the same external id under two tenants or two instances never collides.

Records go to stream ``feedback`` with the item as payload; the ``feedback`` sink upserts
them, the object store keeps them like any stream.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sluiceway.http.ingest import encode_events
from sluiceway.record import UTC, dumps_exact

STREAM = "feedback"
_NS = uuid.UUID("6f1d3c1e-8a51-4f0c-9c5e-2b7d1e0a9f11")  # sluiceway feedback namespace
_NS_BYTES = _NS.bytes
SOURCE_TYPES = ("playstore", "x", "discourse", "intercom", "webhook")


def feedback_id(tenant: str, source_type: str, source_instance: str, external_id: str) -> str:
    """``str(uuid.uuid5(_NS, "<tenant>\\x1f<type>\\x1f<instance>\\x1f<external id>"))``, built from the
    SHA-1 digest directly (a webhook computes one per item: without the UUID object it is a
    third of the time)."""
    name = "\x1f".join((tenant, source_type, source_instance, external_id)).encode()
    d = bytearray(hashlib.sha1(_NS_BYTES + name).digest()[:16])
    d[6] = (d[6] & 0x0F) | 0x50  # version 5
    d[8] = (d[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = d.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def iso(t: datetime | None) -> str | None:
    if t is None:
        return None
    tz = t.tzinfo
    if tz is None:
        raise ValueError(f"naive datetime {t!r}: feedback times must be tz-aware")
    if tz is not UTC:
        t = t.astimezone(UTC)
    return t.isoformat()[:-6] + "Z"  # isoformat ends with "+00:00"


def from_epoch(seconds: float | int | str | None) -> datetime | None:
    if seconds in (None, ""):
        return None
    return datetime.fromtimestamp(float(seconds), UTC)


@dataclass
class FeedbackItem:
    source_type: str
    source_instance: str
    external_id: str
    body: str | None
    created_at: datetime
    updated_at: datetime | None = None
    author: str | None = None
    rating: int | None = None
    language: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def payload(self, tenant: str) -> dict[str, Any]:
        # shallow on purpose: asdict() would deep-copy metadata, which is serialised at once
        return {"source_type": self.source_type, "source_instance": self.source_instance,
                "external_id": self.external_id, "body": self.body,
                "created_at": iso(self.created_at), "updated_at": iso(self.updated_at),
                "author": self.author, "rating": self.rating, "language": self.language,
                "metadata": self.metadata,
                "id": feedback_id(tenant, self.source_type, self.source_instance, self.external_id)}


def encode_items(items: list[FeedbackItem], *, tenant: str, source: str, received_at: str,
                 idempotency_key: str | None = None) -> list[bytes]:
    """Items → encoded records (stream ``feedback``), ``event_time`` = the item's update/creation time."""
    events = []
    for it in items:
        p = it.payload(tenant)
        events.append(({"event_time": p["updated_at"] or p["created_at"]}, dumps_exact(p)))
    return encode_events(events, tenant=tenant, stream=STREAM, source=source, received_at=received_at,
                         idempotency_key=idempotency_key)
