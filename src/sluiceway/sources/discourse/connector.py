"""Discourse latest posts: ``GET {base_url}/posts.json``, newest first.

Pages go back with ``before=<smallest id seen>`` until a page reaches the cursor's post id or
comes back empty (the first run reads the forum's whole history). Headers ``Api-Key`` and
``Api-Username`` when a key is set (private forums), ``Accept: application/json``.

Cursor: ``{"last_post_id": <highest id seen>}``, given with the run's last page. Limitation:
``/posts.json`` lists posts by id, so an edit to an older post (``updated_at`` moves) is not
seen by this endpoint; the item keeps the text it had when first pulled.
429 → ``Retry-After`` seconds, else the body's ``extras.wait_seconds``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from sluiceway.feedback.platform import PlatformConnector, map_items, secret
from sluiceway.feedback.pull import Page, PullError
from sluiceway.sources.discourse.config import DiscourseSecrets, DiscourseSettings
from sluiceway.sources.discourse.posts import post_item


class DiscourseConnector(PlatformConnector):
    type = "discourse"
    Settings = DiscourseSettings
    Secrets = DiscourseSecrets

    def instance(self) -> str:
        return self.settings.base_url

    def rate_limit_wait(self, response: httpx.Response) -> float | None:
        wait = super().rate_limit_wait(response)  # Retry-After
        if wait is None:
            try:
                wait = max(0.0, float(response.json()["extras"]["wait_seconds"]))
            except (ValueError, KeyError, TypeError):
                return None
        return wait

    def headers(self) -> dict[str, str]:
        key, user = secret(self.secrets.api_key), self.settings.api_username
        if bool(key) != bool(user):
            raise PullError("discourse: api_key and api_username go together (set both, or neither for a "
                            "public forum)", permanent=True)
        return {"Accept": "application/json", **({"Api-Key": key, "Api-Username": user} if key and user else {})}

    async def pages(self, cursor: dict[str, Any]) -> AsyncIterator[Page]:
        url = f"{self.settings.base_url}/posts.json"
        headers = self.headers()
        last = int(cursor.get("last_post_id") or 0)
        top, before = last, None
        while True:
            body = await self.get_json(url, params={"before": before} if before else None, headers=headers)
            posts = [p for p in body.get("latest_posts") or [] if isinstance(p, dict) and isinstance(p.get("id"), int)]
            ids = [p["id"] for p in posts]
            items = map_items([p for p in posts if p["id"] > last], post_item, self.instance())
            top = max([top, *ids])
            if not ids or min(ids) <= last + 1:
                yield Page(items, {"last_post_id": top} if top else None)
                return
            if before is not None and min(ids) >= before:
                raise PullError(f"{url}?before={before} did not go back (smallest id {min(ids)})")
            before = min(ids)
            yield Page(items)
