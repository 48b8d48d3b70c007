"""DeliveryManager keeps each delivery loop alive, backing off while it keeps crashing, and
keeps delivering the readable partitions when one is damaged."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from structlog.testing import capture_logs

import sluiceway.runtime.deliveries as deliveries
from sluiceway.errors import JournalCorrupt, JournalError
from sluiceway.runtime.deliveries import RESTART_MAX, DeliveryManager
from sluiceway.telemetry.metrics import Metrics


MANAGER = SimpleNamespace(metrics=Metrics())  # what _guard uses of its DeliveryManager


def crashes(metrics: Metrics) -> float:
    return metrics.registry.get_sample_value("sluice_delivery_loop_crashes_total", {"sink": "sql"}) or 0


class Crashing:
    """A delivery loop that crashes its first ``crashes`` runs; its pauses are recorded."""

    def __init__(self, crashes: int, drain_after: int | None = None):
        self.crashes = crashes
        self.runs = 0
        self.waits: list[float] = []
        self.draining = False
        self.drain_after = drain_after  # drain() is called during this pause

    async def run(self) -> None:
        self.runs += 1
        if self.runs <= self.crashes:
            raise OSError(28, "No space left on device")

    async def pause(self, seconds: float) -> None:
        self.waits.append(seconds)
        if len(self.waits) == self.drain_after:
            self.draining = True


async def test_a_crashing_loop_is_restarted_with_growing_pauses():
    d = Crashing(8)
    before = crashes(MANAGER.metrics)
    await DeliveryManager._guard(MANAGER, ("w0", "sql"), d)  # type: ignore[arg-type]
    assert d.runs == 9  # restarted after every crash, then it ran to its end
    assert crashes(MANAGER.metrics) - before == 8
    assert d.waits == [1, 2, 4, 8, 16, RESTART_MAX, RESTART_MAX, RESTART_MAX]


async def test_the_pause_starts_over_after_a_long_healthy_run(monkeypatch):
    clock = iter([0.0, 0.5, 1.0, 1.5, 100.0, 200.0, 300.0, 300.5])
    monkeypatch.setattr(deliveries, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    d = Crashing(3)
    await DeliveryManager._guard(MANAGER, ("w0", "sql"), d)  # type: ignore[arg-type]
    # runs: crash after 0.5 s (wait 1), after 0.5 s (wait 2), after 100 s healthy (back to 1)
    assert d.waits == [1, 2, 1]


async def test_at_shutdown_a_crashing_loop_is_tried_once_more_then_left():
    """A partition that cannot be read must not hold the shutdown for its whole deadline."""
    d = Crashing(100, drain_after=3)
    with capture_logs() as logs:
        await DeliveryManager._guard(MANAGER, ("w0", "sql"), d)  # type: ignore[arg-type]
    assert d.runs == 4 and d.waits == [1, 2, 4]
    assert logs[-1]["event"] == "delivery loop crashed while shutting down; its records stay in the journal"


async def test_a_pause_ends_when_the_delivery_is_told_to_drain(tmp_path):
    from sluiceway.sinks.delivery import Delivery

    d = Delivery.__new__(Delivery)  # only the control part
    d._draining, d._stopped, d._told = False, asyncio.Event(), asyncio.Event()
    pause = asyncio.create_task(d.pause(3600))
    await asyncio.sleep(0)
    assert not pause.done() and not d.draining
    d.drain()
    await asyncio.wait_for(pause, 5)
    assert d.draining


@pytest.mark.parametrize("error, logged", [
    (JournalCorrupt("partitions/w1/00000000000000000050.seg: frame at byte 0 has the wrong offset"), "cannot be read"),
    (JournalError("cannot list the journal's streams on NATS server nats://127.0.0.1:1: NoServersError"),
     "cannot be listed"),
])
async def test_the_watcher_delivers_the_readable_partitions_when_one_is_damaged(monkeypatch, error, logged):
    """``refresh`` raises for a partition it cannot read after taking the others (or when the
    journal's server is away): the partitions known get their delivery loops, and the error is
    logged, naming what it is."""
    good = SimpleNamespace(name="w2")
    spawned: list[list[object]] = []

    async def refresh() -> list[object]:
        raise error

    sleeps = 0

    async def sleep(seconds: float) -> None:
        nonlocal sleeps
        sleeps += 1
        if sleeps > 2:
            raise asyncio.CancelledError

    async def reclaim_idle() -> None:
        pass

    monkeypatch.setattr(deliveries.asyncio, "sleep", sleep)
    manager = SimpleNamespace(
        refresh_interval=2.0, deliveries={}, metrics=Metrics(), lag=lambda: {},
        journal=SimpleNamespace(refresh=refresh, partitions=lambda: [good]),
        _spawn=spawned.append, _journal_error=None, _reclaim_idle=reclaim_idle,
    )
    manager._repeated = lambda message: DeliveryManager._repeated(manager, message)  # type: ignore[arg-type]
    with capture_logs() as logs, pytest.raises(asyncio.CancelledError):
        await DeliveryManager._watch(manager)  # type: ignore[arg-type]
    assert spawned == [[good], [good]]
    damaged = [e for e in logs if logged in e["event"]]
    # tried at every refresh, logged once (then again every REPEAT_LOG seconds)
    assert len(damaged) == 1 and damaged[0]["error"] == str(error) and damaged[0]["log_level"] == "error"
    unreadable = manager.metrics.registry.get_sample_value("sluice_journal_unreadable")
    assert unreadable == (1 if isinstance(error, JournalCorrupt) else 0)


def test_a_journal_error_is_logged_again_only_after_a_while_or_when_it_changes(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(deliveries, "time", SimpleNamespace(monotonic=lambda: now[0]))
    manager = SimpleNamespace(_journal_error=None)
    repeated = lambda m: DeliveryManager._repeated(manager, m)  # type: ignore[arg-type]  # noqa: E731
    assert not repeated("w1 is damaged")
    now[0] += 2
    assert repeated("w1 is damaged")
    assert not repeated("w2 is damaged")  # another error: at once
    now[0] += deliveries.REPEAT_LOG
    assert not repeated("w2 is damaged")


async def test_the_delivery_frees_a_partition_no_process_writes_once_it_is_delivered(tmp_path, monkeypatch):
    """A partition left by a second worker (the gateway now runs one) keeps its last segment
    under the cursor-save reclaim; the delivery's watcher deletes it once every sink has it."""
    from sluiceway.journal import EmbeddedJournal
    from sluiceway.record import Record, new_id, utcnow
    from tests.helpers import eventually, make_config, running_gateway

    monkeypatch.setattr(deliveries, "RECLAIM_IDLE_EVERY", 0.0)  # at every refresh
    cfg = make_config(tmp_path / "d", sinks=[{"type": "sql", "name": "sql", "batch": {"max_age": "10ms"}}])
    left = EmbeddedJournal(cfg.journal_dir, writer_name="w1")
    await left.open([])
    records = [Record(id=new_id(), tenant="acme", stream="usage", source="test", received_at=utcnow(),
                      payload={"i": i}) for i in range(5)]
    await left.writer().append([r.encode() for r in records])
    await left.aclose()
    w1 = cfg.journal_dir / "partitions" / "w1"
    assert len(list(w1.glob("*.seg"))) == 1
    async with running_gateway(cfg) as (gw, _):
        gw.deliveries.refresh_interval = 0.05

        async def stored() -> bool:
            return len(await gw.store.query_records("acme", "usage")) == 5

        await eventually(stored)

        async def freed() -> bool:
            return not list(w1.glob("*.seg"))

        await eventually(freed)
    assert (w1 / "cursors" / "sql.json").exists()
