"""Constant-rate HTTP/1.1 load generator (wrk2-style) with coordinated-omission correction.

wrk measures a closed loop: when the server stalls, wrk stops sending, and the stall hides in
a handful of slow samples. This generator fixes the schedule up front instead: request *i* is
due at ``start + i / rate`` whatever happened before, and its latency is measured from that
intended time to the end of its response. A request that has to wait for a free connection
(because the server is slow) is charged the wait, exactly as wrk2 does.

It runs as its own process (``bench/run.py`` pins it to CPU 1 with ``taskset``), on raw asyncio
sockets with uvloop and httptools' C response parser, over ``--connections`` keep-alive
connections with at most one request in flight on each (no pipelining).

    python bench/loadgen.py --url http://127.0.0.1:8000/v1/streams/usage/events \
        --rate 10000 --duration 10 --warmup 3 --connections 32 --token "$TOKEN"

Prints one JSON object: achieved rate, status counts, latency percentiles (ms) of the measured
window (warm-up excluded), the send lag (actual minus intended send time: the generator's own
lateness plus any wait for a free connection while the server is behind) and the generator lag
(its own lateness alone), which shows whether the generator itself kept up.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import time
import urllib.parse
from array import array
from collections import Counter, deque
from pathlib import Path

import httptools

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a project dependency
    uvloop = None

DEFAULT_BODY = Path(__file__).with_name("wrk") / "event.json"
now = time.perf_counter


class Conn(asyncio.Protocol):
    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.intended = 0.0
        self.busy = False
        self.ready = gen.loop.create_future()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.ready.set_result(None)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.gen.fail(self, f"parse error: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.gen.fail(self, f"connection lost: {exc}")

    # httptools callback
    def on_message_complete(self) -> None:
        self.gen.complete(self, self.parser.get_status_code())

    def send(self, intended: float) -> None:
        self.busy = True
        self.intended = intended
        self.gen.record_lag(intended)
        self.transport.write(self.gen.request)  # type: ignore[union-attr]


class Generator:
    def __init__(self, args: argparse.Namespace, loop: asyncio.AbstractEventLoop) -> None:
        self.args = args
        self.loop = loop
        url = urllib.parse.urlsplit(args.url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 80
        path = url.path or "/"
        if url.query:
            path += "?" + url.query
        body = Path(args.body_file).read_bytes().rstrip(b"\r\n")
        headers = [
            f"POST {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Type: {args.content_type}",
            f"Content-Length: {len(body)}",
        ]
        if args.token:
            headers.append(f"Authorization: Bearer {args.token}")
        self.request = ("\r\n".join(headers) + "\r\n\r\n").encode() + body
        self.pending: deque[float] = deque()
        self.idle: deque[Conn] = deque()
        self.conns: list[Conn] = []
        self.measure_from = 0.0
        self.latencies = array("d")
        self.lags = array("d")  # intended -> written: generator lateness + wait for a connection
        self.tick_lags = array("d")  # intended -> queued: the generator's own lateness
        self.statuses: Counter[int] = Counter()
        self.outstanding = 0
        self.failures: Counter[str] = Counter()
        self.all_done = loop.create_future()
        self.scheduled_all = False

    async def connect(self) -> None:
        for _ in range(self.args.connections):
            _, conn = await self.loop.create_connection(
                lambda: Conn(self), self.host, self.port
            )
            await conn.ready
            self.conns.append(conn)
            self.idle.append(conn)

    def record_lag(self, intended: float) -> None:
        if intended >= self.measure_from:
            self.lags.append(now() - intended)

    def complete(self, conn: Conn, status: int) -> None:
        t = now()
        if conn.intended >= self.measure_from:
            self.latencies.append(t - conn.intended)
            self.statuses[status] += 1
        conn.busy = False
        self.outstanding -= 1
        if self.pending:
            conn.send(self.pending.popleft())
        else:
            self.idle.append(conn)
        self._maybe_done()

    def fail(self, conn: Conn, why: str) -> None:
        if conn in self.conns:
            self.conns.remove(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.busy:
            conn.busy = False
            self.outstanding -= 1
            if conn.intended >= self.measure_from:
                self.failures[why.split(":")[0]] += 1
        if not self.conns and not self.all_done.done():
            self.all_done.set_result(None)
        self._maybe_done()

    def _maybe_done(self) -> None:
        if (
            self.scheduled_all
            and self.outstanding == 0
            and not self.pending
            and not self.all_done.done()
        ):
            self.all_done.set_result(None)

    def dispatch(self) -> None:
        pending, idle = self.pending, self.idle
        while pending and idle:
            idle.popleft().send(pending.popleft())

    async def run(self) -> dict:
        args = self.args
        await self.connect()
        rate = float(args.rate)
        interval = 1.0 / rate
        total = int(rate * (args.warmup + args.duration))
        start = now() + 0.01
        self.measure_from = start + args.warmup
        measure_end = self.measure_from + args.duration
        i = 0
        while i < total:
            t = now()
            while i < total:
                due = start + i * interval
                if due > t:
                    break
                if due >= self.measure_from:
                    self.tick_lags.append(t - due)
                self.pending.append(due)
                self.outstanding += 1
                i += 1
            self.dispatch()
            wait = start + i * interval - now()
            # uvloop timers have 1 ms resolution: sleep only when the next request is far
            # enough away, otherwise spin through the event loop (this process owns its core).
            await asyncio.sleep(wait - 0.0015 if wait > 0.002 else 0)
            if not self.conns:
                break
        self.scheduled_all = True
        self._maybe_done()
        try:
            await asyncio.wait_for(asyncio.shield(self.all_done), timeout=args.drain_timeout)
        except asyncio.TimeoutError:
            pass
        finished = now()
        unfinished = self.outstanding
        for conn in list(self.conns):
            conn.transport.close()  # type: ignore[union-attr]
        return self.report(measure_end, finished, unfinished)

    def report(self, measure_end: float, finished: float, unfinished: int) -> dict:
        lat = sorted(self.latencies)
        lags = sorted(self.lags)
        tick_lags = sorted(self.tick_lags)

        def pct(values: list[float], p: float) -> float | None:
            if not values:
                return None
            k = min(len(values) - 1, max(0, int(round(p / 100.0 * len(values) + 0.5)) - 1))
            return round(values[k] * 1000.0, 3)

        completed = len(lat)
        ok = sum(n for s, n in self.statuses.items() if 200 <= s < 300)
        return {
            "target_rate": self.args.rate,
            "duration_s": self.args.duration,
            "warmup_s": self.args.warmup,
            "connections": self.args.connections,
            "scheduled": int(self.args.rate * self.args.duration),
            "completed": completed,
            "ok_2xx": ok,
            "achieved_rate": round(completed / self.args.duration, 1),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "failures": dict(self.failures),
            "unfinished": unfinished,
            "drain_s": round(max(0.0, finished - measure_end), 3),
            "latency_ms": {
                "p50": pct(lat, 50),
                "p90": pct(lat, 90),
                "p99": pct(lat, 99),
                "p999": pct(lat, 99.9),
                "max": round(lat[-1] * 1000.0, 3) if lat else None,
            },
            # how late requests were written: generator lateness plus waiting for a free
            # connection (all busy = the server is behind)
            "send_lag_ms": {
                "p50": pct(lags, 50),
                "p99": pct(lags, 99),
                "max": round(lags[-1] * 1000.0, 3) if lags else None,
            },
            # the generator's own lateness in putting requests on its queue: its self-check
            "generator_lag_ms": {
                "p99": pct(tick_lags, 99),
                "max": round(tick_lags[-1] * 1000.0, 3) if tick_lags else None,
            },
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("--rate", type=float, required=True, help="requests per second")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds at rate, not measured")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--token", default="", help="bearer token (none if empty)")
    p.add_argument("--body-file", default=str(DEFAULT_BODY))
    p.add_argument("--content-type", default="application/json")
    p.add_argument("--drain-timeout", type=float, default=10.0)
    args = p.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or args.connections <= 0:
        p.error("--rate, --duration and --connections must be positive")
    loop = uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    gc.disable()  # no collector pauses inside the measured window (nothing here is cyclic)
    try:
        result = loop.run_until_complete(Generator(args, loop).run())
    finally:
        loop.close()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
