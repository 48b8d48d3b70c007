from datetime import datetime, timedelta, timezone

import pytest

from sluiceway.errors import BadRequest
from sluiceway.record import Attachment, Record, new_id
from sluiceway.store import Store

UTC = timezone.utc
T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def rec(i: int = 0, *, tenant: str = "acme", stream: str = "usage", at: datetime | None = None, **kw) -> Record:
    return Record(
        id=new_id(), tenant=tenant, stream=stream, source="http",
        received_at=at or T0 + timedelta(seconds=i), payload={"i": i, "nested": {"ok": True}}, **kw,
    )


async def test_round_trip(any_store: Store) -> None:
    r = rec(
        1,
        event_time=datetime(2025, 3, 1, 13, 0, tzinfo=timezone(timedelta(hours=2))),
        idempotency_key="k-1",
        attachments=[Attachment("blobs/acme/x", "ab" * 32, 42, "image/png")],
    )
    assert await any_store.insert_records([r]) == 1
    [got] = await any_store.query_records("acme", "usage")
    assert got == {
        "id": r.id,
        "tenant": "acme",
        "stream": "usage",
        "source": "http",
        "received_at": "2025-03-01T12:00:01.123456Z",
        "event_time": "2025-03-01T11:00:00Z",
        "idempotency_key": "k-1",
        "payload": {"i": 1, "nested": {"ok": True}},
        "attachments": [{"key": "blobs/acme/x", "sha256": "ab" * 32, "size": 42, "content_type": "image/png", "name": None, "metadata": {}}],
    }
    # the query form decodes back to the same record
    assert Record.from_dict(got) == Record.from_dict(r.to_dict())


async def test_times_come_back_tz_aware_utc(any_store: Store) -> None:
    from sluiceway.store.schema import records

    local = datetime(2025, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    await any_store.insert_records([rec(at=local)])
    async with any_store.engine.connect() as conn:
        row = (await conn.execute(records.select())).mappings().one()
    assert row["received_at"] == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert row["received_at"].utcoffset() == timedelta(0)
    assert row["event_time"] is None


async def test_insert_is_idempotent_on_id(any_store: Store) -> None:
    batch = [rec(i) for i in range(10)]
    assert await any_store.insert_records(batch) == 10
    assert await any_store.insert_records(batch) == 0
    fresh = [rec(100), rec(101)]
    assert await any_store.insert_records(batch[:3] + fresh) == 2
    assert len(await any_store.query_records("acme", "usage", limit=1000)) == 12


async def test_duplicates_inside_one_batch_count_once(any_store: Store) -> None:
    r = rec()
    assert await any_store.insert_records([r, r, r]) == 1


async def test_empty_batch(any_store: Store) -> None:
    assert await any_store.insert_records([]) == 0


async def test_pagination_with_after_id(any_store: Store) -> None:
    batch = [rec(i) for i in range(25)]
    await any_store.insert_records(list(reversed(batch)))  # insertion order must not matter
    seen: list[str] = []
    after = None
    while True:
        page = await any_store.query_records("acme", "usage", after_id=after, limit=10)
        if not page:
            break
        seen += [p["id"] for p in page]
        after = page[-1]["id"]
    assert seen == [r.id for r in batch]  # UUIDv7: oldest first


async def test_since_and_until_bound_received_at(any_store: Store) -> None:
    await any_store.insert_records([rec(i) for i in range(10)])
    got = await any_store.query_records("acme", "usage", since=T0 + timedelta(seconds=3), until=T0 + timedelta(seconds=6))
    assert [g["payload"]["i"] for g in got] == [3, 4, 5]
    # a naive bound is taken as UTC; an offset bound is converted
    got = await any_store.query_records("acme", "usage", since=(T0 + timedelta(seconds=8)).astimezone(timezone(timedelta(hours=-5))))
    assert [g["payload"]["i"] for g in got] == [8, 9]
    got = await any_store.query_records("acme", "usage", since=(T0 + timedelta(seconds=9)).replace(tzinfo=None))
    assert [g["payload"]["i"] for g in got] == [9]


async def test_tenant_and_stream_are_separate(any_store: Store) -> None:
    await any_store.insert_records([rec(1), rec(2, tenant="other"), rec(3, stream="error")])
    assert [g["payload"]["i"] for g in await any_store.query_records("acme", "usage")] == [1]
    assert [g["payload"]["i"] for g in await any_store.query_records("other", "usage")] == [2]
    assert [g["payload"]["i"] for g in await any_store.query_records("acme", "error")] == [3]
    assert await any_store.query_records("nobody", "usage") == []


async def test_limit(any_store: Store) -> None:
    await any_store.insert_records([rec(i) for i in range(5)])
    assert len(await any_store.query_records("acme", "usage", limit=2)) == 2
    assert await any_store.query_records("acme", "usage", limit=0) == []


async def test_bad_after_id_is_a_bad_request(any_store: Store) -> None:
    with pytest.raises(BadRequest):
        await any_store.query_records("acme", "usage", after_id="not-a-uuid")


async def test_unicode_and_large_payloads(any_store: Store) -> None:
    r = Record(id=new_id(), tenant="acme", stream="log", source="s", received_at=T0,
               payload={"msg": "héllo ✓ 🚀", "blob": "x" * 200_000, "list": list(range(100))})
    await any_store.insert_records([r])
    [got] = await any_store.query_records("acme", "log")
    assert got["payload"] == r.payload


async def test_sqlite_commits_a_large_batch_in_small_transactions(tmp_path, monkeypatch) -> None:
    """Each SQLite transaction holds about SQLITE_COMMIT_BYTES of rows (a journal on the same
    disk then never syncs behind a large WAL write); the batch is whole all the same, and a
    batch sent again after a crash between its transactions stores only what was missing."""
    import sqlalchemy as sa

    from sluiceway.store import records as records_mod

    from tests.fixtures.postgres import open_store

    store = await open_store(f"sqlite:///{tmp_path / 'sluice.db'}")  # PostgreSQL: one COPY + INSERT
    monkeypatch.setattr(records_mod, "SQLITE_COMMIT_BYTES", 8 * 1024)
    commits: list[int] = []
    sa.event.listen(store.engine.sync_engine, "commit", lambda conn: commits.append(1))
    batch = [rec(i, attachments=[]) for i in range(300)]
    for r in batch:
        r.payload["text"] = "x" * 200
    assert await store.insert_records(batch[:70]) == 70  # as if cut short by a crash
    commits.clear()
    assert await store.insert_records(batch) == 230
    assert 13 <= len(commits) <= 16  # 300 rows × ~400 B / 8 KiB
    got = await store.query_records("acme", "usage", limit=1000)
    assert sorted(g["id"] for g in got) == sorted(r.id for r in batch)
    await store.aclose()


def test_commit_chunks_cover_every_row_once() -> None:
    from sluiceway.store.records import SQLITE_COMMIT_BYTES, _commit_chunks

    def row(n: int) -> tuple:
        return ("id", "t", "s", "", None, None, None, "x" * n, "[]")

    assert _commit_chunks([]) == []
    huge = [row(SQLITE_COMMIT_BYTES * 2), row(10), row(10)]
    assert [len(c) for c in _commit_chunks(huge)] == [1, 2]  # a row over the size is alone
    rows = [row(1000) for _ in range(1000)]
    chunks = _commit_chunks(rows)
    assert sum(chunks, []) == rows and len(chunks) == -(-len(rows) * (1000 + 2 + 160) // SQLITE_COMMIT_BYTES)
