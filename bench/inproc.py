"""In-process cost of the ingest path: CPU of the event loop's thread per request.

Calls the ASGI app directly (no sockets, no HTTP parsing), ``--concurrency`` clients each
posting the ≈300 B event of bench/wrk/event.json, on a gateway with a fresh data dir and no
sinks. Journal fsync is off unless ``--fsync``; the access log goes to /dev/null unless
``--no-access-log``. A diagnostic for changes to the request path: it isolates the Python
work of a request from the kernel's share (network, sync), which bench/run.py measures
together.

    python bench/inproc.py [--requests 40000] [--fsync] [--no-access-log] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import tempfile
import time
from pathlib import Path

import uvloop

from sluiceway.config.loader import validate_tree
from sluiceway.http.app import create_app
from sluiceway.runtime.gateway import Gateway

EVENT = (Path(__file__).resolve().parent / "wrk" / "event.json").read_bytes()


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = validate_tree({"data_dir": str(Path(tmp) / "data"), "sinks": [],
                                "journal": {"fsync": args.fsync},
                                "log": {"level": "warning", "format": "json"}})  # fmt: skip
        gw = Gateway(config)
        gw.access_log.enabled = not args.no_access_log
        gw.access_log.stream = io.TextIOWrapper(open(os.devnull, "wb"))
        await gw.open()
        try:
            await measure(gw, args)
        finally:
            await gw.aclose()


async def measure(gw: Gateway, args: argparse.Namespace) -> None:
    app = create_app(gw, manage_lifecycle=False)
    _, secret = await gw.store.create_token("acme", ["ingest"])
    headers = [(b"host", b"bench"), (b"authorization", b"Bearer " + secret.encode()),
               (b"content-type", b"application/json"), (b"content-length", str(len(EVENT)).encode())]  # fmt: skip
    statuses: dict[int, int] = {}

    async def receive() -> dict:
        return {"type": "http.request", "body": EVENT, "more_body": False}

    async def send(msg: dict) -> None:
        if msg["type"] == "http.response.start":
            statuses[msg["status"]] = statuses.get(msg["status"], 0) + 1

    async def client(n: int) -> None:
        for _ in range(n):
            scope = {"type": "http", "method": "POST", "path": "/v1/streams/usage/events",
                     "headers": list(headers), "query_string": b"", "http_version": "1.1",
                     "scheme": "http", "root_path": "", "client": ("127.0.0.1", 1),
                     "server": ("127.0.0.1", 2)}  # fmt: skip
            await app(scope, receive, send)

    c = args.concurrency
    await asyncio.gather(*(client(max(1, args.requests // c // 10)) for _ in range(c)))  # warm-up
    statuses.clear()
    per = args.requests // c
    prof = cProfile.Profile() if args.profile else None
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    if prof:
        prof.enable()
    await asyncio.gather(*(client(per) for _ in range(c)))
    if prof:
        prof.disable()
    cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    n = per * c
    print(f"{n:,} requests, statuses {statuses}: event-loop thread CPU {cpu / n * 1e6:.2f} µs/request, "
          f"wall {wall / n * 1e6:.2f} µs/request (fsync {'on' if args.fsync else 'off'}, "
          f"access log {'off' if args.no_access_log else 'on'})")
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=40_000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--fsync", action="store_true", help="sync the journal (off: the CPU of the path alone)")
    p.add_argument("--no-access-log", action="store_true")
    p.add_argument("--profile", action="store_true", help="cProfile the measured requests (slower)")
    uvloop.run(main(p.parse_args()))
