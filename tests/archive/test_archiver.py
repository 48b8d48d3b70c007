"""Archiving: export, verify, delete; interrupted at each step and resumed, nothing lost or doubled."""

from __future__ import annotations

import asyncio
import gzip
from datetime import timedelta

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sluiceway.archive import Archiver
from sluiceway.feedback.item import FeedbackItem, feedback_id
from sluiceway.objectstore import open_store
from sluiceway.record import utcnow


async def seed(store, n_old: int, n_new: int) -> None:
    now = utcnow()
    items = []
    for i in range(n_old + n_new):
        t = now - timedelta(days=200 if i < n_old else 1, seconds=i)
        it = FeedbackItem("x", "", f"e{i}", f"body {i}", t)
        items.append(("acme", it.payload("acme")))
    await store.upsert_feedback(items)


def archived_ids(root) -> list[str]:
    ids = []
    for p in sorted(root.rglob("*.jsonl.gz")):
        ids += [orjson.loads(line)["external_id"] for line in gzip.decompress(p.read_bytes()).splitlines()]
    for p in sorted(root.rglob("*.parquet")):
        ids += pq.read_table(p).column("external_id").to_pylist()
    return ids


async def test_archive_exports_verifies_and_deletes(any_store, tmp_path):
    await seed(any_store, 250, 30)
    objects = open_store(local_path=tmp_path / "objects")
    a = Archiver(any_store, objects, "feedback", utcnow() - timedelta(days=90), chunk_rows=100)
    assert await a.count() == 250
    summary = await a.run()
    assert summary.rows == 250 and summary.chunks == 3
    assert await a.count() == 0
    assert len(await any_store.query_feedback("acme", limit=1000)) == 30
    ids = archived_ids(tmp_path / "objects")
    assert sorted(ids) == sorted(f"e{i}" for i in range(250))
    manifests = list((tmp_path / "objects").rglob("*.manifest.json"))
    assert len(manifests) == 3 and all(orjson.loads(m.read_bytes())["state"] == "complete" for m in manifests)
    assert (await a.run()).rows == 0  # idempotent


async def test_parquet_chunks_keep_the_columns_and_their_types(any_store, tmp_path):
    await seed(any_store, 120, 5)
    before = {r["external_id"]: r for r in await any_store.query_feedback("acme", limit=1000)}
    objects = open_store(local_path=tmp_path / "objects")
    a = Archiver(any_store, objects, "feedback", utcnow() - timedelta(days=90), chunk_rows=100,
                 file_format="parquet")
    summary = await a.run()
    assert (summary.rows, summary.chunks) == (120, 2) and all(k.endswith(".parquet") for k in summary.objects)
    table = pa.concat_tables(pq.read_table(p) for p in sorted((tmp_path / "objects").rglob("*.parquet")))
    assert table.num_rows == 120
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("rating").type == pa.int64() and table.schema.field("metadata").type == pa.string()
    for row in table.to_pylist():
        was = before[row["external_id"]]
        assert row["id"] == was["id"] and row["body"] == was["body"] and row["tenant_id"] == "acme"
        assert row["created_at"].isoformat().replace("+00:00", "Z") == was["created_at"]
        assert orjson.loads(row["metadata"]) == was["metadata"]
    manifest = orjson.loads(next((tmp_path / "objects").rglob("*.manifest.json")).read_bytes())
    assert manifest["format"] == "parquet" and manifest["state"] == "complete"
    assert len(await any_store.query_feedback("acme", limit=1000)) == 5


def test_unknown_format_is_refused(sqlite_store, tmp_path):
    with pytest.raises(ValueError, match="formats: jsonl.gz, parquet"):
        Archiver(sqlite_store, open_store(local_path=tmp_path), "feedback", utcnow(), file_format="csv")


