"""A gateway that cannot open releases what it opened, so the process can exit."""

import asyncio
import threading

import pytest

from sluiceway.errors import JournalCorrupt
from sluiceway.runtime.gateway import Gateway
from sluiceway.store.lite import LiteStore
from tests.helpers import make_config


@pytest.mark.parametrize("role", ["all", "http"])
async def test_a_failed_open_closes_the_store_and_releases_the_lock(tmp_path, role):
    """An HTTP worker whose journal is damaged failed to start but never exited: the store's
    connection thread (not a daemon) kept the process alive at interpreter exit, so `sluice
    serve` neither served nor restarted it."""
    config = make_config(tmp_path / "data", journal={"segment_bytes": 1024}, sinks=[])  # nothing reclaimed
    gw = Gateway(config, role="all")
    await gw.open()
    for _ in range(10):
        await gw.journal.writer().append([b"{}" * 100])
    await gw.aclose()
    first, *rest = sorted((tmp_path / "data" / "journal").rglob("*.seg"))
    assert rest  # so the first segment is not the tail
    first.write_bytes(b"\xff" * 16 + first.read_bytes()[16:])
    before = {t.ident for t in threading.enumerate()}
    # as `sluice serve` makes them: an HTTP worker's store is a LiteStore (store/lite.py)
    gw = Gateway(config, role=role, store=LiteStore.from_url(config.store_url) if role == "http" else None)
    with pytest.raises(JournalCorrupt):
        await gw.open()
    # (the event loop's executor threads are told to exit at interpreter exit; a store's are not)
    def left():
        return [t for t in threading.enumerate() if t.ident not in before and t.is_alive() and not t.daemon
                and not t.name.startswith("asyncio_")]

    # A closed aiosqlite connection's thread answers the close, then returns: give it a moment.
    for _ in range(500):
        if not left():
            break
        await asyncio.sleep(0.01)
    assert left() == []
    if role == "all":  # the data dir's delivery lock is free again
        other = Gateway(config, role="delivery")
        other.acquire_lock()
        await other.aclose()


async def test_a_damaged_own_partition_names_the_way_on_and_opens_after_repair(tmp_path):
    from structlog.testing import capture_logs

    from sluiceway.journal.repair import repair

    config = make_config(tmp_path / "data", journal={"segment_bytes": 1024}, sinks=[])
    gw = Gateway(config, role="all")
    await gw.open()
    for i in range(10):
        await gw.journal.writer().append([b'{"i": %d}' % i + b" " * 200])
    await gw.aclose()
    first = sorted((tmp_path / "data" / "journal").rglob("*.seg"))[0]
    first.write_bytes(b"\xff" * 16 + first.read_bytes()[16:])  # its first frame
    with capture_logs() as logs, pytest.raises(JournalCorrupt):
        await Gateway(config, role="all").open()
    (line,) = [x for x in logs if "damaged" in x["event"]]
    assert "sluice journal repair" in line["event"] and first.name in line["error"]

    report = repair(config.journal_dir, config.data_dir)
    assert report.damaged[0].missing == [(1, 1)]
    gw = Gateway(config, role="all")
    await gw.open()
    try:
        assert gw.journal.writer().stats().first_offset == 2
        assert await gw.journal.writer().append([b"{}"]) == (11, 11)
    finally:
        await gw.aclose()
