"""The one pull helper every connector runs on.

A connector only knows its platform: how to ask for pages, how to read items and how the
platform says "slow down". This module does the rest:

- ``PullHttp.request`` retries timeouts, connection errors, 408 and 5xx with exponential
  backoff and full jitter; a 429 waits what the platform asked (``rate_limit_wait``: e.g.
  ``Retry-After``, ``x-rate-limit-reset``, Discourse ``extras.wait_seconds``), or backs off
  when it says nothing; other 4xx fail the run at once (``PullError``, permanent). Waits
  longer than ``max_wait`` fail the run too (the next scheduled run tries again). Nothing is
  ever invented on failure: a failed run stores nothing fake and leaves the cursor alone.
- ``run_pull`` iterates a connector's pages; each page's items are appended to the journal
  (durable) **before** the page's cursor, if any, is saved. A connector yields a cursor only
  when everything before it is in: newest-first platforms only on their last page.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sluiceway.config.types import StrictModel
from sluiceway.feedback.item import FeedbackItem
from sluiceway.sinks.delivery import backoff
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:  # imported where a pull runs: an HTTP worker that only reads configs never loads it
    import httpx

log = get_logger("sluiceway.pull")


class PullError(Exception):
    """A run failed; ``permanent`` ones (401, 403, 404, bad settings) will not fix themselves."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


@dataclass
class Page:
    items: list[FeedbackItem]
    cursor: dict[str, Any] | None = None  # save this once the items are durable (None: not yet)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - (now or time.time()))
    except (TypeError, ValueError):
        return None


def reset_in(value: str | None, now: float | None = None) -> float | None:
    """An ``…-reset`` header holding a unix time → seconds from now."""
    if not value:
        return None
    try:
        return max(0.0, float(value) - (now or time.time()))
    except ValueError:
        return None


class PullHttp:
    def __init__(self, client: httpx.AsyncClient, *, max_attempts: int = 6, backoff_initial: float = 1.0,
                 backoff_max: float = 60.0, max_wait: float = 900.0,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep):
        self.client = client
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_wait = max_wait
        self.sleep = sleep
        self.waited = 0.0  # seconds slept on retries and rate limits (for logs and tests)

    async def request(self, method: str, url: str, *,
                      rate_limit_wait: Callable[[httpx.Response], float | None] | None = None,
                      **kwargs: Any) -> httpx.Response:
        import httpx

        last = ""
        for attempt in range(self.max_attempts):
            try:
                r = await self.client.request(method, url, **kwargs)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                last = f"{type(e).__name__}: {e}"
                await self._wait(backoff(attempt, self.backoff_initial, self.backoff_max), last)
                continue
            if r.status_code == 429:
                wait = rate_limit_wait(r) if rate_limit_wait else None
                last = f"429 rate limited: {r.text[:200]}"
                if wait is None:
                    wait = backoff(attempt, self.backoff_initial, self.backoff_max)
                if wait > self.max_wait:
                    raise PullError(f"rate limited for {wait:.0f} s (more than max_wait {self.max_wait:.0f} s); "
                                    "the next run tries again")
                await self._wait(wait, last)
                continue
            if r.status_code >= 500 or r.status_code == 408:
                last = f"{r.status_code}: {r.text[:200]}"
                await self._wait(backoff(attempt, self.backoff_initial, self.backoff_max), last)
                continue
            if r.status_code >= 400:
                raise PullError(f"{method} {url} → {r.status_code}: {r.text[:300]}",
                                permanent=r.status_code in (401, 403, 404))
            return r
        raise PullError(f"{method} {url} failed {self.max_attempts} times; last: {last}")

    async def _wait(self, seconds: float, why: str) -> None:
        log.info("pull retry", wait_s=round(seconds, 2), why=why)
        self.waited += seconds
        await self.sleep(seconds)


class Connector(abc.ABC):
    """A platform. Subclasses set ``type``, ``Settings`` (non-secret, validated strictly) and
    ``Secrets`` (credentials, stored encrypted), and implement ``instance`` and ``pages``."""

    type: ClassVar[str]
    Settings: ClassVar[type[StrictModel]]
    Secrets: ClassVar[type[StrictModel]]

    def __init__(self, settings: Any, secrets: Any, http: PullHttp):
        self.settings = settings
        self.secrets = secrets
        self.http = http

    @abc.abstractmethod
    def instance(self) -> str:
        """``source_instance`` of this connector's items (app id, query, forum URL, …)."""

    @abc.abstractmethod
    def pages(self, cursor: dict[str, Any]) -> AsyncIterator[Page]:
        """Pages of items newer than ``cursor`` (``{}`` on the first run)."""

    def rate_limit_wait(self, response: httpx.Response) -> float | None:
        """Seconds the platform asks to wait on a 429 (default: ``Retry-After``)."""
        return retry_after_seconds(response.headers.get("retry-after"))

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request("GET", url, rate_limit_wait=self.rate_limit_wait, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request("POST", url, rate_limit_wait=self.rate_limit_wait, **kwargs)


@dataclass
class RunResult:
    items: int
    pages: int
    cursor: dict[str, Any]


async def run_pull(connector: Connector, cursor: dict[str, Any],
                   append: Callable[[list[FeedbackItem]], Awaitable[None]],
                   save_cursor: Callable[[dict[str, Any]], Awaitable[None]],
                   on_page: Callable[[int], None] | None = None) -> RunResult:
    """Run one pull: every page's items are made durable by ``append`` before the page's
    cursor is passed to ``save_cursor``. Raises ``PullError`` (the cursor stays where the
    last fully appended page left it)."""
    items = pages = 0
    current = dict(cursor)
    async for page in connector.pages(dict(cursor)):
        pages += 1
        if page.items:
            await append(page.items)
            items += len(page.items)
        if page.cursor is not None:
            current = page.cursor
            await save_cursor(current)
        if on_page is not None:
            on_page(len(page.items))
    return RunResult(items, pages, current)
