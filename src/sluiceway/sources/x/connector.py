"""X API v2 recent search: ``GET {base_url}/2/tweets/search/recent``.

Params: ``query`` (the source's search, also its ``source_instance``), ``max_results``,
``sort_order=recency``, ``tweet.fields=created_at,lang,author_id,edit_history_tweet_ids``,
``next_token`` for the following pages, and either ``since_id`` (the cursor) or, on the very
first run only, ``start_time`` (``YYYY-MM-DDTHH:mm:ssZ``, now − ``lookback``); the two are
never sent together. Auth: ``Authorization: Bearer <app token>``.

Cursor: ``{"since_id": meta.newest_id of the run's first page}``, given with the last page
(results are newest first: nothing is safe before the end). No ``data`` / ``result_count`` 0
→ no items, and the cursor stays. Within a run, a post met again in an older version (edits)
is skipped: the newest version was emitted first. 429 → wait until ``x-rate-limit-reset``
(unix seconds; ``Retry-After`` if that is missing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from sluiceway.feedback.platform import PlatformConnector, map_items, secret
from sluiceway.feedback.pull import Page, PullError
from sluiceway.sources.x.config import XSecrets, XSettings
from sluiceway.sources.x.tweets import tweet_item

TWEET_FIELDS = "created_at,lang,author_id,edit_history_tweet_ids"


class XConnector(PlatformConnector):
    type = "x"
    Settings = XSettings
    Secrets = XSecrets
    reset_header = "x-rate-limit-reset"  # 429: unix seconds when the window reopens

    def instance(self) -> str:
        return self.settings.query

    def start_time(self) -> str:
        return (self.now() - timedelta(seconds=self.settings.lookback)).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def pages(self, cursor: dict[str, Any]) -> AsyncIterator[Page]:
        url = f"{self.settings.base_url}/2/tweets/search/recent"
        headers = {"Authorization": f"Bearer {secret(self.secrets.bearer_token)}"}
        params: dict[str, Any] = {"query": self.settings.query, "max_results": self.settings.max_results,
                                  "sort_order": "recency", "tweet.fields": TWEET_FIELDS}
        since = cursor.get("since_id")
        if since:
            params["since_id"] = since
        else:
            params["start_time"] = self.start_time()
        newest: str | None = None
        emitted: set[str] = set()
        while True:
            body = await self.get_json(url, params=params, headers=headers)
            meta = body.get("meta") or {}
            if "next_token" not in params:
                newest = meta.get("newest_id")
            items = []
            for item in map_items(body.get("data") or [], tweet_item, self.instance()):
                if item.external_id not in emitted:
                    emitted.add(item.external_id)
                    items.append(item)
            token = meta.get("next_token")
            if not token:
                mark = newest or since
                yield Page(items, {"since_id": str(mark)} if mark else None)
                return
            if token == params.get("next_token"):
                raise PullError(f"{url} returned the same next_token twice")
            params["next_token"] = token
            yield Page(items)
