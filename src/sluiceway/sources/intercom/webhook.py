"""Intercom webhook notifications: signature check and notification → ``FeedbackItem``.

A notification (``{"type": "notification_event", "id", "topic", "data": {"item": …}}``) for a
conversation topic carries the conversation in the 2.x shape, so it maps through the puller's
``conversation_item``: same ``source_type``, ``source_instance`` (pass the source's
``workspace`` setting) and ``external_id``, and a push and a later pull of the same
conversation are one item. ``ping``, topics about other objects (contacts, users, …) and
``conversation.deleted`` (nothing is deleted from the store) give ``None``; a conversation
without an id or ``created_at`` raises ``ValueError`` (answer 400).

Signature: ``X-Hub-Signature: sha1=<hex>`` = HMAC-SHA1 of the raw body keyed with the app's
``client_secret``; check it before parsing the JSON.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from sluiceway.feedback.item import FeedbackItem
from sluiceway.sources.intercom.conversations import conversation_item

HEADER = "X-Hub-Signature"


def signature(secret: str, raw_body: bytes) -> str:
    return "sha1=" + hmac.new(secret.encode(), raw_body, hashlib.sha1).hexdigest()


def verify_signature(secret: str, raw_body: bytes, header: str | None) -> bool:
    """True when ``header`` is ``sha1=`` + the HMAC-SHA1 of ``raw_body`` (constant-time compare)."""
    if not secret or not header:
        return False
    given = header.strip().lower().encode("utf-8", "replace")  # hex digits in either case
    return hmac.compare_digest(signature(secret, raw_body).encode(), given)


def item_from_notification(payload: dict[str, Any], instance: str = "") -> FeedbackItem | None:
    topic = payload.get("topic")
    if not isinstance(topic, str) or topic == "ping" or topic == "conversation.deleted":
        return None
    data = payload.get("data")
    item = data.get("item") if isinstance(data, dict) else None
    if not isinstance(item, dict) or item.get("type") != "conversation":
        return None
    return conversation_item(item, instance)
