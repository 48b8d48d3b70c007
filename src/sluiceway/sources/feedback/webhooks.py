"""Signed webhooks into the journal: Intercom's, and a generic HMAC one.

``POST /webhook/intercom/{tenant}``: the raw body's ``X-Hub-Signature: sha1=<hex>`` must be
the HMAC-SHA1 of the bytes with the client secret of one of the tenant's Intercom sources
(checked in constant time, before parsing); missing or wrong → 401; unknown tenant, or a
tenant without an Intercom source → 404. ``ping`` and non-conversation topics → 200, nothing
stored. A notification is accepted once per id (``Idempotency``): a redelivery gets the
first answer and stores nothing new; and the feedback upsert makes even a new id for the same
conversation state change nothing.

``POST /webhook/{source}/{tenant}``: a ``webhook`` source of that tenant and name; the body's
HMAC (``algorithm``, ``header``, ``prefix`` from its settings) with its ``secret``. The body is
one item object or an array of them: ``external_id`` (or ``id``), ``body`` (or ``text``),
``author``, ``rating``, ``language``, ``created_at`` (RFC 3339 or epoch seconds; default: now),
``updated_at``; other keys go to ``metadata``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from sluiceway.errors import BadRequest
from sluiceway.feedback.item import FeedbackItem, from_epoch
from sluiceway.record import TooDeep, loads_payload, parse_time, utcnow

# A webhook's objects end up this far inside a feedback record's payload (its items' metadata).
WEBHOOK_WITHIN = 2
KNOWN = {"external_id", "id", "body", "text", "author", "rating", "language", "created_at", "updated_at", "metadata"}


def check_hmac(algorithm: str, secret: str, raw: bytes, header: str | None, prefix: str) -> bool:
    if not header:
        return False
    expected = prefix + hmac.new(secret.encode(), raw, getattr(hashlib, algorithm)).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode("latin-1", "replace"))


def parse_json(raw: bytes) -> Any:
    try:
        return loads_payload(raw, within=WEBHOOK_WITHIN)
    except TooDeep as e:
        raise BadRequest(f"body {e}") from None
    except json.JSONDecodeError as e:
        raise BadRequest(f"body is not valid JSON: line {e.lineno}, column {e.colno}: {e.msg}") from None


def generic_items(doc: Any, instance: str) -> list[FeedbackItem]:
    docs = doc if isinstance(doc, list) else [doc]
    if not docs:
        raise BadRequest("empty array: send at least one item")
    out = []
    for i, d in enumerate(docs):
        where = f"item {i}: " if isinstance(doc, list) else ""
        if not isinstance(d, dict):
            raise BadRequest(f"{where}not a JSON object")
        ext = d.get("external_id", d.get("id"))
        if ext in (None, "") or not isinstance(ext, (str, int)):
            raise BadRequest(f"{where}external_id (or id) is required")
        rating = d.get("rating")
        if rating is not None and (not isinstance(rating, int) or isinstance(rating, bool)):
            raise BadRequest(f"{where}rating must be an integer")
        body = d.get("body", d.get("text"))
        if body is not None and not isinstance(body, str):
            raise BadRequest(f"{where}body must be a string")
        meta = d.get("metadata") if isinstance(d.get("metadata"), dict) else {}
        meta = {**meta, **{k: v for k, v in d.items() if k not in KNOWN}}
        out.append(FeedbackItem(
            source_type="webhook", source_instance=instance, external_id=str(ext), body=body,
            created_at=_time(d.get("created_at"), f"{where}created_at") or utcnow(),
            updated_at=_time(d.get("updated_at"), f"{where}updated_at"),
            author=str(d["author"]) if d.get("author") is not None else None, rating=rating,
            language=str(d["language"]) if d.get("language") is not None else None, metadata=meta))
    return out


def _time(v: Any, what: str) -> datetime | None:
    if v in (None, ""):
        return None
    try:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return from_epoch(v)
        if isinstance(v, str):
            return parse_time(v)
    except (ValueError, OverflowError, OSError):
        pass
    raise BadRequest(f"{what} must be an RFC 3339 time or epoch seconds, got {v!r}")


