"""Journal syncs beside sink writes on the same disk: how long an fdatasync waits.

A thread plays the journal: 4 KiB ``pwrite`` + ``fdatasync`` into a file written ahead with
zeros (as the embedded journal does), about 650 times a second. Beside it, for ``--seconds``,
one background writer plays a sink on the same file system (the temp dir under ``--dir``):

- ``alone``: nothing;
- ``sql:N``: SQLite with the store's pragmas (WAL, ``synchronous=FULL``) and the records
  table's shape (its columns, time-ordered UUIDv7 ids, the (tenant, stream, id) index)
  taking 2,000 rows of a ≈300 B event (``--event-bytes`` pads it) five times a second, N rows per transaction (the SQL sink's
  ``SQLITE_COMMIT_BYTES`` makes N ≈ 300 for such rows; one transaction per batch is 2000);
- ``objects``: a gzip JSONL object of 2,000 such lines five times a second, written durably
  the way the local object store writes (``fsutil.write_atomic``).

Prints per mode the journal's syncs: count, p50, p99, max and how many took over 5 ms. The
modes take turns, ``--repeat`` times. Not one of the issue's targets: the evidence behind the
SQL sink's transaction size (docs/benchmarks.md, notes).

    taskset -c 0 python bench/sync_contention.py [--repeat 2] [--seconds 10] [--event-bytes 305] \
        [alone sql:2000 sql:250 objects]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import uuid_utils

from sluiceway.fsutil import write_atomic
from sluiceway.sinks.encoding import gzip_lines
from sluiceway.store.lite import SQLITE_PRAGMAS

EVENT = (Path(__file__).resolve().parent / "wrk" / "event.json").read_bytes().strip()
event = EVENT  # what the writers write: EVENT, padded by --event-bytes
BATCH = 2000
BATCHES_PER_S = 5
JOURNAL_FILE = 64 << 20


def journal(path: Path, stop: threading.Event, lat: list[float]) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, bytes(JOURNAL_FILE), 0)
    os.fsync(fd)
    block, pos = os.urandom(4096), 0
    while not stop.is_set():
        t = time.perf_counter()
        os.pwrite(fd, block, pos)
        os.fdatasync(fd)
        lat.append(time.perf_counter() - t)
        pos = (pos + 4096) % JOURNAL_FILE
        time.sleep(0.0012)
    os.close(fd)


def sql_writer(tmp: Path, stop: threading.Event, per_tx: int) -> None:
    db = sqlite3.connect(tmp / "sink.db", isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        db.execute(pragma)
    db.execute("CREATE TABLE records (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, stream TEXT NOT NULL, "
               "source TEXT NOT NULL, received_at TEXT NOT NULL, event_time TEXT, idempotency_key TEXT, "
               "payload TEXT NOT NULL, attachments TEXT NOT NULL)")
    db.execute("CREATE INDEX ix_records_tenant_stream_id ON records (tenant, stream, id)")
    payload = event.decode()
    while not stop.is_set():
        started = time.monotonic()
        for i in range(0, BATCH, per_tx):
            rows = [(str(uuid_utils.uuid7()), "acme", "usage", "http", "2026-12-06 21:00:00.000000", None, None,
                     payload, "[]") for _ in range(min(per_tx, BATCH - i))]
            db.execute("BEGIN")
            db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING", rows)
            db.execute("COMMIT")
        stop.wait(max(0.0, 1 / BATCHES_PER_S - (time.monotonic() - started)))
    db.close()


def object_writer(tmp: Path, stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        started = time.monotonic()
        lines = [event[:-1] + b',"n":%d}' % (n * BATCH + k) for k in range(BATCH)]
        write_atomic(tmp / "objects" / f"{n:06d}.jsonl.gz", gzip_lines(lines))
        n += 1
        stop.wait(max(0.0, 1 / BATCHES_PER_S - (time.monotonic() - started)))


def run(mode: str, seconds: float, base: Path) -> dict:
    with tempfile.TemporaryDirectory(dir=base, prefix="sync-contention-") as d:
        tmp, stop, lat = Path(d), threading.Event(), []
        threads = [threading.Thread(target=journal, args=(tmp / "journal", stop, lat))]
        if mode.startswith("sql:"):
            threads.append(threading.Thread(target=sql_writer, args=(tmp, stop, int(mode[4:]))))
        elif mode == "objects":
            threads.append(threading.Thread(target=object_writer, args=(tmp, stop)))
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
    lat.sort()
    ms = [x * 1000 for x in lat]
    return {"syncs": len(ms), "p50": ms[len(ms) // 2], "p99": ms[int(len(ms) * 0.99)], "max": ms[-1],
            "over_5ms": sum(1 for x in ms if x > 5)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("modes", nargs="*", default=["alone", "sql:2000", "sql:250", "objects"])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--dir", default=".", help="where the temp dir goes (the disk under test)")
    p.add_argument("--event-bytes", type=int, default=len(EVENT),
                   help=f"pad each event to about this size (default {len(EVENT)}: bench/wrk/event.json)")
    a = p.parse_args()
    global event
    pad = max(0, a.event_bytes - len(EVENT) - 10)
    event = EVENT[:-1] + b',"pad":"' + b"x" * pad + b'"}' if pad else EVENT
    for mode in a.modes:
        if mode not in ("alone", "objects") and not (mode.startswith("sql:") and mode[4:].isdigit()
                                                     and 0 < int(mode[4:]) <= BATCH):
            p.error(f"unknown mode {mode!r}: alone, objects or sql:N (1 <= N <= {BATCH})")
    for r in range(a.repeat):
        for mode in a.modes:
            s = run(mode, a.seconds, Path(a.dir))
            print(f"run {r + 1} {mode:<9} {s['syncs']:6d} syncs  p50 {s['p50']:.2f} ms  p99 {s['p99']:.2f} ms  "
                  f"max {s['max']:.2f} ms  over 5 ms: {s['over_5ms']}", flush=True)


if __name__ == "__main__":
    main()
