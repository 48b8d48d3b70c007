from datetime import datetime, timedelta, timezone

from sluiceway.store import Store

UTC = timezone.utc
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


async def test_put_then_get(any_store: Store) -> None:
    assert await any_store.idempotency_get("acme", "k", NOW) is None
    assert await any_store.idempotency_put("acme", "k", 202, b'{"accepted":3}', NOW + timedelta(hours=1), now=NOW)
    assert await any_store.idempotency_get("acme", "k", NOW) == (202, b'{"accepted":3}')
    assert await any_store.idempotency_get("other", "k", NOW) is None  # per tenant


async def test_unexpired_entry_wins(any_store: Store) -> None:
    await any_store.idempotency_put("acme", "k", 202, b"first", NOW + timedelta(hours=1), now=NOW)
    assert not await any_store.idempotency_put("acme", "k", 500, b"second", NOW + timedelta(hours=2), now=NOW)
    assert await any_store.idempotency_get("acme", "k", NOW) == (202, b"first")


async def test_expiry_and_replacement(any_store: Store) -> None:
    await any_store.idempotency_put("acme", "k", 202, b"old", NOW + timedelta(minutes=5), now=NOW)
    later = NOW + timedelta(minutes=5)
    assert await any_store.idempotency_get("acme", "k", later - timedelta(microseconds=1)) == (202, b"old")
    assert await any_store.idempotency_get("acme", "k", later) is None  # expired at expires_at
    assert await any_store.idempotency_put("acme", "k", 201, b"new", later + timedelta(hours=1), now=later)
    assert await any_store.idempotency_get("acme", "k", later) == (201, b"new")


async def test_default_now_is_the_clock(any_store: Store) -> None:
    from sluiceway.record import utcnow

    assert await any_store.idempotency_put("acme", "k", 200, b"x", utcnow() + timedelta(minutes=1))
    assert await any_store.idempotency_get("acme", "k") == (200, b"x")
    # already expired when written: not served
    assert await any_store.idempotency_put("acme", "gone", 200, b"x", utcnow() - timedelta(seconds=1))
    assert await any_store.idempotency_get("acme", "gone") is None


async def test_purge(any_store: Store) -> None:
    await any_store.idempotency_put("acme", "a", 200, b"", NOW + timedelta(minutes=1), now=NOW)
    await any_store.idempotency_put("acme", "b", 200, b"", NOW + timedelta(minutes=10), now=NOW)
    assert await any_store.idempotency_purge(NOW + timedelta(minutes=5)) == 1
    assert await any_store.idempotency_get("acme", "a", NOW) is None
    assert await any_store.idempotency_get("acme", "b", NOW) == (200, b"")
    assert await any_store.idempotency_purge(NOW) == 0


async def test_binary_bodies(any_store: Store) -> None:
    body = bytes(range(256))
    await any_store.idempotency_put("acme", "bin", 200, body, NOW + timedelta(hours=1), now=NOW)
    assert await any_store.idempotency_get("acme", "bin", NOW) == (200, body)
