"""An Intercom conversation (REST 2.x shape, also a webhook's ``data.item``) → ``FeedbackItem``.

``external_id`` is the conversation id, ``body`` the first message (``source.body``, HTML →
text; the subject when there is no body), ``author`` the first message's author id (stable, and
present in webhook payloads too; name and email are in ``metadata.author``), ``rating`` the conversation rating when the customer gave one.
"""

from __future__ import annotations

from typing import Any

from sluiceway.feedback.item import FeedbackItem, from_epoch
from sluiceway.feedback.text import html_to_text


def _ids(listing: Any, key: str) -> list[str]:
    entries = listing.get(key) if isinstance(listing, dict) else listing
    return [str(e["id"]) for e in entries or [] if isinstance(e, dict) and e.get("id") is not None]


def conversation_item(conv: dict[str, Any], instance: str) -> FeedbackItem:
    created = from_epoch(conv.get("created_at"))
    if conv.get("id") in (None, "") or created is None:
        raise ValueError("conversation without id or created_at")
    source = conv.get("source") or {}
    author = source.get("author") or {}
    rating = conv.get("conversation_rating") or {}
    subject = html_to_text(source.get("subject")) or None
    meta = {
        "state": conv.get("state"), "open": conv.get("open"), "read": conv.get("read"),
        "priority": conv.get("priority"), "title": conv.get("title"), "subject": subject,
        "delivered_as": source.get("delivered_as"), "source_type": source.get("type"), "url": source.get("url"),
        "author": {k: author[k] for k in ("type", "id", "name", "email") if author.get(k) is not None} or None,
        "contacts": _ids(conv.get("contacts"), "contacts") or None,
        "teammates": _ids(conv.get("teammates"), "teammates") or None,
        "admin_assignee_id": conv.get("admin_assignee_id"), "team_assignee_id": conv.get("team_assignee_id"),
        "tags": [t.get("name") for t in (conv.get("tags") or {}).get("tags") or [] if isinstance(t, dict)] or None,
        "custom_attributes": conv.get("custom_attributes") or None,
        "rating_remark": rating.get("remark"),
    }
    return FeedbackItem(
        source_type="intercom", source_instance=instance, external_id=str(conv["id"]),
        body=html_to_text(source.get("body")) or subject, created_at=created,
        updated_at=from_epoch(conv.get("updated_at")),
        author=str(author["id"]) if author.get("id") not in (None, "") else None,
        rating=rating.get("rating") if isinstance(rating.get("rating"), int) else None,
        metadata={k: v for k, v in meta.items() if v is not None})
