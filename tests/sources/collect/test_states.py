"""The files table's state machine (store.files), on SQLite and PostgreSQL."""

from datetime import timedelta

from sluiceway.record import utcnow
from sluiceway.store.files import Listed

SRC, LOC = "logs", "s3://b/p"


def listed(*pairs):
    return [Listed(k, v, 10, utcnow()) for k, v in pairs]


async def status(store, key):
    return next(r for r in await store.list_files(source=SRC) if r["key"] == key)


async def test_discover_claim_complete_and_version_change(any_store):
    st = any_store
    assert await st.sync_files(SRC, LOC, listed(("a", "1"), ("b", "1"))) == (2, 0)
    assert await st.sync_files(SRC, LOC, listed(("a", "1"), ("b", "1"))) == (0, 0)  # keys seen, not a watermark
    rows = await st.claim_files(SRC, LOC, lease=60, max_attempts=3, limit=5)
    assert sorted(r.key for r in rows) == ["a", "b"] and all(r.attempts == 1 for r in rows)
    assert await st.claim_files(SRC, LOC, lease=60, max_attempts=3) == []  # claimed: not eligible
    a = next(r for r in rows if r.key == "a")
    assert await st.finish_file(a, status="completed", record_count=5, bad_line_count=1,
                                bad_lines=[{"line": 3, "error": "x"}])
    row = await status(st, "a")
    assert (row["status"], row["record_count"], row["bad_line_count"], row["bad_lines"]) == (
        "completed", 5, 1, [{"line": 3, "error": "x"}])
    assert row["completed_at"] is not None
    # a new ETag: back to pending with counters reset, whatever the state
    assert await st.sync_files(SRC, LOC, listed(("a", "2"), ("b", "1"))) == (0, 1)
    row = await status(st, "a")
    assert (row["status"], row["version"], row["attempts"], row["record_count"]) == ("pending", "2", 0, None)
    # other sources and locations are separate
    assert await st.claim_files("other", LOC, lease=60, max_attempts=3) == []


async def test_lease_takeback_and_lost_claim(any_store):
    st = any_store
    await st.sync_files(SRC, LOC, listed(("a", "1")))
    [first] = await st.claim_files(SRC, LOC, lease=60, max_attempts=3)
    later = utcnow() + timedelta(seconds=61)
    [second] = await st.claim_files(SRC, LOC, lease=60, max_attempts=3, now=later)  # the worker crashed
    assert second.attempts == 2 and second.claim != first.claim
    assert not await st.finish_file(first, status="completed")  # the old claim cannot finish it
    assert not await st.renew_lease(first, 60)
    assert await st.renew_lease(second, 60)
    assert (await status(st, "a"))["status"] == "processing"
    assert await st.finish_file(second, status="completed", record_count=1)
    # a lease that ends on the last attempt parks the file
    await st.sync_files(SRC, LOC, listed(("b", "1")))
    [b] = await st.claim_files(SRC, LOC, lease=1, max_attempts=1)
    assert await st.claim_files(SRC, LOC, lease=1, max_attempts=1, now=utcnow() + timedelta(seconds=5)) == []
    row = await status(st, "b")
    assert row["status"] == "parked" and "lease expired" in row["last_error"]


async def test_backoff_parking_and_retry(any_store):
    st = any_store
    await st.sync_files(SRC, LOC, listed(("a", "1"), ("b", "1")))
    [a, b] = sorted(await st.claim_files(SRC, LOC, lease=60, max_attempts=2, limit=2))
    soon = utcnow() + timedelta(seconds=30)
    await st.finish_file(a, status="failed", error="corrupt gzip", next_attempt_at=soon)
    assert await st.claim_files(SRC, LOC, lease=60, max_attempts=2) == []  # not before its time
    [again] = await st.claim_files(SRC, LOC, lease=60, max_attempts=2, now=soon + timedelta(seconds=1))
    assert again.key == "a" and again.attempts == 2
    await st.finish_file(again, status="parked", error="corrupt gzip")
    await st.finish_file(b, status="failed", error="x", next_attempt_at=soon)
    assert {r["key"] for r in await st.list_files(status="parked")} == {"a"}
    assert await st.retry_files(all_failed=True) == 2
    rows = {r["key"]: r for r in await st.list_files(source=SRC)}
    assert all(r["status"] == "pending" and r["attempts"] == 0 for r in rows.values())
    [c] = await st.claim_files(SRC, LOC, lease=60, max_attempts=2)
    assert await st.retry_files(key=c.key) == 0  # being processed: left alone
    assert await st.release_file(c)  # a clean shutdown hands it back uncounted
    assert (await status(st, c.key))["attempts"] == 0
    assert await st.retry_files(key="nope") == 0
