"""Several gateways on one PostgreSQL database: a source's run is locked to one of them."""

from __future__ import annotations

import asyncio

from sluiceway.store import open_store


async def test_only_one_gateway_holds_a_source(pg_store, postgres_url):
    other = await open_store(postgres_url, migrate=False)  # a second gateway's store
    try:
        async with pg_store.source_lock("s1") as first:
            async with other.source_lock("s1") as second:
                assert first and not second
            async with other.source_lock("s2") as different:
                assert different
        async with other.source_lock("s1") as after:
            assert after  # released when the first run ended
    finally:
        await other.aclose()


async def test_sqlite_always_runs(sqlite_store):
    async with sqlite_store.source_lock("s1") as a:
        assert a


async def test_concurrent_jobs_run_a_source_once(pg_store, postgres_url):
    runs = []
    other = await open_store(postgres_url, migrate=False)

    async def job(store, name):
        async with store.source_lock("shared") as mine:
            if mine:
                runs.append(name)
                await asyncio.sleep(0.2)

    try:
        await asyncio.gather(job(pg_store, "a"), job(other, "b"))
    finally:
        await other.aclose()
    assert len(runs) == 1
