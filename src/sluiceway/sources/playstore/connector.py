"""Google Play reviews: Android Publisher v3 ``reviews.list``.

``GET {base_url}/androidpublisher/v3/applications/{package}/reviews?maxResults=&token=
[&translationLanguage=]`` with an OAuth bearer token (``auth``); pages follow
``tokenPagination.nextPageToken``. The API lists reviews created or edited in about the last
week, newest ``lastModified`` first.

Cursor: ``{"last_modified": <ISO time>, "ids_at": [...]}`` (a ``HighWater``), the latest
``lastModified`` taken in. Newest first means nothing is safe before the end, so the cursor is
given only with the run's last page. A run stops paging at the first review older than the
cursor. An edited review comes back with a later ``lastModified`` and is emitted again (same
``external_id``: the store updates it). A developer reply alone does not change the user's
``lastModified``, so a reply to an unchanged review is seen only with the review's next edit.
Quota: 200 GETs an hour per app; no rate-limit headers are documented, so a 429 (Google error
envelope) backs off, honouring ``Retry-After`` when present (the default).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from sluiceway.feedback.item import iso
from sluiceway.feedback.platform import PlatformConnector, map_items, parse_iso
from sluiceway.feedback.pull import Page, PullError
from sluiceway.feedback.watermark import HighWater
from sluiceway.sources.playstore.auth import bearer_token
from sluiceway.sources.playstore.config import PlayStoreSecrets, PlayStoreSettings
from sluiceway.sources.playstore.reviews import review_item

KEY = "last_modified"


class PlayStoreConnector(PlatformConnector):
    type = "playstore"
    Settings = PlayStoreSettings
    Secrets = PlayStoreSecrets

    def instance(self) -> str:
        return self.settings.package_name

    def url(self) -> str:
        return (f"{self.settings.base_url}/androidpublisher/v3/applications/"
                f"{quote(self.settings.package_name, safe='')}/reviews")

    async def pages(self, cursor: dict[str, Any]) -> AsyncIterator[Page]:
        old = HighWater.from_cursor(cursor, KEY, parse_iso)
        seen = HighWater()
        params: dict[str, Any] = {"maxResults": self.settings.max_results}
        if self.settings.translation_language:
            params["translationLanguage"] = self.settings.translation_language
        while True:
            headers = {"Authorization": f"Bearer {await bearer_token(self)}"}
            body = await self.get_json(self.url(), params=params, headers=headers)
            items, reached_old = [], False
            for item in map_items(body.get("reviews") or [], review_item, self.instance()):
                if old.at is not None and item.created_at < old.at:
                    reached_old = True
                elif old.is_new(item.created_at, item.external_id):
                    items.append(item)
                    seen.add(item.created_at, item.external_id)
            token = (body.get("tokenPagination") or {}).get("nextPageToken")
            if reached_old or not token:
                yield Page(items, old.merged(seen).to_cursor(KEY, iso))
                return
            if token == params.get("token"):
                raise PullError(f"{self.url()} returned the same nextPageToken twice")
            params["token"] = token
            yield Page(items)
