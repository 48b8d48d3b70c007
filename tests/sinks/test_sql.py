import asyncio
import socket
import sqlite3
from pathlib import Path

import orjson
import pydantic
import pytest
from sqlalchemy import exc as sa_exc

from sluiceway.errors import PermanentError, TransientError
from sluiceway.record import Record, new_id, utcnow
from sluiceway.sinks.base import Batch
from sluiceway.sinks.context import SinkContext
from sluiceway.sinks.sql import SqlSink, SqlSinkConfig, classify
from sluiceway.store import Store, open_store


def records(n: int, **payload) -> list[Record]:
    return [
        Record(id=new_id(), tenant="acme", stream="usage", source="t", received_at=utcnow(), payload={"i": i, **payload})
        for i in range(n)
    ]


def batch(recs: list[Record], first: int = 1) -> Batch:
    return Batch("w0", first, first + len(recs) - 1, recs)


def sink_for(store: Store, tmp_path: Path, url: str | None = None, **cfg) -> SqlSink:
    config = SqlSinkConfig(name="db", type="sql", url=url, **cfg)
    return SqlSink("db", config, SinkContext(data_dir=tmp_path, store=store))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def entry(payload: bytes, **fields) -> bytes:
    """A journal entry as the HTTP path writes it: the payload's text embedded as sent."""
    head = {"id": new_id(), "tenant": "acme", "stream": "usage", "source": "http",
            "received_at": "2026-01-02T03:04:05.000001Z", "idempotency_key": None, "attachments": [],
            "event_time": None, **fields}
    return orjson.dumps(head)[:-1] + b',"payload":' + payload + b"}"


# -- config -------------------------------------------------------------------------------

def test_config_defaults_and_validation() -> None:
    cfg = SqlSinkConfig(name="db", type="sql")
    assert cfg.url is None and cfg.timeout == 60.0
    assert SqlSinkConfig(name="db", url="postgres://u@h/d", timeout="5s").timeout == 5.0
    with pytest.raises(pydantic.ValidationError, match="unsupported database URL"):
        SqlSinkConfig(name="db", type="sql", url="mysql://u@h/d")
    with pytest.raises(pydantic.ValidationError):
        SqlSinkConfig(name="db", type="sql", tabel="x")  # unknown keys are errors


# -- sending ------------------------------------------------------------------------------

async def test_payload_text_is_stored_as_sent(any_store: Store, tmp_path: Path) -> None:
    """The SQL sink binds each payload's JSON text from the journal without decoding it: what
    orjson refuses (1e999, integers past 64 bits) is stored and read back; null becomes {}."""
    raw = [entry(b'{"n": 1e999, "big": 123456789012345678901234567890, "s": "\\u00e9t\\u00e9"}'),
           entry(b"null"), entry(b'"a report kept as text"', event_time="2025-11-23T13:20:00.123Z")]
    await sink_for(any_store, tmp_path).send(Batch("w0", 1, 3, raw=raw))
    got = await any_store.query_records("acme", "usage", limit=10)
    n = got[0]["payload"].pop("n")
    assert n == float("inf") or n == 10**999  # SQLite keeps a double, PostgreSQL's jsonb the exact number
    assert [g["payload"] for g in got] == [
        {"big": 123456789012345678901234567890, "s": "été"}, {}, "a report kept as text"]
    assert got[2]["event_time"] == "2025-11-23T13:20:00.123000Z"


async def test_send_to_the_gateway_store(any_store: Store, tmp_path: Path) -> None:
    sink = sink_for(any_store, tmp_path)
    recs = records(20)
    await sink.send(batch(recs))
    await sink.send(batch(recs))  # re-delivery of the same batch is harmless
    got = await any_store.query_records("acme", "usage", limit=100)
    assert [g["id"] for g in got] == [r.id for r in recs]
    await sink.healthcheck()
    await sink.send(batch([]))  # nothing to do
    await sink.aclose()
    await sink.aclose()
    await any_store.ping()  # the gateway's store is not the sink's to close


