"""A fake X API v2 recent search: ``GET /2/tweets/search/recent``.

Posts of the last 7 days matching ``query`` (a word the text must contain), newest id first;
``since_id``/``until_id`` exclusive, ``start_time`` inclusive (``YYYY-MM-DDTHH:mm:ssZ`` or 400);
``max_results`` 10–100 (else 400); ``next_token`` paging with ``meta.{newest_id, oldest_id,
result_count, next_token}`` per page; no matches → no ``data``. Objects carry ``id``, ``text``,
``edit_history_tweet_ids`` plus what ``tweet.fields`` asks for. Every answer has
``x-rate-limit-{limit,remaining,reset}``; a 429 is ``{"errors":[{"code":88,…}]}`` with the reset
``wait`` seconds after the fake's clock. Editing a post adds a new id whose history starts
with the original's; the old version stays searchable (as a worst case).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tests.fakes.server import FakeServer, Reply, bearer, json_response, page_token, token_offset

TWEPOCH_MS = 1288834974657
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def snowflake(at: float, seq: int) -> int:
    return ((int(at * 1000) - TWEPOCH_MS) << 22) + seq


@dataclass
class Post:
    id: int
    text: str
    at: float
    author_id: str = "2244994945"
    lang: str = "en"
    history: list[int] = field(default_factory=list)


class XFake(FakeServer):
    def __init__(self, token: str = "x-app-token") -> None:
        self.token = token
        super().__init__()

    def clear(self) -> None:
        self.posts: list[Post] = []
        self.reset_in = 900

    def add(self, n: int, *, start: float, step: float = 60.0, text: str = "feedback") -> list[Post]:
        out = []
        for _ in range(n):
            at = start + len(out) * step
            p = Post(snowflake(at, len(self.posts)), f"post {len(self.posts)} about #{text}", at)
            p.history = [p.id]
            self.posts.append(p)
            out.append(p)
        return out

    def edit(self, post: Post, text: str, at: float) -> Post:
        new = Post(snowflake(at, len(self.posts)), text, at, post.author_id, post.lang, [*post.history])
        new.history.append(new.id)
        self.posts.append(new)
        return new

    def routes(self) -> list[tuple[str, str, Any]]:
        return [("GET", "/2/tweets/search/recent", self.search)]

    def limit_headers(self, remaining: int = 449) -> dict[str, str]:
        return {"x-rate-limit-limit": "450", "x-rate-limit-remaining": str(remaining),
                "x-rate-limit-reset": str(int(self.clock()) + self.reset_in)}

    def error(self, status: int, message: str) -> Response:
        return json_response({"title": message, "detail": message, "type": "about:blank", "status": status}, status)

    def rate_limited(self, wait: float | None) -> Response:
        headers = self.limit_headers(0)
        headers["x-rate-limit-reset"] = str(int(self.clock() + (wait if wait is not None else self.reset_in)))
        return json_response({"errors": [{"code": 88, "message": "Rate limit exceeded"}]}, 429, headers)

    async def search(self, request: Request) -> Response:
        if bearer(request) != self.token:
            raise Reply(401, "Unauthorized")
        q = request.query_params
        if not q.get("query"):
            raise Reply(400, "The `query` query parameter can not be empty")
        size = int(q.get("max_results", 10))
        if not 10 <= size <= 100:
            raise Reply(400, f"The `max_results` query parameter value [{size}] is not between 10 and 100")
        posts = [p for p in self.posts if q["query"] in p.text and p.at >= self.clock() - 7 * 86400]
        if "start_time" in q:
            if not TIME.match(q["start_time"]):
                raise Reply(400, f"Invalid start_time: {q['start_time']}")
            start = datetime.strptime(q["start_time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
            posts = [p for p in posts if p.at >= start.timestamp()]
        if "since_id" in q:
            posts = [p for p in posts if p.id > int(q["since_id"])]
        posts.sort(key=lambda p: p.id, reverse=True)
        offset = token_offset(q.get("next_token") or q.get("pagination_token"), "x")
        if offset is None:
            raise Reply(400, "Invalid next_token")
        page = posts[offset:offset + size]
        fields = set((q.get("tweet.fields") or "").split(","))
        meta: dict[str, Any] = {"result_count": len(page)}
        body: dict[str, Any] = {"meta": meta}
        if page:
            body["data"] = [self.render(p, fields) for p in page]
            meta.update(newest_id=str(page[0].id), oldest_id=str(page[-1].id))
        if offset + size < len(posts):
            meta["next_token"] = page_token(offset + size, "x")
        return json_response(body, headers=self.limit_headers())

    @staticmethod
    def render(p: Post, fields: set[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"id": str(p.id), "text": p.text, "edit_history_tweet_ids": [str(i) for i in p.history]}
        if "created_at" in fields:
            out["created_at"] = datetime.fromtimestamp(p.at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        if "lang" in fields:
            out["lang"] = p.lang
        if "author_id" in fields:
            out["author_id"] = p.author_id
        return out
