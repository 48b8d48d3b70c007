"""A fake Discourse forum: ``GET /posts.json`` (``latest_posts``, newest id first).

50 posts a page (as Discourse), ``before=<id>`` → posts with lower ids. With ``api_key`` set,
requests need ``Api-Key`` and ``Api-Username`` (else 403 ``invalid_access``, like a private
forum). A 429 has ``Retry-After`` and the ``rate_limit`` body with ``extras.wait_seconds``
(``fail("429", wait=…, header=False)`` leaves the header out). Editing a post changes its
``raw``/``cooked``/``updated_at`` but not its id, so ``/posts.json`` does not bring it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tests.fakes.server import Fault, FakeServer, Reply, json_response

PAGE = 50


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Post:
    id: int
    topic_id: int
    post_number: int
    username: str
    raw: str
    created: float
    updated: float


class DiscourseFake(FakeServer):
    def __init__(self, api_key: str | None = "disc-key", api_username: str = "system") -> None:
        self.credentials = (api_key, api_username)
        super().__init__()

    def clear(self) -> None:
        self.api_key, self.api_username = self.credentials
        self.posts: dict[int, Post] = {}
        self.next_id = 1000

    def add(self, n: int, *, start: float, step: float = 60.0, gap: int = 1) -> list[Post]:
        """``n`` posts in topics of 3; ids grow by ``gap`` (deleted posts leave holes)."""
        out = []
        for _ in range(n):
            i = len(self.posts)
            p = Post(self.next_id, 4500 + i // 3, 1 + i % 3, f"user{i}", f"Post **{i}** text",
                     start + len(out) * step, start + len(out) * step)
            self.posts[p.id] = p
            self.next_id += gap
            out.append(p)
        return out

    def edit(self, post_id: int, raw: str, at: float) -> None:
        self.posts[post_id].raw = raw
        self.posts[post_id].updated = at

    def routes(self) -> list[tuple[str, str, Any]]:
        return [("GET", "/posts.json", self.latest_posts)]

    def error(self, status: int, message: str) -> Response:
        return json_response({"errors": [message], "error_type": "invalid_access" if status in (401, 403) else "error"},
                             status)

    def rate_limited(self, wait: float | None, header: bool = True) -> Response:
        seconds = int(wait if wait is not None else 10)
        body = {"errors": [f"You’ve performed this action too many times. Please wait {seconds} seconds before "
                           "trying again."], "error_type": "rate_limit", "extras": {"wait_seconds": seconds}}
        headers = {"Retry-After": str(seconds), "Discourse-Rate-Limit-Error-Code": "admin_api_key_rate_limit"}
        return json_response(body, 429, headers if header else None)

    async def _fault(self, fault: Fault) -> Response:
        if fault.kind == "429":
            return self.rate_limited(fault.options.get("wait"), fault.options.get("header", True))
        return await super()._fault(fault)

    async def latest_posts(self, request: Request) -> Response:
        if self.api_key is not None and (request.headers.get("api-key") != self.api_key
                                         or request.headers.get("api-username") != self.api_username):
            raise Reply(403, "You are not permitted to view the requested resource.")
        before = request.query_params.get("before")
        ids = sorted((i for i in self.posts if before is None or i < int(before)), reverse=True)[:PAGE]
        return json_response({"latest_posts": [self.render(self.posts[i]) for i in ids]})

    @staticmethod
    def render(p: Post) -> dict[str, Any]:
        return {"id": p.id, "name": p.username.title(), "username": p.username, "avatar_template": "",
                "created_at": _iso(p.created), "updated_at": _iso(p.updated),
                "cooked": f"<p>{p.raw.replace('**', '')} &amp; more</p>", "raw": p.raw,
                "post_number": p.post_number, "post_type": 1, "reply_count": 0, "reply_to_post_number": None,
                "topic_id": p.topic_id, "topic_slug": f"topic-{p.topic_id}", "topic_title": f"Topic {p.topic_id}",
                "category_id": 7, "user_id": 100 + p.id % 7}
