"""A fake Intercom REST API (2.x): ``POST /conversations/search``.

Supports the ``updated_at`` query with ``>``, ``<`` and ``=``; ``pagination.per_page`` (max
150) and ``starting_after`` (opaque); ``pages.next.starting_after`` until the last page. The
order of results is *not* by time (a fixed shuffle), as the API documents no sort for search.
Needs ``Authorization: Bearer``; every answer has ``X-RateLimit-{Limit,Remaining,Reset}``; a 429
and other errors use the ``error.list`` envelope.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tests.fakes.server import FakeServer, Reply, bearer, json_response, page_token, token_offset

CODES = {400: "parameter_invalid", 401: "unauthorized", 403: "forbidden", 404: "not_found",
         429: "rate_limit_exceeded", 500: "server_error"}


@dataclass
class Conversation:
    id: str
    body: str
    created: int
    updated: int
    author_id: str = "5310d8e8598c9a0b24000002"
    state: str = "open"


class IntercomFake(FakeServer):
    def __init__(self, token: str = "ic-token") -> None:
        self.token = token
        super().__init__()

    def clear(self) -> None:
        self.conversations: dict[str, Conversation] = {}

    def add(self, n: int, *, start: int, step: int = 60, same_second: int = 1) -> list[Conversation]:
        """``n`` conversations; every ``same_second`` consecutive ones share an ``updated_at``."""
        out = []
        for k in range(n):
            i = len(self.conversations)
            at = start + (k // same_second) * step
            c = Conversation(str(147 + i), f"<p>Conversation {i}: the export button &amp; more</p>", at - 30, at)
            self.conversations[c.id] = c
            out.append(c)
        return out

    def edit(self, conv_id: str, body: str, at: int) -> None:
        self.conversations[conv_id].body = body
        self.conversations[conv_id].updated = at

    def routes(self) -> list[tuple[str, str, Any]]:
        return [("POST", "/conversations/search", self.search)]

    def limit_headers(self, remaining: int = 166) -> dict[str, str]:
        return {"X-RateLimit-Limit": "167", "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": str(int(self.clock()) + 10)}

    def error(self, status: int, message: str) -> Response:
        return json_response({"type": "error.list", "request_id": "0001tbs6b1sdr0aehk60",
                              "errors": [{"code": CODES.get(status, "error"), "message": message}]}, status)

    def rate_limited(self, wait: float | None) -> Response:
        response = self.error(429, "Exceeded rate limit of 167 in 10_seconds")
        response.headers.update(self.limit_headers(0))
        response.headers["X-RateLimit-Reset"] = str(int(self.clock() + (wait if wait is not None else 10)))
        return response

    async def search(self, request: Request) -> Response:
        if bearer(request) != self.token:
            raise Reply(401, "Access Token Invalid")
        try:
            body = orjson.loads(await request.body())
            query, pagination = body["query"], body.get("pagination") or {}
            field, op, value = query["field"], query["operator"], int(query["value"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise Reply(400, "Invalid query") from None
        size = int(pagination.get("per_page", 20))
        if field != "updated_at" or op not in (">", "<", "=") or not 1 <= size <= 150:
            raise Reply(400, f"unsupported query {query} / per_page {size}")
        test = {">": lambda t: t > value, "<": lambda t: t < value, "=": lambda t: t == value}[op]
        found = sorted((c for c in self.conversations.values() if test(c.updated)),
                       key=lambda c: hashlib.sha1(c.id.encode()).hexdigest())
        offset = token_offset(pagination.get("starting_after"), "ic")
        if offset is None:
            raise Reply(400, "Invalid starting_after")
        pages: dict[str, Any] = {"type": "pages", "page": offset // size + 1, "per_page": size,
                                 "total_pages": max(1, -(-len(found) // size))}
        if offset + size < len(found):
            pages["next"] = {"page": offset // size + 2, "starting_after": page_token(offset + size, "ic")}
        return json_response({"type": "conversation.list", "conversations": [render(c) for c in found[offset:offset + size]],
                              "total_count": len(found), "pages": pages}, headers=self.limit_headers())


def render(c: Conversation) -> dict[str, Any]:
    return {"type": "conversation", "id": c.id, "created_at": c.created, "updated_at": c.updated,
            "source": {"type": "conversation", "id": f"40391{c.id}", "delivered_as": "customer_initiated",
                       "subject": "", "body": c.body, "author": {"type": "user", "id": c.author_id, "name": "Jane Roe",
                                                                 "email": "jane@example.com"}, "url": None},
            "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": c.author_id}]},
            "teammates": {"type": "admin.list", "teammates": []},
            "admin_assignee_id": None, "team_assignee_id": None, "state": c.state, "open": c.state == "open",
            "read": False, "priority": "not_priority", "custom_attributes": {"plan": "pro"},
            "tags": {"type": "tag.list", "tags": [{"type": "tag", "id": "1", "name": "bug"}]},
            "conversation_rating": None}
