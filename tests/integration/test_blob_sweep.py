"""``sluice serve --workers 2``: the delivering process sweeps a blob a crash left in the spool
(no record refers to it), delivers and releases the blobs of accepted uploads, and exits 0."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from sluiceway.runtime.blobsweep import SWEEP_GRACE
from tests.helpers import free_port, spawn, stop, wait_up

pytestmark = pytest.mark.integration


def test_serve_sweeps_an_orphan_blob_and_keeps_accepted_ones(tmp_path: Path):
    data = tmp_path / "data"
    spool = data / "blobs"
    (spool / "tmp").mkdir(parents=True)
    orphan = spool / ("0" * 32)  # renamed into the spool, then the gateway died before the append
    orphan.write_bytes(b"never accepted")
    old = time.time() - SWEEP_GRACE - 3600
    os.utime(orphan, (old, old))
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text("sources:\n  - {type: lightfile6}\n")
    port = free_port()
    log = tmp_path / "serve.log"
    proc = spawn(["serve", "-c", str(cfg), "--port", str(port), "--data-dir", str(data), "--workers", "2"], log)
    try:
        wait_up(port, proc, log)
        base = f"http://127.0.0.1:{port}"
        r = httpx.put(f"{base}/specimen", params={"uri": "http://example.com/shot.png"},
                      headers={"USER_TOKEN": "alice", "Content-Type": "image/png"}, content=b"\x89PNG" + b"x" * 5000)
        assert r.status_code == 204, r.text
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            metrics = httpx.get(f"{base}/metrics").text
            stored = list((data / "objects" / "attachments").rglob("shot.*.png"))
            if not orphan.exists() and stored and "sluice_blobs_swept_total 1.0" in metrics \
                    and not [p for p in spool.iterdir() if p.is_file()]:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"orphan there: {orphan.exists()}, stored: {stored}, spool: "
                                 f"{sorted(p.name for p in spool.iterdir())}\n{log.read_text()[-3000:]}")
        assert stored[0].read_bytes() == b"\x89PNG" + b"x" * 5000
        assert "removed blobs no record refers to" in log.read_text()
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
