"""The store on a real PostgreSQL server: native types, the COPY path, concurrency."""

import asyncio
import secrets
from datetime import timedelta

import pytest
import sqlalchemy as sa

from sluiceway.record import Attachment, Record, dumps_exact, loads_exact, new_id, utcnow
from sluiceway.store import Store, open_store
from sluiceway.store.migrate import head_revision
from tests.fixtures.postgres import PostgresServer, _run_async, _with_database


def recs(n: int, tenant: str = "acme") -> list[Record]:
    now = utcnow()
    return [
        Record(id=new_id(), tenant=tenant, stream="usage", source="bench", received_at=now + timedelta(microseconds=i),
               payload={"i": i, "tags": ["a", "b"], "deep": {"x": i / 3}}, idempotency_key=f"k{i}",
               attachments=[Attachment(f"blobs/{i}", "0" * 64, i)] if i % 2 else [])
        for i in range(n)
    ]


async def test_native_column_types(pg_store: Store) -> None:
    async with pg_store.engine.connect() as conn:
        rows = (await conn.execute(sa.text(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'records'"
        ))).all()
        index = (await conn.execute(sa.text(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_records_tenant_stream_id'"
        ))).scalar_one()
    types = dict(rows)
    assert types["id"] == "uuid"
    assert types["payload"] == "jsonb" and types["attachments"] == "jsonb"
    assert types["received_at"] == "timestamp with time zone"
    assert "(tenant, stream, id)" in index


async def test_copy_path_bulk_and_idempotent(pg_store: Store) -> None:
    batch = recs(5000)
    assert await pg_store.insert_records(batch) == 5000
    assert await pg_store.insert_records(batch) == 0
    more = recs(10)
    assert await pg_store.insert_records(batch[:100] + more + more) == 10
    got = await pg_store.query_records("acme", "usage", limit=10_000)
    assert len(got) == 5010
    assert got[1]["attachments"] == [{"key": "blobs/1", "sha256": "0" * 64, "size": 1, "content_type": "application/octet-stream", "name": None, "metadata": {}}]
    assert got[0]["idempotency_key"] == "k0"
    # payload is real jsonb: queryable server side
    async with pg_store.engine.connect() as conn:
        n = (await conn.execute(sa.text("SELECT count(*) FROM records WHERE payload @> '{\"i\": 7}'"))).scalar_one()
    assert n == 2  # i=7 in `batch` and in `more`


async def test_staging_table_reused_on_one_connection(pg_store: Store) -> None:
    for _ in range(5):  # the pooled connection keeps its TEMP table; rows never leak across
        assert await pg_store.insert_records(recs(3)) == 3
    async with pg_store.engine.connect() as conn:
        assert (await conn.execute(sa.text("SELECT count(*) FROM records"))).scalar_one() == 15


async def test_failed_batch_leaves_no_staging_rows(pg_store: Store) -> None:
    bad = recs(2)
    bad[1].id = "not-a-uuid"
    with pytest.raises(Exception):
        await pg_store.insert_records(bad)
    assert await pg_store.insert_records(recs(2)) == 2
    assert len(await pg_store.query_records("acme", "usage")) == 2


async def test_nul_characters_are_stored_as_the_replacement_character(pg_store: Store) -> None:
    """PostgreSQL cannot hold NUL in jsonb or text: a \\u0000 escape is stored as \\ufffd,
    and the rest of the batch with it (the journal and object store keep the payload as sent)."""
    batch = recs(3)
    batch[1].payload = {"x": "a\x00b", "escaped": "\\u0000 stays"}
    assert await pg_store.insert_records(batch) == 3
    got = {r["id"]: r["payload"] for r in await pg_store.query_records("acme", "usage")}
    assert got[batch[1].id] == {"x": "a\ufffdb", "escaped": "\\u0000 stays"}
    assert await pg_store.add_ldo({"id": "ldo_000000000001_1", "tenant": "acme", "client_id": None,
                                   "status": "ingested", "filename": None, "content_type": None, "size_bytes": None,
                                   "sha256": None, "object_key": None, "metadata": {"cid": "c\x00d"},
                                   "created_at": utcnow()})
    assert (await pg_store.get_ldo("acme", "ldo_000000000001_1"))["metadata"] == {"cid": "c\ufffdd"}


async def test_numbers_past_a_double_and_very_long_integers_read_back(pg_store: Store) -> None:
    """jsonb holds 1e999 as numeric and gives it back written out in digits; 1e5000 has more
    digits than Python converts to an int: both are read back (as ``HugeNumber``) and written
    out again as the same number, not an error."""
    text = b'{"a": 1e999, "b": -1e5000, "c": 123456789012345678901234567890, "d": 1.5}'
    batch = recs(1)
    batch[0].payload = loads_exact(text)
    assert await pg_store.insert_records(batch) == 1
    [row] = await pg_store.query_records("acme", "usage")
    assert dumps_exact(row["payload"]) == (b'{"a":1' + b"0" * 999 + b',"b":-1' + b"0" * 5000
                                           + b',"c":123456789012345678901234567890,"d":1.5}')


async def test_concurrent_overlapping_inserts(pg_store: Store) -> None:
    batch = recs(2000)
    halves = [batch[:1500], batch[500:], list(reversed(batch)), batch[::2]]
    counts = await asyncio.gather(*(pg_store.insert_records(h) for h in halves))
    assert sum(counts) == 2000
    assert len(await pg_store.query_records("acme", "usage", limit=5000)) == 2000


async def test_concurrent_stores_and_pagination(postgres_url: str, pg_store: Store) -> None:
    others = [await open_store(postgres_url) for _ in range(3)]
    try:
        await asyncio.gather(*(s.insert_records(recs(100, tenant=f"t{i}")) for i, s in enumerate(others)))
        for i in range(3):
            page1 = await pg_store.query_records(f"t{i}", "usage", limit=60)
            page2 = await pg_store.query_records(f"t{i}", "usage", after_id=page1[-1]["id"], limit=60)
            assert [p["payload"]["i"] for p in page1 + page2] == list(range(100))
    finally:
        for s in others:
            await s.aclose()


def _fresh_database(server: PostgresServer) -> str:
    import asyncpg

    name = f"sluice_mig_{secrets.token_hex(4)}"

    async def create() -> None:
        conn = await asyncpg.connect(server.url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    _run_async(create())
    return name


def _drop_database(server: PostgresServer, name: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(server.url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    _run_async(drop())


async def test_concurrent_migrations_on_an_empty_database(postgres_server: PostgresServer, postgres_url: str) -> None:
    name = _fresh_database(postgres_server)
    url = _with_database(postgres_server.url, name)
    try:
        stores = await asyncio.gather(*(open_store(url) for _ in range(4)))
        try:
            for s in stores:
                assert await s.current_revision() == head_revision()
            assert await stores[0].insert_records(recs(1)) == 1
        finally:
            for s in stores:
                await s.aclose()
    finally:
        _drop_database(postgres_server, name)


async def test_postgres_scheme_alias(postgres_url: str) -> None:
    store = await open_store(postgres_url.replace("postgresql://", "postgres://", 1))
    try:
        assert store.dialect == "postgresql"
        await store.ping()
    finally:
        await store.aclose()
