"""The logs sink: pino records → the logs table, re-delivery harmless, daily partitions on PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
import pytest
import sqlalchemy as sa

from sluiceway.errors import RejectedRecords
from sluiceway.sinks.base import Batch
from sluiceway.sinks.context import SinkContext
from sluiceway.sinks.logs import LogsSink, LogsSinkConfig
from sluiceway.sources.collect.process import record_id

UTC = timezone.utc
DAY = 86_400_000
T0 = 1743532098671  # 2025-04-01T18:28:18.671Z


def doc(i: int, payload, tenant: str = "acme", event_time: str | None = None) -> bytes:
    return orjson.dumps({"id": record_id("logs", "f.json.gz", "e1", i), "tenant": tenant, "stream": "log",
                         "source": "bucket:logs", "received_at": f"2026-11-23T10:00:0{i % 10}Z",
                         "event_time": event_time, "idempotency_key": None, "attachments": [], "payload": payload})


def pino(i: int, **kw):
    return {"level": 30 + 10 * (i % 3), "time": T0 + (i % 3) * DAY, "hostname": f"h{i % 2}", "context": "Api",
            "msg": f"line {i}", "req": {"headers": {"authorization": "Bearer t0ps3cret"}, "method": "GET"},
            "_file": {"key": "f.json.gz", "line": i}, **kw}


def sink(store) -> LogsSink:
    return LogsSink("logs", LogsSinkConfig(name="logs"), SinkContext(data_dir=None, store=store))


async def count(store) -> int:
    async with store.engine.connect() as conn:
        return (await conn.execute(sa.text("SELECT count(*) FROM logs"))).scalar()


async def test_rows_redelivery_and_rejects(any_store):
    s = sink(any_store)
    raw = [doc(i, pino(i)) for i in range(1, 7)]
    await s.send(Batch("p", 1, 6, raw=raw))
    await s.send(Batch("p", 1, 6, raw=raw))  # re-delivered: nothing changes
    assert await count(any_store) == 6
    rows = await any_store.query_logs("acme", limit=100)
    assert {r["message"] for r in rows[:2]} == {"line 3", "line 6"}  # oldest first
    assert {r["level"] for r in rows} == {"info", "warn", "error"}
    assert all(r["headers"]["authorization"] == "[REDACTED]" for r in rows)
    assert "t0ps3cret" not in orjson.dumps(rows).decode()
    assert {(r["file"], r["line"]) for r in rows} == {("f.json.gz", i) for i in range(1, 7)}
    assert rows[0]["time"] == "2025-04-01T18:28:18.671000Z"
    # no time in the record: the record's event_time (stable), else received_at
    await s.send(Batch("p", 7, 8, raw=[doc(7, {"msg": "no time"}, event_time="2025-01-02T03:04:05Z"),
                                        doc(8, {"msg": "no time either"})]))
    got = {r["message"]: r["time"] for r in await any_store.query_logs("acme", limit=100)}
    assert got["no time"] == "2025-01-02T03:04:05Z" and got["no time either"] == "2026-11-23T10:00:08Z"
    with pytest.raises(RejectedRecords) as e:
        await s.send(Batch("p", 9, 10, raw=[doc(9, pino(9)), orjson.dumps({
            "id": record_id("x", "y", "z", 1), "tenant": "acme", "stream": "log", "source": "http",
            "received_at": "2026-11-23T10:00:00Z", "payload": [1, 2]})]))
    assert list(e.value.rejected) == [1]
    assert await count(any_store) == 9  # the good one of that batch was stored


async def test_filters_and_tenants(any_store):
    await sink(any_store).send(Batch("p", 1, 7, raw=[doc(i, pino(i)) for i in range(1, 7)]
                                     + [doc(7, pino(7), tenant="globex")]))
    q = any_store.query_logs
    assert len(await q("acme", limit=100)) == 6 and len(await q("globex", limit=100)) == 1
    assert {r["severity"] for r in await q("acme", min_severity=40, limit=100)} == {40, 50}
    assert all(r["hostname"] == "h1" for r in await q("acme", hostname="h1", limit=100))
    assert [r["message"] for r in await q("acme", q="LINE 4", limit=100)] == ["line 4"]
    assert await q("acme", context="Other", limit=100) == []
    first = await q("acme", limit=2)
    last = first[-1]
    rest = await q("acme", after=(datetime.fromisoformat(last["time"]), last["id"]), limit=100)
    assert len(rest) == 4 and not {r["id"] for r in rest} & {r["id"] for r in first}


async def test_daily_partitions_on_postgresql(pg_store):
    assert await pg_store.logs_partitioning() == "native"  # TimescaleDB is not installed here
    await sink(pg_store).send(Batch("p", 1, 6, raw=[doc(i, pino(i)) for i in range(1, 7)]))
    async with pg_store.engine.connect() as conn:
        parts = (await conn.execute(sa.text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'logs'::regclass"))).scalars().all()
        per = dict((await conn.execute(sa.text(
            "SELECT tableoid::regclass::text, count(*) FROM logs GROUP BY 1"))).all())
    assert {"logs_p20250401", "logs_p20250402", "logs_p20250403"} <= set(parts)
    assert per == {f"sluice_log_partitions.logs_p2025040{d}": 2 for d in (1, 2, 3)}
    # a second store (another process) finds the partitions already there
    from sluiceway.store import open_store

    other = await open_store(pg_store.url.url.render_as_string(hide_password=False))
    try:
        assert await other.ensure_log_partitions({datetime(2025, 4, 1, tzinfo=UTC).date()}) == ["logs_p20250401"]
    finally:
        await other.aclose()


async def collected(key: str, lines: list[dict]) -> list[bytes]:
    """The journal entries the collector makes of one gzip file (version "e1")."""
    import gzip
    from types import SimpleNamespace

    from sluiceway.sources.collect.process import FileJob

    cfg = SimpleNamespace(name="applogs", type="bucket", tenant="acme", stream="log", location="s3://b",
                          batch_records=1000, lease=300, decoder="auto", compression="auto",
                          max_item_bytes=1 << 20, max_bad_share=0.1)
    out: list[bytes] = []

    async def append(batch: list[bytes]) -> None:
        out.extend(batch)

    async def renew() -> bool:
        return True

    async def chunks():
        yield gzip.compress(orjson.dumps(lines))

    await FileJob(cfg, key, "e1", datetime(2025, 4, 1, tzinfo=UTC), append, renew).run(chunks())
    return out


async def all_rows(store) -> list[dict]:
    async with store.engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(sa.text("SELECT * FROM logs ORDER BY time, id"))).mappings()]


async def test_straight_copy_and_careful_fallback_on_postgresql(pg_store):
    """New rows go straight into logs; a re-delivered batch, a reprocessed file (cut into other
    batches), a line twice in one batch and a day without a partition take the careful way:
    no error, no duplicate, the same rows."""
    s = sink(pg_store)
    careful = []
    ensure = pg_store.ensure_log_partitions

    async def spy(days):  # called on the careful way only
        careful.append(sorted(days))
        return await ensure(days)

    pg_store.ensure_log_partitions = spy
    lines = [pino(i, time=T0 + i * 60_000) for i in range(1, 41)]
    first = await collected("a.json.gz", lines)
    await s.send(Batch("p", 1, 20, raw=first[:20]))  # a new day: partition made on the way
    await s.send(Batch("p", 21, 40, raw=first[20:]))
    assert len(careful) <= 1  # at most the first batch (if its day was new to the database)
    await s.send(Batch("p", 21, 40, raw=first[20:]))  # re-delivered
    assert len(careful) <= 2 and careful[-1] == [datetime(2025, 4, 1).date()]
    stored = await all_rows(pg_store)
    assert len(stored) == 40
    again = await collected("a.json.gz", lines)  # the same file reprocessed: same ids
    assert [orjson.loads(a)["id"] for a in again] == [orjson.loads(f)["id"] for f in first]
    await s.send(Batch("p", 41, 55, raw=again[:15]))
    await s.send(Batch("p", 56, 80, raw=again[15:] + again[15:18]))  # lines twice in one batch
    more = await collected("b.json.gz", [pino(i, time=T0 + 3 * DAY + i) for i in range(1, 6)])
    await s.send(Batch("p", 81, 90, raw=again[30:35] + more))  # old and new rows, a new day
    got = await all_rows(pg_store)
    assert len(got) == 45
    assert [r for r in got if r["file"] == "a.json.gz"] == stored
    assert {r["line"] for r in got if r["time"] >= datetime(2025, 4, 4, tzinfo=UTC)} == set(range(1, 6))
    assert careful[-1] == [datetime(2025, 4, 1).date(), datetime(2025, 4, 4).date()]


async def test_nul_characters_in_a_line(any_store):
    """PostgreSQL's text and jsonb cannot hold NUL: there it is stored as U+FFFD (as in records);
    SQLite keeps the line's text as read. The line is stored either way, not rejected."""
    await sink(any_store).send(Batch("p", 1, 1, raw=[doc(1, pino(1, msg="a\x00b", context="C\x00",
                                                                 extra={"k": "v\x00"}))]))
    [row] = await any_store.query_logs("acme", limit=10)
    nul = "\ufffd" if any_store.dialect == "postgresql" else "\x00"
    assert (row["message"], row["context"], row["raw"]["extra"]) == (f"a{nul}b", f"C{nul}", {"k": f"v{nul}"})