async def test_own_store_opened_lazily_and_migrated(sqlite_store: Store, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'warehouse' / 'w.db'}"
    sink = sink_for(sqlite_store, tmp_path, url=url)
    assert not (tmp_path / "warehouse").exists()  # nothing happens until the first send
    recs = records(3)
    await sink.send(batch(recs))
    await sink.aclose()
    assert await sqlite_store.query_records("acme", "usage") == []  # not the gateway store
    other = await open_store(url)
    try:
        assert len(await other.query_records("acme", "usage")) == 3
    finally:
        await other.aclose()
    with pytest.raises(TransientError):  # closed sinks do not reopen behind delivery's back
        await sink.send(batch(recs))


async def test_own_postgres_store(sqlite_store: Store, postgres_url: str, tmp_path: Path) -> None:
    sink = sink_for(sqlite_store, tmp_path, url=postgres_url)
    try:
        await sink.healthcheck()
        recs = records(50)
        await sink.send(batch(recs))
        await sink.send(batch(recs))
    finally:
        await sink.aclose()
    store = await open_store(postgres_url)
    try:
        got = await store.query_records("acme", "usage", limit=1000)
        assert {r.id for r in recs} <= {g["id"] for g in got}
    finally:
        await store.aclose()


async def test_concurrent_sends_open_one_store(sqlite_store: Store, tmp_path: Path) -> None:
    sink = sink_for(sqlite_store, tmp_path, url=f"sqlite:///{tmp_path / 'w.db'}")
    try:
        await asyncio.gather(*(sink.send(batch(records(5), first=i * 5 + 1)) for i in range(4)))
        own = sink._own
        assert own is not None
        assert len(await own.query_records("acme", "usage", limit=100)) == 20
    finally:
        await sink.aclose()


# -- classification -----------------------------------------------------------------------

async def test_unreachable_postgres_is_transient(sqlite_store: Store, tmp_path: Path) -> None:
    url = f"postgresql://postgres:secret-pw@127.0.0.1:{closed_port()}/nope"
    sink = sink_for(sqlite_store, tmp_path, url=url, timeout=20)
    with pytest.raises(TransientError) as ei:
        await sink.send(batch(records(1)))
    assert "secret-pw" not in str(ei.value)
    with pytest.raises(TransientError):
        await sink.healthcheck()
    await sink.aclose()


async def test_send_timeout_is_transient(sqlite_store: Store, tmp_path: Path) -> None:
    # A listening socket that never answers: the connect hangs until the sink's timeout.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    try:
        url = f"postgresql://u@127.0.0.1:{srv.getsockname()[1]}/d"
        sink = sink_for(sqlite_store, tmp_path, url=url, timeout=0.3)
        with pytest.raises(TransientError, match="timed out"):
            await sink.send(batch(records(1)))
        await sink.aclose()
    finally:
        srv.close()


