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


def test_a_damaged_journal_is_refused_then_repaired(tmp_path):
    data, log = tmp_path / "data", tmp_path / "serve.log"
    config = tmp_path / "sluice.yaml"
    config.write_text(SLOW)  # the records wait in the journal: nothing is delivered before the damage
    common = ["-c", str(config), "--data-dir", str(data)]
    made = sluice("tokens", "create", "--tenant", "acme", "--scopes", "ingest,read", *common)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    port = free_port()
    headers = {"Authorization": f"Bearer {token}"}
    url = f"http://127.0.0.1:{port}/v1/streams/usage/events"

    proc = spawn(["serve", *common, "--port", str(port)], log)
    try:
        wait_up(port, proc, log)
        for i in range(60):
            assert httpx.post(url, json={"i": i, "pad": "x" * 200}, headers=headers).status_code == 202
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # no flush at shutdown: the records stay undelivered
        proc.wait()
    files = segs(data)
    assert len(files) >= 3
    lost = damage(files[1], 0)  # caught when the worker opens its partition

    proc = spawn(["serve", *common, "--port", str(port)], log)
    try:
        wait_for(log, "sluice journal repair", proc)
        busy = sluice("journal", "repair", *common)
        assert busy.returncode == 1 and "stop it first" in busy.stderr
    finally:
        stop(proc)

    dry = sluice("journal", "repair", "--dry-run", *common)
    assert dry.returncode == 0 and files[1].name in dry.stdout and "would keep" in dry.stdout
    fixed = sluice("journal", "repair", *common)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "repaired 1 damaged segment(s)" in fixed.stdout and "at most 1 of the missing" in fixed.stdout
    assert (data / "journal" / "quarantine" / "w0" / files[1].name).exists()

    config.write_text(FAST)
    proc = spawn(["serve", *common, "--port", str(port)], log)
    try:
        wait_up(port, proc, log)
        assert httpx.post(url, json={"i": "after"}, headers=headers).status_code == 202
        deadline = time.monotonic() + 60
        while True:
            events = httpx.get(url, params={"limit": 1000}, headers=headers).json()["events"]
            if any(e["payload"]["i"] == "after" for e in events) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        seen = [e["payload"]["i"] for e in events]
        assert seen == [i for i in range(60) if i != lost - 1] + ["after"]  # offset n holds record n - 1
    finally:
        assert stop(proc) == 0
    status = sluice("journal", "status", "--json", *common)
    assert status.returncode == 0, status.stderr
