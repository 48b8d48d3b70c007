import asyncio
from pathlib import Path

import sqlalchemy as sa

from sluiceway.store import Store, current_revision, open_store, upgrade
from sluiceway.store.migrate import head_revision
from sluiceway.store.schema import ALL_TABLES


async def _tables(store: Store) -> set[str]:
    async with store.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))


def test_head_revision_is_packaged() -> None:
    assert head_revision() == "0006"


async def test_open_migrates_to_head(any_store: Store) -> None:
    assert await any_store.current_revision() == head_revision()
    assert {t.name for t in ALL_TABLES} | {"alembic_version"} <= await _tables(any_store)


async def test_upgrade_again_is_a_no_op(any_store: Store) -> None:
    assert await any_store.upgrade() == head_revision()
    assert await any_store.upgrade() == head_revision()
    await any_store.open()  # already open: nothing happens
    assert await any_store.current_revision() == head_revision()


async def test_reopen_existing_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'dir' / 's.db'}"  # parent dirs are created
    for _ in range(2):
        store = await open_store(url)
        assert await store.current_revision() == head_revision()
        await store.aclose()


async def test_open_without_migrate_leaves_schema_alone(tmp_path: Path) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 's.db'}", migrate=False)
    try:
        assert await store.current_revision() is None
        assert await store.upgrade() == head_revision()
    finally:
        await store.aclose()


def test_sync_upgrade_helper_for_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert current_revision(url) is None
    assert upgrade(url) == head_revision()
    assert upgrade(url) == head_revision()
    assert current_revision(url) == head_revision()


async def test_concurrent_first_opens_do_not_collide(tmp_path: Path) -> None:
    """Several stores opened at once on a new database: the SQLite lock (busy_timeout set
    before the switch to WAL) and the in-process lock around Alembic keep them in turn."""
    for attempt in range(5):
        url = f"sqlite:///{tmp_path / f's{attempt}.db'}"
        stores = await asyncio.gather(*(open_store(url) for _ in range(6)))
        try:
            for s in stores:
                assert await s.current_revision() == head_revision()
        finally:
            for s in stores:
                await s.aclose()


async def test_sqlite_pragmas(sqlite_store: Store) -> None:
    async with sqlite_store.engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA synchronous")).scalar() == 2  # FULL
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 5000


async def test_ping_close_twice_and_use_after_close(any_store: Store) -> None:
    await any_store.ping()
    await any_store.aclose()
    await any_store.aclose()
    assert not any_store.is_open
    try:
        await any_store.ping()
    except Exception as e:  # noqa: BLE001
        assert "not open" in str(e)
    else:
        raise AssertionError("ping after aclose must fail")


def test_dialect_without_opening() -> None:
    assert Store.from_url("sqlite:///x.db").dialect == "sqlite"
    assert Store.from_url("postgres://u@h/d").dialect == "postgresql"
    assert "pw" not in repr(Store.from_url("postgres://u:pw@h/d"))


async def test_tables_match_the_migrations(any_store: Store) -> None:
    """schema.py (what queries use) and versions/ (what databases get) must not drift."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from sluiceway.store.schema import metadata

    def diff(conn: sa.Connection) -> list:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": False})
        return compare_metadata(ctx, metadata)

    async with any_store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_in_memory_sqlite() -> None:
    store = await open_store("sqlite://")
    try:
        assert await store.current_revision() == head_revision()
        info, secret = await store.create_token("acme", ["ingest"])
        assert (await store.lookup_token(secret)) == info
    finally:
        await store.aclose()


async def test_unreachable_database_is_a_store_error() -> None:
    import socket

    from sluiceway.store import StoreError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = Store.from_url(f"postgresql://u:hunter2@127.0.0.1:{port}/d")
    try:
        await store.open()
    except StoreError as e:
        assert "hunter2" not in str(e) and "cannot open the store" in str(e)
        assert isinstance(e.__cause__, OSError)
    else:
        raise AssertionError("open must fail")
    assert not store.is_open


def test_upgrade_from_0001_keeps_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert upgrade(url, "0001") == "0001"
    assert upgrade(url) == head_revision()


async def test_feedback_leaves_room_for_hot_updates_on_postgresql(any_store: Store) -> None:
    if any_store.dialect != "postgresql":
        return  # SQLite has no fill factor
    async with any_store.engine.connect() as conn:
        options = (await conn.exec_driver_sql("SELECT reloptions FROM pg_class WHERE relname = 'feedback'")).scalar()
    assert "fillfactor=50" in options