async def test_locked_sqlite_is_transient(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = await open_store(f"sqlite:///{path}")
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        async with store.engine.connect() as conn:  # don't wait the full 5 s busy_timeout
            await conn.exec_driver_sql("PRAGMA busy_timeout=100")
        sink = SqlSink("db", SqlSinkConfig(name="db"), SinkContext(tmp_path, store))
        # (the store's pool holds that one connection, so the send runs with the short timeout)
        with pytest.raises(TransientError, match="locked"):
            await sink.send(batch(records(1)))
    finally:
        blocker.rollback()
        blocker.close()
        await store.aclose()


async def test_bad_data_on_postgres_is_permanent(pg_store: Store, tmp_path: Path) -> None:
    sink = sink_for(pg_store, tmp_path)
    good = records(2)
    bad = [Record(id="not-a-uuid", tenant="acme", stream="usage", source="s", received_at=utcnow(),
                  payload={"secret": "not in the error"})]
    with pytest.raises(PermanentError) as ei:
        await sink.send(batch(good + bad))
    assert "not in the error" not in str(ei.value)  # no payload in logs and dead letters' reason
    assert await pg_store.query_records("acme", "usage") == []  # all or nothing
    too_long = [Record(id=new_id(), tenant="t" * 100, stream="usage", source="s", received_at=utcnow(), payload={})]
    with pytest.raises(PermanentError):
        await sink.send(batch(too_long))
    not_uuid = [Record(id="not-a-uuid", tenant="acme", stream="usage", source="s", received_at=utcnow(), payload={})]
    with pytest.raises(PermanentError):
        await sink.send(batch(not_uuid))
    await sink.send(batch(good))  # the sink still works afterwards
    assert len(await pg_store.query_records("acme", "usage")) == 2


async def test_unencodable_payload_is_permanent(any_store: Store, tmp_path: Path) -> None:
    sink = sink_for(any_store, tmp_path)
    with pytest.raises(PermanentError):
        await sink.send(batch(records(1, bad="\ud800")))  # lone surrogate: not valid UTF-8


async def test_missing_table_is_transient(any_store: Store, tmp_path: Path) -> None:
    # e.g. a store not migrated yet, or a role without INSERT: an operator can fix it
    async with any_store.engine.begin() as conn:
        await conn.exec_driver_sql("ALTER TABLE records RENAME TO records_away")
    try:
        sink = sink_for(any_store, tmp_path)
        with pytest.raises(TransientError):
            await sink.send(batch(records(1)))
    finally:  # the PostgreSQL database is shared by the whole session
        async with any_store.engine.begin() as conn:
            await conn.exec_driver_sql("ALTER TABLE records_away RENAME TO records")


class _PgErr(Exception):
    def __init__(self, sqlstate: str):
        super().__init__(f"server said {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (_PgErr("22021"), PermanentError),  # invalid byte sequence
        (_PgErr("23502"), PermanentError),  # not null violation
        (_PgErr("54000"), PermanentError),  # program limit exceeded
        (_PgErr("40P01"), TransientError),  # deadlock
        (_PgErr("40001"), TransientError),  # serialization failure
        (_PgErr("08006"), TransientError),  # connection failure
        (_PgErr("57P01"), TransientError),  # admin shutdown
        (_PgErr("53100"), TransientError),  # disk full
        (_PgErr("25006"), TransientError),  # read-only transaction (failover)
        (ConnectionRefusedError(111, "refused"), TransientError),
        (OSError("network unreachable"), TransientError),
        (TimeoutError(), TransientError),
        (sqlite3.OperationalError("database is locked"), TransientError),
        (sqlite3.OperationalError("disk I/O error"), TransientError),
        (sqlite3.IntegrityError("NOT NULL constraint failed"), PermanentError),
        (sqlite3.DataError("string or blob too big"), PermanentError),
        (sa_exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")), TransientError),
        (sa_exc.IntegrityError("INSERT", {}, sqlite3.IntegrityError("x")), PermanentError),
        (sa_exc.DataError("INSERT", {}, Exception("x")), PermanentError),
        (sa_exc.TimeoutError("QueuePool limit"), TransientError),
        (RuntimeError("something else"), TransientError),
    ],
)
def test_classify(exc: BaseException, kind: type) -> None:
    assert type(classify(exc)) is kind


def test_classify_keeps_sink_errors_and_hides_sql_parameters() -> None:
    e = PermanentError("already decided")
    assert classify(e) is e
    wrapped = sa_exc.IntegrityError("INSERT INTO records VALUES ($1)", ("secret payload",), sqlite3.IntegrityError("boom"))
    msg = str(classify(wrapped))
    assert "boom" in msg and "secret payload" not in msg and "INSERT INTO" not in msg
    assert len(str(classify(RuntimeError("x" * 10_000)))) < 700
