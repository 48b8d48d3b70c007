"""LiteStore reads and writes what the full Store does, on both dialects, without SQLAlchemy."""

import pickle
from datetime import datetime, timedelta, timezone

import pytest

from sluiceway.record import Record, new_id
from sluiceway.store import StoreClosed, open_store
from sluiceway.store.lite import LiteStore

UTC = timezone.utc
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
async def stores(request: pytest.FixtureRequest, tmp_path):
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'sluice.db'}"
    full = await open_store(url)
    lite = pickle.loads(pickle.dumps(LiteStore.from_url(url)))  # as the supervisor hands it to a worker
    await lite.open()
    try:
        yield full, lite
    finally:
        await lite.aclose()
        await full.aclose()


async def test_token_lookup(stores) -> None:
    full, lite = stores
    info, secret = await full.create_token("acme", ["ingest", "read"], name="ci")
    assert await lite.lookup_token(secret) == info
    assert await lite.lookup_token(secret + "x") is None
    assert await lite.lookup_token("not-a-token") is None
    assert await full.revoke_token(info.id)
    assert await lite.lookup_token(secret) is None


async def test_idempotency_shared_with_the_full_store(stores) -> None:
    full, lite = stores
    assert await lite.idempotency_put("acme", "k", 202, b'{"accepted":3}', NOW + timedelta(hours=1), now=NOW)
    assert await full.idempotency_get("acme", "k", NOW) == (202, b'{"accepted":3}')
    assert await lite.idempotency_get("acme", "k", NOW) == (202, b'{"accepted":3}')
    assert await lite.idempotency_get("other", "k", NOW) is None
    assert not await lite.idempotency_put("acme", "k", 500, b"second", NOW + timedelta(hours=2), now=NOW)
    await full.idempotency_put("acme", "f", 201, b"full", NOW + timedelta(minutes=5), now=NOW)
    later = NOW + timedelta(minutes=5)
    assert await lite.idempotency_get("acme", "f", later - timedelta(microseconds=1)) == (201, b"full")
    assert await lite.idempotency_get("acme", "f", later) is None  # expired at expires_at
    assert await lite.idempotency_put("acme", "f", 200, b"new", later + timedelta(hours=1), now=later)
    assert await full.idempotency_get("acme", "f", later) == (200, b"new")


async def test_ping_and_query_records(stores) -> None:
    full, lite = stores
    await lite.ping()
    records = [Record(id=new_id(), tenant="acme", stream="usage", source="t", received_at=NOW, payload={"n": i})
               for i in range(3)]
    await full.insert_records(records)
    assert await lite.query_records("acme", "usage", limit=10) == await full.query_records("acme", "usage", limit=10)


async def test_lifecycle(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'sluice.db'}"
    await (await open_store(url)).aclose()
    lite = LiteStore.from_url(url)
    with pytest.raises(StoreClosed):
        await lite.ping()
    with pytest.raises(ValueError):
        await lite.open(migrate=True)
    await lite.open()
    with pytest.raises(TypeError):
        pickle.dumps(lite)
    await lite.aclose()
    await lite.aclose()


async def test_unavailable_reason_tells_a_store_that_cannot_serve_from_a_bug(pg_store, tmp_path):
    """What run_endpoint answers 503 (retry) rather than 500: real errors of both databases."""
    import asyncio
    import sqlite3

    import asyncpg

    from sluiceway.store.lite import unavailable_reason

    assert unavailable_reason(RuntimeError("a bug")) is None
    assert unavailable_reason(ValueError("bad value")) is None
    try:
        await asyncpg.connect("postgresql://nobody@127.0.0.1:1/none", timeout=5)
    except OSError as e:
        assert "Errno" in unavailable_reason(e) or "Connect" in unavailable_reason(e)
    # The server ends the session (SQLSTATE 57P01) under a query of the store's engine.
    async with pg_store.engine.connect() as conn:
        pid = (await conn.exec_driver_sql("select pg_backend_pid()")).scalar()
        async with pg_store.engine.connect() as admin:
            await admin.exec_driver_sql(f"select pg_terminate_backend({pid})")
        await asyncio.sleep(0.1)
        with pytest.raises(Exception) as err:
            await conn.exec_driver_sql("select 1")
    reason = unavailable_reason(err.value)
    assert reason is not None and "select 1" not in reason
    # A duplicate key is the request's fault, not the server's.
    db = sqlite3.connect(tmp_path / "x.db")
    db.execute("create table t (id int primary key)")
    db.execute("insert into t values (1)")
    with pytest.raises(sqlite3.IntegrityError) as dup:
        db.execute("insert into t values (1)")
    assert unavailable_reason(dup.value) is None
    assert unavailable_reason(sqlite3.OperationalError("database is locked")) is not None
