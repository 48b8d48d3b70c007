"""A Play review (``reviews.list`` shape) → ``FeedbackItem``.

The API gives no creation time: ``userComment.lastModified`` is the only one, so it is both
``created_at`` and ``updated_at`` (an edited review moves both forward). ``external_id`` is
``reviewId``; the developer's reply and the device/app details go to ``metadata``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sluiceway.feedback.item import FeedbackItem, from_epoch, iso


def timestamp(value: Any) -> datetime | None:
    """``{"seconds": "1715328000", "nanos": 713000000}`` → UTC datetime (to the microsecond)."""
    if not isinstance(value, dict) or value.get("seconds") in (None, ""):
        return None
    t = from_epoch(int(value["seconds"]))
    return t + timedelta(microseconds=int(value.get("nanos") or 0) // 1000) if t else None


def review_item(review: dict[str, Any], instance: str) -> FeedbackItem | None:
    user: dict[str, Any] = {}
    dev: dict[str, Any] = {}
    for comment in review.get("comments") or []:
        user = user or comment.get("userComment") or {}
        dev = dev or comment.get("developerComment") or {}
    if not user:
        return None  # nothing the user wrote (the API lists only reviews with text)
    when = timestamp(user.get("lastModified"))
    if not review.get("reviewId") or when is None:
        raise ValueError("review without reviewId or userComment.lastModified")
    meta = {
        "device": user.get("device"),
        "android_os_version": user.get("androidOsVersion"),
        "app_version_code": user.get("appVersionCode"),
        "app_version_name": user.get("appVersionName"),
        "thumbs_up": user.get("thumbsUpCount"),
        "thumbs_down": user.get("thumbsDownCount"),
        "device_metadata": user.get("deviceMetadata"),
        "original_text": user.get("originalText"),
        "developer_reply": {"text": dev.get("text"), "last_modified": iso(timestamp(dev.get("lastModified")))}
        if dev else None,
    }
    return FeedbackItem(
        source_type="playstore", source_instance=instance, external_id=str(review["reviewId"]),
        body=user.get("text"), created_at=when, updated_at=when, author=review.get("authorName"),
        rating=user.get("starRating"), language=user.get("reviewerLanguage"),
        metadata={k: v for k, v in meta.items() if v is not None})
