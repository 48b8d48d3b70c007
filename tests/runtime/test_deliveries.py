"""DeliveryManager keeps each delivery loop alive, backing off while it keeps crashing."""

from __future__ import annotations

from types import SimpleNamespace

import sluiceway.runtime.deliveries as deliveries
from sluiceway.runtime.deliveries import RESTART_MAX, DeliveryManager


class Crashing:
    def __init__(self, crashes: int):
        self.crashes = crashes
        self.runs = 0

    async def run(self) -> None:
        self.runs += 1
        if self.runs <= self.crashes:
            raise OSError(28, "No space left on device")


async def test_a_crashing_loop_is_restarted_with_growing_pauses(monkeypatch, caplog):
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(deliveries.asyncio, "sleep", sleep)
    d = Crashing(8)
    await DeliveryManager._guard(None, ("w0", "sql"), d)  # type: ignore[arg-type]  # self is not used
    assert d.runs == 9  # restarted after every crash, then it ran to its end
    assert waits == [1, 2, 4, 8, 16, RESTART_MAX, RESTART_MAX, RESTART_MAX]


async def test_the_pause_starts_over_after_a_long_healthy_run(monkeypatch):
    waits: list[float] = []
    clock = iter([0.0, 0.5, 1.0, 1.5, 100.0, 200.0, 300.0, 300.5])

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(deliveries.asyncio, "sleep", sleep)
    monkeypatch.setattr(deliveries, "time", SimpleNamespace(monotonic=lambda: next(clock)))
    d = Crashing(3)
    await DeliveryManager._guard(None, ("w0", "sql"), d)  # type: ignore[arg-type]
    # runs: crash after 0.5 s (wait 1), after 0.5 s (wait 2), after 100 s healthy (back to 1)
    assert waits == [1, 2, 1]
