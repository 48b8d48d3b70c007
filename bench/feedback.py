"""Feedback benchmark: its two targets, each against a baseline measured in the same run.

    flock /tmp/sluice-bench.lock python bench/feedback.py [--only upsert,webhook]
        [--pg-url postgresql://postgres@127.0.0.1:5432/test] [--batches 100000,10000]
        [--duration 6] [--repeat 3]

- ``upsert``: ``Store.upsert_feedback`` into PostgreSQL against a plain asyncpg
  ``copy_records_to_table`` of the same rows into an empty table made like ``feedback``
  (``CREATE TABLE … (LIKE feedback INCLUDING ALL)``: the same columns, primary key, unique
  identity and index), the raw bulk load into the same kind of table. For information, the
  same COPY into a bare table (``LIKE feedback``: columns and NOT NULLs, no index). A throwaway
  database (``sluice_bench_<pid>``) is created from ``--pg-url`` and migrated with
  ``Store.open``, and dropped at the end. Per run: ``TRUNCATE feedback``, 50,000 items
  pre-loaded (untimed) with ``upsert_feedback``, ``VACUUM ANALYZE``, ``CHECKPOINT``; then the
  clock runs over ``upsert_feedback`` of 100,000 items, those 50,000 edited and 50,000 new,
  interleaved, in calls of ``--batches`` items (each size its own way). The COPY is timed over
  the one ``copy_records_to_table`` call, with the rows already built (the same values the
  store writes). Also a split of one upsert call's time (Python rows, COPY into the staging
  table, the ``INSERT … ON CONFLICT`` statement), run step by step without the overlap.
  Target: best upsert rows/s ≥ 50 % of the COPY's.
- ``webhook``: one ``sluice serve`` with a ``feedback`` source (tenant ``bench``, one
  ``webhook`` source ``hook``, ``scheduler: false``) and sinks object_store + feedback, fresh
  data dir; wrk ``POST /webhook/hook/bench`` (bench/wrk/post_webhook.lua: a fixed item body
  with its precomputed ``X-Signature: sha256=<HMAC>``) against ``POST
  /v1/streams/usage/events`` with a bearer token (bench/wrk/post_event.lua), bodies of the
  same size, taking turns (AB, BA, ...), medians. Target: ≥ 70 % of the generic req/s.

Cores: the servers (sluice; the PostgreSQL backends of the benchmark's connections, moved with
``taskset -p``) on CPU 0, the clients (wrk; this harness, which runs the store API and the
COPY) on CPU 1. The run holds an exclusive flock on /tmp/sluice-bench.lock, prints a summary
and rewrites the FEEDBACK section of docs/benchmarks.md (bench/run.py keeps it). Servers are
stopped by PID, the database dropped, the temporary directory removed unless ``--keep``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import statistics
import subprocess
import sys
import time

from run import BENCH, FEEDBACK_BEGIN, FEEDBACK_END, HOST, LOADGEN_CPU, PATH, SERVER_CPU, http_request, log
from targets import (
    TargetBench, Trial, check_args, commands_block, common_options, failures, launch, parser, pg_option,
    pin_self, rps_verdict, section_head, wrk_options, wrk_rows, wrk_turns,
)  # fmt: skip

PHASES = ("upsert", "webhook")
TARGET_UPSERT = 0.50
TARGET_WEBHOOK = 0.70
PRELOAD = 50_000
TENANT = "bench"
HOOK = "hook"
WEBHOOK_BODY = BENCH / "wrk" / "webhook_item.json"
CONFIG = f"""\
sources:
  - type: feedback
    scheduler: false
    tenants:
      - id: {TENANT}
        sources:
          - {{name: {HOOK}, type: webhook, secrets: {{secret: "${{BENCH_HOOK_SECRET}}"}}}}
sinks:
  - {{name: objects, type: object_store}}
  - {{name: feedback, type: feedback}}
