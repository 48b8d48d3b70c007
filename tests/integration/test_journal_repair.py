"""The operator's way on from a damaged journal, with ``sluice serve`` and ``sluice journal
repair`` as processes: the gateway names the command and refuses; the repair refuses while the
gateway runs; once repaired, the gateway starts, keeps every readable record and takes new ones."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import SLUICE, free_port, spawn, stop, wait_up
from tests.journal.test_repair import damage, segs

pytestmark = pytest.mark.integration


def sluice(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SLUICE, *args], capture_output=True, text=True, timeout=120)


def wait_for(log: Path, text: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline and proc.poll() is None, log.read_text(errors="replace")[-3000:]
        time.sleep(0.1)


SLOW = "journal:\n  segment_bytes: 4096\nsinks:\n  - {name: sql, type: sql, batch: {max_records: 100000, max_age: 1h}}\n"
FAST = "journal:\n  segment_bytes: 4096\nsinks:\n  - {name: sql, type: sql, batch: {max_age: 0.1s}}\n"


class Gateway:
    """A data dir with a token, and ``sluice serve`` started on it as asked."""

    def __init__(self, tmp_path: Path):
        self.data, self.log, self.config = tmp_path / "data", tmp_path / "serve.log", tmp_path / "sluice.yaml"
        self.config.write_text(SLOW)
        self.common = ["-c", str(self.config), "--data-dir", str(self.data)]
        made = sluice("tokens", "create", "--tenant", "acme", "--scopes", "ingest,read", *self.common)
        assert made.returncode == 0, made.stderr
        self.headers = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}"}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1/streams/usage/events"

    def serve(self, *extra: str) -> subprocess.Popen:
        return spawn(["serve", *self.common, "--port", str(self.port), *extra], self.log)

    def post(self, payload: object) -> None:
        assert httpx.post(self.url, json=payload, headers=self.headers).status_code == 202

    def damaged(self) -> tuple[Path, int]:
        """60 records taken and left undelivered (the gateway killed), then the second segment's
        first frame damaged (caught when the worker opens its partition): that segment and the
        offset of the record lost."""
        proc = self.serve()
        try:
            wait_up(self.port, proc, self.log)
            for i in range(60):
                self.post({"i": i, "pad": "x" * 200})
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # no flush at shutdown: the records stay undelivered
            proc.wait()
        files = segs(self.data)
        assert len(files) >= 3
        return files[1], damage(files[1], 0)

    def delivered(self, until: object) -> list[object]:
        """The payloads' ``i`` in the SQL store once ``until`` is among them."""
        deadline = time.monotonic() + 60
        while True:
            events = httpx.get(self.url, params={"limit": 1000}, headers=self.headers).json()["events"]
            seen = [e["payload"]["i"] for e in events]
            if until in seen or time.monotonic() > deadline:
                return seen
            time.sleep(0.2)


def test_a_damaged_journal_is_refused_then_repaired(tmp_path):
    gw = Gateway(tmp_path)
    seg, lost = gw.damaged()
    proc = gw.serve()
    try:
        wait_for(gw.log, "sluice journal repair", proc)
        busy = sluice("journal", "repair", *gw.common)
        assert busy.returncode == 1 and "stop it first" in busy.stderr
    finally:
        stop(proc)

    dry = sluice("journal", "repair", "--dry-run", *gw.common)
    assert dry.returncode == 0 and seg.name in dry.stdout and "would keep" in dry.stdout
    fixed = sluice("journal", "repair", *gw.common)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "repaired 1 damaged segment(s)" in fixed.stdout and "at most 1 of the missing" in fixed.stdout
    assert (gw.data / "journal" / "quarantine" / "w0" / seg.name).exists()

    gw.config.write_text(FAST)
    proc = gw.serve()
    try:
        wait_up(gw.port, proc, gw.log)
        gw.post({"i": "after"})
        # offset n holds record n - 1
        assert gw.delivered("after") == [i for i in range(60) if i != lost - 1] + ["after"]
    finally:
        assert stop(proc) == 0
    status = sluice("journal", "status", "--json", *gw.common)
    assert status.returncode == 0, status.stderr


def test_when_damaged_continue_keeps_taking_data_until_the_repair(tmp_path):
    gw = Gateway(tmp_path)
    seg, lost = gw.damaged()
    gw.config.write_text(FAST.replace("journal:\n", "journal:\n  when_damaged: continue\n"))
    proc = gw.serve()
    try:
        wait_up(gw.port, proc, gw.log)
        gw.post({"i": "during"})
        # the records before the damage are delivered, the new one too; the rest waits
        assert gw.delivered("during") == list(range(lost - 1)) + ["during"]
        assert "journal partition w0 is damaged" in gw.log.read_text()
        deadline = time.monotonic() + 30  # delivery meets the damage when it reads w0
        while 'sluice_delivery_loop_crashes_total{sink="sql"}' not in httpx.get(
                f"http://127.0.0.1:{gw.port}/metrics").text:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        assert stop(proc) == 1  # records left undelivered (those of w0 after the damage)
    assert seg.exists() and (gw.data / "journal" / "partitions" / "w0-1").is_dir()

    fixed = sluice("journal", "repair", *gw.common)
    assert fixed.returncode == 0 and "repaired 1 damaged segment(s)" in fixed.stdout, fixed.stdout + fixed.stderr
    proc = gw.serve()
    try:
        wait_up(gw.port, proc, gw.log)
        gw.post({"i": "after"})
        seen = gw.delivered(59)
        assert sorted(i for i in seen if isinstance(i, int)) == [i for i in range(60) if i != lost - 1]
        assert seen.count("during") == 1
        # w0-1, written while w0 was damaged and no longer taken, is freed once delivered
        wait_for(gw.log, "journal w0-1: no process writes this partition", proc)
    finally:
        assert stop(proc) == 0
    assert not list((gw.data / "journal" / "partitions" / "w0-1").glob("*.seg"))
