"""Intercom conversations: ``POST {base_url}/conversations/search``.

Body ``{"query": {"field": "updated_at", "operator": ">", "value": <mark − 1>},
"pagination": {"per_page": N, "starting_after": …}}``; pages follow
``pages.next.starting_after`` (the last page has no ``next``). Headers ``Authorization:
Bearer``, ``Accept: application/json``, ``Intercom-Version`` (settings ``api_version``).

Order: the reference documents no sort for search, so results are taken as unordered and the
cursor — ``{"updated_at": <epoch>, "ids_at": [...]}``, a ``HighWater`` — is given only with
the last page. Search has no ``>=``: asking ``> mark − 1`` and dropping what the mark already
holds gives every conversation (and every update, which moves ``updated_at``) once. A
conversation updated while a run pages may move to a page already read; so the mark never
goes past the first response's ``Date`` (the search's own clock) less a second: what changed
during the run is asked for again next run (upserts make the repeat harmless).
429 → wait until ``X-RateLimit-Reset`` (unix seconds; ``Retry-After`` if that is missing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from sluiceway.feedback.platform import PlatformConnector, json_object, map_items, secret
from sluiceway.feedback.pull import Page, PullError
from sluiceway.feedback.watermark import HighWater
from sluiceway.sources.intercom.config import IntercomSecrets, IntercomSettings
from sluiceway.sources.intercom.conversations import conversation_item

KEY = "updated_at"
CLOCK_MARGIN = 60  # without a Date header, our clock less this stands in for the server's


class IntercomConnector(PlatformConnector):
    type = "intercom"
    Settings = IntercomSettings
    Secrets = IntercomSecrets
    reset_header = "x-ratelimit-reset"  # 429: unix seconds when the window reopens

    def instance(self) -> str:
        return self.settings.workspace

    def server_now(self, response: httpx.Response) -> int:
        try:
            return int(parsedate_to_datetime(response.headers["date"]).timestamp())
        except (KeyError, TypeError, ValueError):
            return int(self.now().timestamp()) - CLOCK_MARGIN

    async def pages(self, cursor: dict[str, Any]) -> AsyncIterator[Page]:
        url = f"{self.settings.base_url}/conversations/search"
        headers = {"Authorization": f"Bearer {secret(self.secrets.access_token)}",
                   "Accept": "application/json", "Intercom-Version": self.settings.api_version}
        old = HighWater.from_cursor(cursor, KEY, int)
        query = {"field": KEY, "operator": ">", "value": old.at - 1 if old.at is not None else 0}
        seen, cap, after = HighWater(), None, None
        while True:
            pagination: dict[str, Any] = {"per_page": self.settings.per_page}
            if after:
                pagination["starting_after"] = after
            response = await self.post(url, json={"query": query, "pagination": pagination}, headers=headers)
            cap = self.server_now(response) - 1 if cap is None else cap
            body = json_object(response)
            items = []
            for item in map_items(body.get("conversations") or [], conversation_item, self.instance()):
                at = int((item.updated_at or item.created_at).timestamp())
                if old.is_new(at, item.external_id):
                    items.append(item)
                    if at <= cap:
                        seen.add(at, item.external_id)
            nxt = ((body.get("pages") or {}).get("next") or {}).get("starting_after")
            if not nxt:
                yield Page(items, old.merged(seen).to_cursor(KEY))
                return
            if nxt == after:
                raise PullError(f"{url} returned the same starting_after twice")
            after = nxt
            yield Page(items)
