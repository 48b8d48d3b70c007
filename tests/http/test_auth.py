"""The token cache: one lookup per secret at a time, refreshed ahead of expiry, revocation
seen within the TTL, failures not cached."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from sluiceway.errors import Unauthorized
from sluiceway.http import auth as auth_mod
from sluiceway.http.auth import Authenticator
from sluiceway.store.lite import TokenInfo

SECRET = "sk_test"
INFO = TokenInfo(id="t1", tenant="acme", scopes=frozenset({"ingest"}), name=None,
                 created_at=datetime(2026, 1, 1, tzinfo=timezone.utc))


class FakeStore:
    """``lookup_token`` that counts its calls and answers when ``gate`` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.revoked = False
        self.fail: Exception | None = None

    async def lookup_token(self, secret: str) -> TokenInfo | None:
        self.calls += 1
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return None if self.revoked or secret != SECRET else INFO


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def gated() -> tuple[FakeStore, Authenticator]:
    """A store whose lookups wait for ``gate``, and an authenticator in front of it."""
    store = FakeStore()
    store.gate.clear()
    return store, Authenticator(store, ttl=5.0)  # type: ignore[arg-type]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(auth_mod, "monotonic", c.monotonic)
    return c


async def test_concurrent_misses_share_one_lookup(clock: Clock) -> None:
    store, a = gated()
    waiters = [asyncio.ensure_future(a.token(f"Bearer {SECRET}")) for _ in range(20)]
    await asyncio.sleep(0)
    store.gate.set()
    assert {(await w).tenant for w in waiters} == {"acme"}
    assert store.calls == 1
    await a.token(f"Bearer {SECRET}")  # cached
    assert store.calls == 1


async def test_refresh_ahead_does_not_make_the_request_wait(clock: Clock) -> None:
    store = FakeStore()
    a = Authenticator(store, ttl=5.0)  # type: ignore[arg-type]
    await a.token(f"Bearer {SECRET}")
    clock.now += 4.5  # in the last fifth of the entry's life
    store.gate.clear()  # the database is slow now: the request must not wait for it
    info = await asyncio.wait_for(a.token(f"Bearer {SECRET}"), 1)
    assert info.tenant == "acme" and store.calls == 2
    await a.token(f"Bearer {SECRET}")  # a refresh is in flight: no second one
    assert store.calls == 2
    store.gate.set()
    await asyncio.sleep(0.01)
    clock.now += 4.0  # past the first entry's expiry, inside the refreshed one's
    await a.token(f"Bearer {SECRET}")
    assert store.calls == 2


async def test_revocation_is_seen_within_the_ttl(clock: Clock) -> None:
    store = FakeStore()
    a = Authenticator(store, ttl=5.0)  # type: ignore[arg-type]
    await a.token(f"Bearer {SECRET}")
    store.revoked = True
    clock.now += 5.01
    with pytest.raises(Unauthorized, match="invalid or revoked"):
        await a.token(f"Bearer {SECRET}")


async def test_a_failed_lookup_is_not_cached(clock: Clock) -> None:
    store = FakeStore()
    store.fail = OSError("database is down")
    a = Authenticator(store, ttl=5.0)  # type: ignore[arg-type]
    with pytest.raises(OSError):
        await a.token(f"Bearer {SECRET}")
    store.fail = None
    assert (await a.token(f"Bearer {SECRET}")).tenant == "acme"
    assert store.calls == 2


async def test_a_cancelled_request_does_not_cancel_the_shared_lookup(clock: Clock) -> None:
    store, a = gated()
    first = asyncio.ensure_future(a.token(f"Bearer {SECRET}"))
    second = asyncio.ensure_future(a.token(f"Bearer {SECRET}"))
    await asyncio.sleep(0)
    first.cancel()
    store.gate.set()
    assert (await second).tenant == "acme"
    assert store.calls == 1


async def test_aclose_cancels_lookups_in_flight(clock: Clock) -> None:
    store, a = gated()
    waiter = asyncio.ensure_future(a.token(f"Bearer {SECRET}"))
    await asyncio.sleep(0)
    await a.aclose()
    with pytest.raises(asyncio.CancelledError):
        await waiter