@pytest.mark.parametrize("file_format", ["jsonl.gz", "parquet"])
@pytest.mark.parametrize("crash_after", ["export", "delete"])
async def test_interrupted_run_is_finished_by_the_next(any_store, tmp_path, crash_after, file_format):
    await seed(any_store, 150, 0)
    objects = open_store(local_path=tmp_path / "objects")
    cutoff = utcnow() - timedelta(days=90)
    a = Archiver(any_store, objects, "feedback", cutoff, chunk_rows=100, file_format=file_format)
    rows = await a._next_chunk()
    key, manifest = await a._export(rows)  # crash here: object + manifest (exported), rows still present
    if crash_after == "delete":
        real_put = objects.put

        async def crash_on_manifest(k, *args, **kw):  # the delete happened, the final manifest is lost
            if k.endswith(".manifest.json"):
                raise OSError("crash")
            return await real_put(k, *args, **kw)

        objects.put = crash_on_manifest
        with pytest.raises(OSError):
            await a._finish(f"{key}.manifest.json", manifest)
        objects.put = real_put
    # new rows older than the cutoff arrive before the rerun: they must go in their own chunk
    await any_store.upsert_feedback([("acme", FeedbackItem("x", "", "late", "late", cutoff - timedelta(days=400))
                                      .payload("acme"))])
    summary = await Archiver(any_store, objects, "feedback", cutoff, chunk_rows=100).run()  # default format now
    assert summary.resumed == 1
    ids = archived_ids(tmp_path / "objects")
    assert sorted(ids) == sorted([f"e{i}" for i in range(150)] + ["late"])  # each row exactly once
    assert len(await any_store.query_feedback("acme", limit=1000)) == 0


async def test_tampered_object_is_not_trusted(sqlite_store, tmp_path):
    await seed(sqlite_store, 10, 0)
    objects = open_store(local_path=tmp_path / "objects")
    a = Archiver(sqlite_store, objects, "feedback", utcnow() - timedelta(days=90))
    key, _ = await a._export(await a._next_chunk())
    await objects.put(key, gzip.compress(b"{}\n"))
    with pytest.raises(RuntimeError, match="does not match"):
        await Archiver(sqlite_store, objects, "feedback", utcnow() - timedelta(days=90)).run()
    assert await a.count() == 10  # nothing deleted


def test_cli_archive(tmp_path):
    import asyncio

    from typer.testing import CliRunner

    from sluiceway.cli import app
    from sluiceway.store import open_store as open_db

    data = tmp_path / "data"

    async def setup():
        store = await open_db(f"sqlite:///{data / 'sluice.db'}")
        await seed(store, 40, 5)
        await store.aclose()

    data.mkdir()
    asyncio.run(setup())
    r = CliRunner().invoke(app, ["archive", "--table", "feedback", "--older-than", "90d", "--data-dir", str(data),
                                 "--dry-run"])
    assert r.exit_code == 0 and "40 feedback rows" in r.output
    r = CliRunner().invoke(app, ["archive", "--table", "feedback", "--older-than", "90d", "--data-dir", str(data)])
    assert r.exit_code == 0 and "archived 40 feedback rows" in r.output, r.output
    assert len(archived_ids(data / "objects" / "archive")) == 40
    asyncio.run(setup())
    r = CliRunner().invoke(app, ["archive", "--table", "feedback", "--older-than", "90d", "--data-dir", str(data),
                                 "--format", "parquet"])
    assert r.exit_code == 0 and "archived 40 feedback rows" in r.output, r.output
    assert len(list((data / "objects" / "archive").rglob("*.parquet"))) == 1
    r = CliRunner().invoke(app, ["archive", "--table", "nope", "--older-than", "90d", "--data-dir", str(data)])
    assert r.exit_code == 2 and "cannot archive" in r.output
    assert feedback_id  # imported for readers: ids are uuid5 of the identity


async def test_scheduled_jobs_archive_and_keep_going(sqlite_store, tmp_path):
    import asyncio

    from sluiceway.archive.jobs import schedule
    from tests.helpers import eventually, make_config

    await seed(sqlite_store, 30, 3)
    cfg = make_config(tmp_path / "data", archive={"jobs": [{"table": "feedback", "older_than": "90d", "every": "1h"},
                                                            {"table": "ldos", "older_than": "90d"}]})
    task = asyncio.create_task(schedule(cfg, sqlite_store, first_run_after=0))
    try:
        async def archived():
            return len(await sqlite_store.query_feedback("acme", limit=100)) == 3

        await eventually(archived)
        assert not task.done()  # still scheduled for the next interval
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert len(archived_ids(tmp_path / "data" / "objects" / "archive")) == 30