"""


# --------------------------------------------------------------------------- upsert


def items(lo: int, hi: int, edited: bool) -> list[tuple[str, dict]]:
    """(tenant, payload) pairs of webhook items lo..hi-1; edited ones differ in body,
    rating, updated_at and metadata."""
    from sluiceway.feedback.item import feedback_id

    out = []
    for i in range(lo, hi):
        ext = f"review-{i:07d}"
        out.append((TENANT, {
            "id": feedback_id(TENANT, "webhook", HOOK, ext), "source_type": "webhook",
            "source_instance": HOOK, "external_id": ext, "author": f"u-{i * 7919 % 100_003:06d}",
            "body": ("[edited] " if edited else "") + f"Review {i}: the optimizer is fast, but "
                    "lossless mode stalls at 90 percent on large folders; please add resume.",
            "rating": (i + edited) % 5 + 1, "language": "en",
            "created_at": f"2025-{i % 12 + 1:02d}-{i % 28 + 1:02d}T{i % 24:02d}:{i % 60:02d}:00Z",
            "updated_at": "2025-12-01T08:00:00Z" if edited else None,
            "metadata": {"app_version": "6.4.2", "device": f"d{i % 97}", "edits": int(edited)},
        }))  # fmt: skip
    return out


def pg_url(base: str, db: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(base).set(database=db).render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def pin_backends(conn, db: str, cpu: str = SERVER_CPU, done: set[int] | None = None) -> list[int]:
    """Move the PostgreSQL backends serving the benchmark's database to ``cpu``; with ``done``,
    only those not in it (which then gains them)."""
    pids = [r[0] for r in await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", db)]
    pids = [p for p in pids if done is None or p not in done]
    for pid in pids:
        subprocess.run(["taskset", "-pc", cpu, str(pid)], capture_output=True, timeout=10)
    if done is not None:
        done.update(pids)
    return pids


async def upsert_phase(args) -> dict:
    import asyncpg

    from sluiceway.record import utcnow
    from sluiceway.store import Store
    from sluiceway.store import feedback as fb

    db = f"sluice_bench_{os.getpid()}"
    admin = await asyncpg.connect(asyncpg_dsn(args.pg_url))
    await admin.execute(f'DROP DATABASE IF EXISTS "{db}"')
    await admin.execute(f'CREATE DATABASE "{db}"')
    url = pg_url(args.pg_url, db)
    store = None
    conn = None
    try:
        store = await Store.from_url(url).open(migrate=True)
        conn = await asyncpg.connect(asyncpg_dsn(url))
        pre = items(0, PRELOAD, False)
        edits, new = items(0, PRELOAD, True), items(PRELOAD, 2 * PRELOAD, False)
        batch = [x for pair in zip(edits, new) for x in pair]
        fetched = utcnow()
        tuples = [fb._values(t, p, fetched, fb._json_text) for t, p in batch]
        cols = list(fb.COLUMNS)

        async def reset() -> None:
            await conn.execute("TRUNCATE feedback")
            await store.upsert_feedback(pre)
            await conn.execute("VACUUM ANALYZE feedback")

        async def settle() -> None:
            await conn.execute("CHECKPOINT")
            await pin_backends(conn, db)

        async def upsert(size: int) -> float:
            await reset()
            await settle()
            t0 = time.perf_counter()
            written = 0
            for i in range(0, len(batch), size):
                written += await store.upsert_feedback(batch[i : i + size])
            secs = time.perf_counter() - t0
            if written != len(batch):
                raise RuntimeError(f"upsert_feedback wrote {written:,} rows, expected {len(batch):,}")
            return secs

        async def copy(like: str) -> float:
            await conn.execute("DROP TABLE IF EXISTS bench_copy")
            await conn.execute(f"CREATE TABLE bench_copy (LIKE feedback {like})")
            await settle()
            t0 = time.perf_counter()
            await conn.copy_records_to_table("bench_copy", records=tuples, columns=cols)
            return time.perf_counter() - t0

        ways = {"copy": ("asyncpg COPY into an empty table like feedback: same columns, keys and indexes "
                         "(baseline)", lambda: copy("INCLUDING ALL"))}  # fmt: skip
        for size in args.batch_sizes:
            ways[f"upsert-{size}"] = (f"upsert_feedback, {size:,} items per call",
                                      lambda size=size: upsert(size))  # fmt: skip
        ways["copy-plain"] = ("asyncpg COPY into an empty table with the same columns and no index (information)",
                              lambda: copy(""))  # fmt: skip
        names = list(ways)
        runs: dict[str, list[float]] = {k: [] for k in names}
        for r in range(args.repeat):
            for k in names if r % 2 == 0 else names[::-1]:
                secs = await ways[k][1]()
                runs[k].append(secs)
                log(f"{ways[k][0]} run {r + 1}: {secs:.3f} s, {len(batch) / secs:,.0f} rows/s")
        out = {"rows": len(batch), "preload": PRELOAD, "pg": await conn.fetchval("SHOW server_version"),
               "synchronous_commit": await conn.fetchval("SHOW synchronous_commit"), "ways": {}}  # fmt: skip
        for k in names:
            secs = statistics.median(runs[k])
            out["ways"][k] = {"label": ways[k][0], "secs": secs, "rows_s": len(batch) / secs,
                              "runs_s": [round(s, 3) for s in runs[k]]}  # fmt: skip
        out["split"] = await split(conn, store, reset, settle, batch, fb)
        return out
    finally:
        if conn is not None:
            await conn.close()
        if store is not None:
            await store.aclose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()


async def split(conn, store, reset, settle, batch, fb) -> dict:
    """Where one 100,000-item call's time goes: the steps of ``_upsert_pg`` run one by one
    over the whole call, without its overlap of chunks (the module's own helpers and
    statements), in an unmeasured run. Empty if the module changed shape."""
    try:
        await reset()
        await settle()
        t0 = time.perf_counter()
        fetched = fb.utcnow()
        latest = fb._latest(batch)
        t1 = time.perf_counter()
        tuples = [fb._values(t, p, fetched, fb._json_text) for t, p in latest]
        t2 = time.perf_counter()
        async with store.engine.begin() as sc:
            await sc.exec_driver_sql(fb._PG_STAGING_DDL)
            raw = (await sc.get_raw_connection()).driver_connection
            t3 = time.perf_counter()
            await raw.copy_records_to_table(fb.STAGING, records=tuples, columns=fb.COLUMNS)
            t4 = time.perf_counter()
            await raw.execute(fb._PG_UPSERT_SQL)
            t5 = time.perf_counter()
        t6 = time.perf_counter()
    except (AttributeError, TypeError) as exc:
        return {"error": f"src/sluiceway/store/feedback.py changed shape: {exc}"}
    return {"last payload per identity (_latest)": t1 - t0,
            "python rows (_values: parse_time ×2, metadata JSON)": t2 - t1,
            "staging DDL": t3 - t2, "COPY into the temp staging table": t4 - t3,
            "INSERT … SELECT … ON CONFLICT DO UPDATE (server)": t5 - t4, "commit": t6 - t5,
            "total": t6 - t0}  # fmt: skip


# --------------------------------------------------------------------------- the benchmark


class FeedbackBench(TargetBench):
    BEGIN, END, name = FEEDBACK_BEGIN, FEEDBACK_END, "FEEDBACK"

    def __init__(self, args) -> None:
        super().__init__(args, {"feedback.yaml": CONFIG})
        self.hook_secret = secrets.token_hex(16)

    def phase_webhook(self) -> dict:
        from sluiceway.secrets import generate_key

        key = generate_key()
        self.red.add(key, "$SLUICE_SECRET_KEY")
        self.red.add(self.hook_secret, "$BENCH_HOOK_SECRET")
        self.args.sluice_env = [*self.args.sluice_env, f"SLUICE_SECRET_KEY={key}",
                                f"BENCH_HOOK_SECRET={self.hook_secret}"]  # fmt: skip
        body = WEBHOOK_BODY.read_bytes().rstrip()
        sig = "sha256=" + hmac.new(self.hook_secret.encode(), body, hashlib.sha256).hexdigest()
        self.red.add(sig, "$SIGNATURE")
        srv = self.server("sluice-feedback", "feedback.yaml")
        hook = f"/webhook/{HOOK}/{TENANT}"
        status, resp = http_request(srv.port, "POST", hook, body,
                                    {"X-Signature": sig, "Content-Type": "application/json"})  # fmt: skip
        if status != 200 or json.loads(resp).get("accepted") != 1:
            raise RuntimeError(f"POST {hook} preflight: expected 200 accepted=1, got {status} {resp[:300]!r}")
        base = f"http://{HOST}:{srv.port}"
        trials = [
            Trial("generic", f"POST {PATH}", ["bench/wrk/post_event.lua", self.tokens[srv.name]], base + PATH),
            Trial("webhook", f"POST {hook}", ["bench/wrk/post_webhook.lua", sig], base + hook),
        ]
        try:
            return wrk_turns(self, srv, trials, "2.")
        finally:
            self.finish(srv)

    def measure(self) -> None:
        if "upsert" in self.phases:
            try:
                self.out["upsert"] = asyncio.run(upsert_phase(self.args))
            except Exception as exc:  # asyncpg / SQLAlchemy errors: reported, not raised
                self.out["upsert"] = {"error": f"{type(exc).__name__}: {exc}"[-1000:]}
                log(f"upsert FAILED: {exc!r}")
            self.commands["1. upsert (in this process)"] = [
                "# CREATE DATABASE sluice_bench_<pid>; Store.from_url(url).open(migrate=True); per run: "
                "TRUNCATE feedback; upsert_feedback(50,000 items); VACUUM ANALYZE feedback; CHECKPOINT; "
                "then timed: upsert_feedback(100,000 items) in calls of N, or "
                "asyncpg copy_records_to_table('bench_copy', …) into CREATE TABLE bench_copy (LIKE feedback "
                "INCLUDING ALL) (baseline) or (LIKE feedback) (information)"]
        if "webhook" in self.phases:
            self.attempt("webhook", self.phase_webhook)

    def verdicts(self) -> list[dict]:
        out = []
        u = self.out.get("upsert", {})
        t1 = (f"1. upsert {2 * PRELOAD:,} feedback items (half new, half edits) ≥ {TARGET_UPSERT:.0%} of "
              "asyncpg COPY rows/s into an empty table like feedback")  # fmt: skip
        if "ways" in u:
            w = u["ways"]
            best = max((k for k in w if k.startswith("upsert-")), key=lambda k: w[k]["rows_s"])
            ratio = w[best]["rows_s"] / w["copy"]["rows_s"]
            out.append(dict(target=t1, ok=ratio >= TARGET_UPSERT,
                            figure=f"{w[best]['rows_s']:,.0f} ({best.split('-')[1]} per call) / "
                                   f"{w['copy']['rows_s']:,.0f} rows/s = {ratio:.1%} (of the COPY into a "
                                   f"table without indexes: {w[best]['rows_s'] / w['copy-plain']['rows_s']:.1%})"))
        h = self.out.get("webhook", {})
        t2 = f"2. webhook req/s ≥ {TARGET_WEBHOOK:.0%} of POST {PATH}"
        if "webhook" in h:
            out.append(rps_verdict(t2, h["webhook"], h["generic"], TARGET_WEBHOOK))
        for phase, t in (("upsert", t1), ("webhook", t2)):
            if self.out.get(phase, {}).get("error"):
                out.append(dict(target=t, ok=False, figure=self.out[phase]["error"][:120]))
        return out

    def section(self, verdicts: list[dict]) -> list[str]:
        a = self.args
        L = section_head(self.BEGIN, "Feedback: upsert and webhook", "bench/feedback.py", self.machine,
                         "2 minutes", verdicts)  # fmt: skip
        u = self.out.get("upsert", {})
        if "ways" in u:
            L += ["", f"**1. Upsert.** PostgreSQL {u['pg']} on 127.0.0.1 (synchronous_commit "
                  f"{u['synchronous_commit']}), a throwaway database migrated by `Store.open`. "
                  f"{u['rows']:,} items: the {u['preload']:,} pre-loaded ones edited (body, rating, "
                  f"updated_at, metadata) and {u['preload']:,} new, interleaved. Per run the table is "
                  f"reset (TRUNCATE, {u['preload']:,} items pre-loaded with `upsert_feedback`, VACUUM "
                  "ANALYZE) and a CHECKPOINT taken; the ways take turns (order reversed every "
                  f"round), {a.repeat} run(s) each, median shown. The upsert is timed from the "
                  "`(tenant, payload)` pairs (RFC 3339 strings) to the commit; the COPY over the "
                  "`copy_records_to_table` call alone, with the rows already built.",
                  "", "| Way | rows/s (median) | vs COPY | seconds per run |", "|---|---|---|---|"]  # fmt: skip
            c = u["ways"]["copy"]["rows_s"]
            for w in u["ways"].values():
                L.append(f"| {w['label']} | {w['rows_s']:,.0f} | {w['rows_s'] / c:.1%} | "
                         f"{', '.join(f'{s:.3f}' for s in w['runs_s'])} |")
            sp = u.get("split", {})
            if sp.get("total"):
                L += ["", "Where one call of 100,000 items spends its time (the steps of "
                      "`FeedbackMixin._upsert_pg` run one by one over the whole call, without the overlap of "
                      "one chunk's statement with the next chunk's rows; an extra unmeasured run):", "",
                      "| Step | seconds | share |", "|---|---|---|"]  # fmt: skip
                L += [f"| {k} | {v:.3f} | {v / sp['total']:.0%} |" for k, v in sp.items() if k != "total"]
            elif sp.get("error"):
                L += ["", f"No time split: {sp['error']}"]
        h = self.out.get("webhook", {})
        if "webhook" in h:
            L += ["", f"**2. Webhook.** One server (sources: `feedback` with tenant `{TENANT}` and its "
                  f"`webhook` source `{HOOK}`, scheduler off; sinks: object_store and feedback; fresh data "
                  f"dir, journal fsync on). `bench/wrk/webhook_item.json` ({len(WEBHOOK_BODY.read_bytes().rstrip())} "
                  "bytes, one item, always the same so the feedback sink's upsert writes nothing new) "
                  f"with its `X-Signature: sha256=<HMAC>` against `bench/wrk/event.json` "
                  f"({len((BENCH / 'wrk' / 'event.json').read_bytes().rstrip())} bytes) with a bearer "
                  f"token, wrk `-t1 -c{a.connections}`, {a.warmup:g} s warm-up then {a.duration:g} s "
                  f"measured per run, {a.repeat} run(s) each, taking turns; median shown. The webhook "
                  "answers 200 and the generic endpoint 202, both after the journal fsync.", ""]  # fmt: skip
            L += wrk_rows([h["generic"], h["webhook"]])
        L += failures(self.out)
        L += ["", f"**Cores.** The sluice server tree is pinned to CPU {SERVER_CPU} (`taskset -c "
              f"{SERVER_CPU}`), wrk to CPU {LOADGEN_CPU}. For the upsert, this harness (the store API, "
              f"asyncpg) runs on CPU {LOADGEN_CPU} and the PostgreSQL backends of its connections are "
              f"moved to CPU {SERVER_CPU} (`taskset -pc {SERVER_CPU} <pid>` before each timed run); "
              "PostgreSQL's own background processes (WAL writer, checkpointer) are not pinned. All "
              "traffic is on 127.0.0.1."]  # fmt: skip
        L += commands_block(self, "Commands (`$BENCH_TMP` = the run's temporary directory, `$TOKEN` = "
                            "the bearer token, `$SIGNATURE` = `sha256=` + the hex HMAC-SHA256 of the body "
                            "with `$BENCH_HOOK_SECRET`, a random secret per run; `$SLUICE_SECRET_KEY` from "
                            "`sluiceway.secrets.generate_key()`; ports are picked at run time):",
                            {"feedback.yaml": CONFIG})
        return L + [self.END]


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--only", default=",".join(PHASES), help="comma-separated: " + ", ".join(PHASES))
    pg_option(p)
    p.add_argument("--batches", default="100000,10000", help="items per upsert_feedback call, one way each")
    wrk_options(p)
    common_options(p)
    args = p.parse_args(argv)
    check_args(p, args, PHASES, ("wrk", "taskset"))
    try:
        args.batch_sizes = [int(x) for x in args.batches.split(",") if x.strip()]
    except ValueError:
        p.error("--batches wants comma-separated whole numbers")
    if not args.batch_sizes or min(args.batch_sizes) < 1:
        p.error("--batches must be ≥ 1")
    pin_self(LOADGEN_CPU)
    return launch(FeedbackBench, args)


if __name__ == "__main__":
    sys.exit(main())
