"""Drive a connector through ``run_pull`` the way the scheduler does, but fast and observable.

``Puller`` keeps what outlives a run — the saved cursor and every item appended — and makes a
*new* connector for each ``run()`` (a restart from the stored cursor). Each run gets a real
``PullHttp`` over ``httpx.AsyncClient(timeout=short)`` whose sleeps are recorded in ``waits``
and not slept, so rate-limit waits are asserted by value, never by wall time.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from sluiceway.feedback.item import FeedbackItem
from collections.abc import Callable

from sluiceway.feedback.pull import PullError, PullHttp, RunResult, run_pull
from sluiceway.record import UTC

NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)  # the tests' fixed "now"


def fixtures(fake_cls: Any) -> tuple[Any, Any]:
    """``server`` (one running fake per test module) and ``fake`` (that server, reset for each
    test, its clock pinned at ``NOW``). In a conftest: ``server, fake = fixtures(XFake)``."""

    @pytest.fixture(scope="module")
    def server() -> Any:
        with fake_cls() as s:
            yield s

    @pytest.fixture
    def fake(server: Any) -> Any:
        server.reset()
        server.clock = NOW.timestamp
        yield server
        server.reset()

    return server, fake


class Puller:
    def __init__(self, connector_cls: Any, settings: dict[str, Any], secrets: dict[str, Any], *,
                 now: datetime = NOW, timeout: float = 0.3, max_attempts: int = 4, max_wait: float = 900.0):
        self.cls, self.settings, self.secrets = connector_cls, settings, secrets
        self.now, self.timeout, self.max_attempts, self.max_wait = now, timeout, max_attempts, max_wait
        self.cursor: dict[str, Any] = {}
        self.saved: list[dict[str, Any]] = []
        self.items: list[FeedbackItem] = []
        self.waits: list[float] = []

    def connector(self, http: PullHttp) -> Any:
        c = self.cls(self.cls.Settings.model_validate(self.settings), self.cls.Secrets.model_validate(self.secrets),
                     http)
        c.now = lambda: self.now
        return c

    async def run(self) -> RunResult:
        async def sleep(seconds: float) -> None:
            self.waits.append(seconds)
            await asyncio.sleep(0)

        async def append(items: list[FeedbackItem]) -> None:
            self.items.extend(items)

        async def save(cursor: dict[str, Any]) -> None:
            self.cursor = cursor
            self.saved.append(cursor)

        async with httpx.AsyncClient(timeout=self.timeout) as client:
            http = PullHttp(client, max_attempts=self.max_attempts, backoff_initial=0.001, backoff_max=0.01,
                            max_wait=self.max_wait, sleep=sleep)
            return await run_pull(self.connector(http), self.cursor, append, save)

    def ids(self) -> list[str]:
        return [i.external_id for i in self.items]


async def fails_midway_then_recovers(p: Puller, fake: Any, fault: str, permanent: bool,
                                     add_more: Callable[[], Any], real_ids: Callable[[], set[str]]) -> None:
    """A first run; then new items and a fault on every request from the second page on
    (``fault`` is a permanent status, or one retried until ``max_attempts``): the run raises
    ``PullError``, the cursor stays, whatever was appended is real; the next run gets it all."""
    await p.run()
    before, saves = dict(p.cursor), len(p.saved)
    add_more()
    fake.fail(fault, after=1, times=99)
    with pytest.raises(PullError) as e:
        await p.run()
    assert e.value.permanent is permanent
    assert p.cursor == before and len(p.saved) == saves
    assert set(p.ids()) <= real_ids()  # nothing invented
    fake.faults.clear()
    await p.run()
    assert set(p.ids()) == real_ids()
