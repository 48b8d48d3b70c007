"""Delivery drain rate: how fast one sink works off a journal backlog, on one core.

Fills a fresh journal with ``--records`` Records of the ≈300 B event of bench/wrk/event.json
(as the HTTP path encodes them), then runs the delivery helper for one sink until it has sent
them all (``Delivery.drain``), and prints records/s and the CPU time of the whole process per
record. ``sql`` writes into a SQLite store (the embedded default), ``objects`` gzip JSON
Lines objects into a local directory. Pin it to a core (``taskset -c 0``) so the threads the
sinks use (SQLite's, gzip's) share it as in ``sluice serve``, whose garbage-collector settings
it applies too (``tune_gc``).

Not one of the issue's targets: a diagnostic for the cost of delivery, which shares the core
with ingest under load and, after a burst, decides how soon the sinks catch up.

    taskset -c 0 python bench/drain.py [--records 100000] [--repeat 2] [sql] [objects]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import orjson
import uvloop

from sluiceway.http.ingest import encode_events
from sluiceway.journal import EmbeddedJournal
from sluiceway.runtime.gateway import tune_gc
from sluiceway.sinks.context import SinkContext
from sluiceway.sinks.delivery import Delivery
from sluiceway.sinks.object_store.sink import ObjectStoreSink, ObjectStoreSinkConfig
from sluiceway.sinks.sql import SqlSink, SqlSinkConfig
from sluiceway.store import Store

EVENT = (Path(__file__).resolve().parent / "wrk" / "event.json").read_bytes().strip()
PER_APPEND = 1000


async def fill(journal: EmbeddedJournal, records: int) -> None:
    part = journal.writer()
    event = orjson.loads(EVENT)
    for start in range(0, records, PER_APPEND):
        items: list[bytes] = []
        for i in range(start, min(records, start + PER_APPEND)):
            items += encode_events([(event, EVENT)], tenant="bench", stream="usage", source="http",
                                   received_at=f"2026-12-06T00:00:{i // 1_000_000 % 60:02d}.{i % 1_000_000:06d}Z",
                                   idempotency_key=None)
        await part.append(items)


async def run_once(kind: str, records: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="sluice-drain-") as tmp:
        root = Path(tmp)
        journal = EmbeddedJournal(root / "journal")
        await journal.open([kind])
        await fill(journal, records)
        store = Store.from_url(f"sqlite:///{root / 'sluice.db'}")
        await store.open(migrate=True)
        context = SinkContext(data_dir=root, store=store)
        if kind == "sql":
            config = SqlSinkConfig(name=kind, type="sql")
            sink = SqlSink(kind, config, context)
        else:
            config = ObjectStoreSinkConfig(name=kind, type="object_store")
            sink = ObjectStoreSink(kind, config, context)
        delivery = Delivery(journal.writer(), sink, config, store)
        tune_gc()  # as ``sluice serve`` does once it has started
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        delivery.drain()
        await delivery.run()
        seconds, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
        if delivery.acked != records:
            raise SystemExit(f"{kind}: delivered {delivery.acked} of {records} records")
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        await sink.aclose()
        await store.aclose()
        await journal.aclose()
    return records / seconds, cpu / records * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sinks", nargs="*", metavar="{sql,objects}", help="the sinks to run (default: both)")
    p.add_argument("--records", type=int, default=100_000)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    for kind in args.sinks:
        if kind not in ("sql", "objects"):
            p.error(f"unknown sink {kind!r}: choose from sql, objects")
    for kind in args.sinks or ["sql", "objects"]:
        for _ in range(args.repeat):
            rate, cpu = uvloop.run(run_once(kind, args.records))
            print(f"{kind:8s} {rate:10,.0f} records/s   CPU {cpu:5.2f} µs/record")


if __name__ == "__main__":
    main()
