"""A Discourse post (``/posts.json`` ``latest_posts`` shape) → ``FeedbackItem``.

``body`` is the Markdown ``raw``, or the ``cooked`` HTML as plain text when ``raw`` is absent.
"""

from __future__ import annotations

from typing import Any

from sluiceway.feedback.item import FeedbackItem
from sluiceway.feedback.platform import parse_iso
from sluiceway.feedback.text import html_to_text


def post_item(post: dict[str, Any], base_url: str) -> FeedbackItem:
    created = parse_iso(post.get("created_at"))
    if not isinstance(post.get("id"), int) or created is None:
        raise ValueError("post without an integer id or created_at")
    slug, topic, number = post.get("topic_slug"), post.get("topic_id"), post.get("post_number")
    meta = {
        "topic_id": topic, "topic_title": post.get("topic_title"), "topic_slug": slug,
        "post_number": number, "category_id": post.get("category_id"),
        "reply_to_post_number": post.get("reply_to_post_number"), "user_id": post.get("user_id"),
        "url": f"{base_url}/t/{slug}/{topic}/{number}" if slug and topic and number else None,
    }
    raw = post.get("raw")
    return FeedbackItem(
        source_type="discourse", source_instance=base_url, external_id=str(post["id"]),
        body=raw if raw is not None else html_to_text(post.get("cooked")), created_at=created,
        updated_at=parse_iso(post.get("updated_at")), author=post.get("username"),
        metadata={k: v for k, v in meta.items() if v is not None})