async def test_logs_to_parquet_every_column_type(any_store, tmp_path):
    """The logs table has the widest mix of column types (and is partitioned on PostgreSQL)."""
    from sluiceway.logs.pino import normalise
    from tests.logs.test_pino import PINO

    old = utcnow() - timedelta(days=100)
    base = {k: v for k, v in PINO.items() if k != "timestamp"}  # the time comes from "time" (epoch ms)
    rows = [normalise({**base, "time": int((old + timedelta(seconds=i)).timestamp() * 1000)},
                      id=f"0192b7a0-0000-7000-8000-{i:012d}", tenant="acme", fallback=old) for i in range(30)]
    assert await any_store.insert_logs(rows) == 30
    a = Archiver(any_store, open_store(local_path=tmp_path), "logs", utcnow() - timedelta(days=90),
                 file_format="parquet")
    assert (await a.run()).rows == 30
    table = pq.read_table(next(tmp_path.rglob("*.parquet")))
    got = table.to_pylist()
    assert table.schema.field("time").type == pa.timestamp("us", tz="UTC")
    assert sorted(r["id"] for r in got) == sorted(r["id"] for r in rows)
    first = min(got, key=lambda r: r["time"])
    want = min(rows, key=lambda r: r["time"])
    assert first["time"] == want["time"] and first["level"] == want["level"] and first["url"] == want["url"]
    assert orjson.loads(first["headers"]) == want["headers"] and orjson.loads(first["raw"]) == want["raw"]
    assert await a.count() == 0


async def test_an_exclusive_rerun_clears_what_a_killed_write_left(sqlite_store, tmp_path):
    await seed(sqlite_store, 10, 0)
    objects = open_store(local_path=tmp_path / "objects")
    cutoff = utcnow() - timedelta(days=90)
    a = Archiver(sqlite_store, objects, "feedback", cutoff)
    rows = await a._next_chunk()
    key, _ = await a._export(rows)  # the key the rerun writes again
    obj = tmp_path / "objects" / key
    obj.unlink()
    (obj.parent / f"{obj.name}.manifest.json").unlink()
    leftover = obj.parent / f"{obj.name}#4242"  # a run killed while writing the object
    leftover.write_bytes(b"partial")
    summary = await Archiver(sqlite_store, objects, "feedback", cutoff, exclusive=True).run()
    assert summary.rows == 10 and obj.exists() and not leftover.exists()


def test_one_archive_run_per_table_at_a_time(tmp_path):
    from sluiceway.archive.jobs import ArchiveBusy, archive_lock

    with archive_lock(tmp_path, "feedback"):
        with pytest.raises(ArchiveBusy, match="another archive run of table 'feedback'"):
            with archive_lock(tmp_path, "feedback"):
                pass
        with archive_lock(tmp_path, "logs"):  # another table: fine
            pass
    with archive_lock(tmp_path, "feedback"):  # released
        pass


async def test_a_busy_table_skips_the_scheduled_turn_and_the_cli_refuses(sqlite_store, tmp_path):
    from typer.testing import CliRunner

    from sluiceway.archive.jobs import archive_lock, run_job
    from sluiceway.cli import app
    from tests.helpers import make_config

    await seed(sqlite_store, 5, 0)
    cfg = make_config(tmp_path / "data", archive={"jobs": [{"table": "feedback", "older_than": "90d"}]})
    with archive_lock(cfg.data_dir, "feedback"):
        assert await run_job(cfg, sqlite_store, cfg.archive.jobs[0]) is None
        r = await asyncio.to_thread(CliRunner().invoke, app, [
            "archive", "--table", "feedback", "--older-than", "90d", "--data-dir", str(cfg.data_dir)])
        assert r.exit_code == 1 and "another archive run of table 'feedback' is in progress" in r.output, r.output
    assert (await run_job(cfg, sqlite_store, cfg.archive.jobs[0])).rows == 5


async def test_gateways_sharing_a_postgresql_database_archive_a_table_one_at_a_time(pg_store, postgres_url, tmp_path):
    """Two gateways with their own data dirs and one PostgreSQL database: the file lock alone
    would let both archive the same table into the same destination at once."""
    from sluiceway.archive.jobs import ArchiveBusy, archive_run_lock
    from sluiceway.store import Store

    other = await Store.from_url(postgres_url).open(migrate=False)
    try:
        async with archive_run_lock(tmp_path / "a", pg_store, "feedback"):
            with pytest.raises(ArchiveBusy, match="on a gateway sharing this database"):
                async with archive_run_lock(tmp_path / "b", other, "feedback"):
                    pass
            async with archive_run_lock(tmp_path / "b", other, "logs"):  # another table: fine
                pass
        async with archive_run_lock(tmp_path / "b", other, "feedback"):  # released
            pass
        async with pg_store.try_lock("archive:feedback") as got:
            assert got  # released by the run above as well
    finally:
        await other.aclose()


async def test_sqlite_store_lock_is_the_data_dirs(sqlite_store, tmp_path):
    async with sqlite_store.try_lock("archive:feedback") as a:
        async with sqlite_store.try_lock("archive:feedback") as b:
            assert a and b  # the file lock of archive_lock does the work on SQLite
