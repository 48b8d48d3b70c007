"""Going from ``--workers 2`` to one: the second worker's partition, no longer written, is
delivered and then freed whole by the delivering process; taken again later, it goes on after
the offsets it had used."""

from __future__ import annotations

import json

import pytest

from tests.helpers import stop, wait_up
from tests.integration.test_journal_repair import FAST, Gateway, wait_for

pytestmark = pytest.mark.integration


def test_the_partition_of_a_worker_no_longer_run_is_freed_once_delivered(tmp_path):
    gw = Gateway(tmp_path)
    gw.config.write_text(FAST)
    w1 = gw.data / "journal" / "partitions" / "w1"
    proc = gw.serve("--workers", "2")
    try:
        wait_up(gw.port, proc, gw.log)
        for i in range(40):  # new connections: the kernel spreads them over both workers
            gw.post({"i": i})
    finally:
        assert stop(proc) == 0
    assert list(w1.glob("*.seg")), "no request reached the second worker"

    proc = gw.serve("--workers", "1")
    try:
        wait_up(gw.port, proc, gw.log)
        wait_for(gw.log, "journal w1: no process writes this partition", proc)
        assert not list(w1.glob("*.seg"))
        assert sorted(gw.delivered(39)) == list(range(40))
    finally:
        assert stop(proc) == 0
    acked = max(json.loads(p.read_text())["acked"] for p in (w1 / "cursors").glob("*.json"))

    proc = gw.serve("--workers", "2")
    try:
        wait_up(gw.port, proc, gw.log)
        for i in range(40, 80):
            gw.post({"i": i})
        assert sorted(gw.delivered(79)) == list(range(80))
    finally:
        assert stop(proc) == 0
    firsts = [int(p.stem) for p in w1.glob("*.seg")]
    assert not firsts or min(firsts) > acked  # offsets are never reused
