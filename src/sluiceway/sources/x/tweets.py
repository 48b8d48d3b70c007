"""A post (tweet, API v2 shape) → ``FeedbackItem``.

An edit on X is a new post id listed in ``edit_history_tweet_ids`` after the original's, so
``external_id`` is the *first* id of that list: every version updates the same item.
``created_at`` is the original's time (from its snowflake id), ``updated_at`` this version's
``created_at``; the version's id is ``metadata.tweet_id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sluiceway.feedback.item import FeedbackItem, from_epoch
from sluiceway.feedback.platform import parse_iso

TWEPOCH_MS = 1288834974657


def snowflake_time(post_id: str) -> datetime:
    return from_epoch(((int(post_id) >> 22) + TWEPOCH_MS) / 1000)  # type: ignore[return-value]


def tweet_item(tweet: dict[str, Any], instance: str) -> FeedbackItem:
    post_id = str(tweet["id"])
    history = [str(i) for i in tweet.get("edit_history_tweet_ids") or []] or [post_id]
    original = history[0]
    return FeedbackItem(
        source_type="x", source_instance=instance, external_id=original, body=tweet.get("text"),
        created_at=snowflake_time(original), updated_at=parse_iso(tweet.get("created_at")) or snowflake_time(post_id),
        author=tweet.get("author_id"), language=tweet.get("lang"),
        metadata={"tweet_id": post_id, "edit_history_tweet_ids": history,
                  "url": f"https://x.com/i/web/status/{post_id}"})
