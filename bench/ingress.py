"""Ingress benchmark: ship a folder of small JSON files with ``sluice ship`` until every file
is a record in the SQL store, against ``tar czf`` + one ``curl`` upload of the same folder
(the floor), in the same run.

    flock /tmp/sluice-bench.lock python bench/ingress.py [--files 10000] [--file-bytes 1024]
        [--repeat 3] [--with-object-store]

``--files`` JSON files of ``--file-bytes`` bytes each (varied text, seeded) are written once
into 10 sub-folders of the run's temporary directory and synced. Each run gets a fresh
``sluice serve`` (the ingress source; sinks: ``sql``, the SQLite store of the data dir, and
``attachments`` for the archive; the example's object_store sink is left out unless
``--with-object-store``) with a fresh data dir, pinned to CPU 0 with ``taskset``, and a
token with scopes ingest,read. The clients (ship, tar, curl) are pinned to CPU 1, and so is
this harness, which polls the store. Ways, taking turns (AB, BA, ...), median of ``--repeat``:

- ``ship``: ``sluice ship`` (``settle_time: 0`` from a config file, so no sleep; flags for the
  rest) from its start until all N records are in the SQL store;
- ``floor``: ``tar czf`` of the same folder, then one ``curl -F file=@x.tgz;type=...`` upload
  to the same endpoint (202, the archive unpacked into the same N records), until all N
  records are in the SQL store.

"In the SQL store" = ``SELECT count(*) FROM records WHERE tenant='bench' AND stream='ols'``
on a read-only SQLite connection, every ``--poll`` s; after each run the records are also
paged through ``GET /v1/streams/ols/events?limit=1000`` (not timed) to check all N are
queryable. Target: ship's time ≤ 2× the floor's, both until the records are stored; the
times until the upload's 202 (ship's exit, tar + curl) are shown too.

The run holds an exclusive flock on /tmp/sluice-bench.lock, prints a summary and rewrites the
INGRESS section of docs/benchmarks.md (bench/run.py keeps it). Servers are stopped by PID;
the temporary directory is removed unless ``--keep``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run import HOST, INGRESS_BEGIN, INGRESS_END, LOADGEN_CPU, ROOT, SERVER_CPU, Server, http_request, log, pin
from targets import (
    TargetBench, Trial, check_args, commands_block, common_options, failures, launch, parser,
    pin_self, section_head,
)  # fmt: skip

SERVICE = "ols"
UPLOAD = "/api/ingress/v1/upload"
CTYPE = f"application/vnd.redhat.{SERVICE}.periodic+tar"
TARGET_FACTOR = 2.0
SINKS = """\
sinks:
  - {name: sql, type: sql}
  - {name: archives, type: attachments, key_template: "archives/{name}"}
"""
SOURCES = f"""\
sources:
  - type: ingress
    valid_upload_types: [{SERVICE}]
"""
SHIP = "settle_time: 0\n"
WORDS = ("the cluster deployment pod node restart failed scaled route operator upgrade console "
         "token answer question helpful wrong slow fast thanks error timeout storage network "
         "config secret image build pipeline log metric alert namespace quota").split()  # fmt: skip


def make_files(root: Path, n: int, size: int, seed: int = 6) -> list[str]:
    """n JSON documents of exactly size bytes in root/d00..d09; returns the sub-folders."""
    rnd = random.Random(seed)
    subs = [f"d{i:02d}" for i in range(10)]
    for s in subs:
        (root / s).mkdir(parents=True)
    for i in range(n):
        doc = {"conversation_id": f"c-{i:08d}", "user_id": f"u-{rnd.getrandbits(48):012x}",
               "sentiment": rnd.choice([-1, 0, 1]), "timestamp": "2025-11-23T13:20:00Z",
               "user_question": " ".join(rnd.choices(WORDS, k=12)), "llm_response": ""}  # fmt: skip
        text = json.dumps(doc, separators=(",", ":"))
        filler = " ".join(rnd.choices(WORDS, k=size // 4))
        doc["llm_response"] = filler[: max(0, size - len(text))]
        (root / subs[i % 10] / f"fb-{i:06d}.json").write_text(json.dumps(doc, separators=(",", ":")))
    os.sync()
    return subs


class Poll:
    """Counts the tenant's records of the service in the server's SQLite store, read-only."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.conn: sqlite3.Connection | None = None

    def count(self) -> int:
        if self.conn is None:
            if not self.db.exists():
                return 0
            self.conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            q = "SELECT count(*) FROM records WHERE tenant = 'bench' AND stream = ?"
            return self.conn.execute(q, (SERVICE,)).fetchone()[0]
        except sqlite3.OperationalError:  # not migrated yet
            return 0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def queryable(srv: Server, token: str) -> int:
    """Records of the service readable through the query API, paging with the cursor."""
    n, cursor = 0, ""
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        path = f"/v1/streams/{SERVICE}/events?limit=1000" + (f"&cursor={cursor}" if cursor else "")
        status, body = http_request(srv.port, "GET", path, headers=headers, timeout=30)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
        doc = json.loads(body)
        n += len(doc["events"])
        cursor = doc.get("next_cursor")
        if not cursor or not doc["events"]:
            return n


class IngressBench(TargetBench):
    BEGIN, END, name = INGRESS_BEGIN, INGRESS_END, "INGRESS"
    token_scopes = "ingest,read"

    def __init__(self, args) -> None:
        sinks = SINKS + ("  - {name: objects, type: object_store}\n" if args.with_object_store else "")
        super().__init__(args, {"ingress.yaml": SOURCES + sinks, "ship.yaml": SHIP})
        self.files = self.tmp / "files"

    def argv(self, trial: str, srv: Server, token: str) -> list[list[str]]:
        url = f"http://{HOST}:{srv.port}{UPLOAD}"
        if trial == "ship":
            return [[*pin(LOADGEN_CPU), *self.sluice_cmd(), "ship", "-c", str(self.tmp / "ship.yaml"),
                     "--data-dir", str(self.files), "--service-id", SERVICE,
                     "--ingress-server-url", url, "--token", token, "--collection-interval", "0",
                     "--no-cleanup"]]  # fmt: skip
        tgz = str(self.tmp / "floor.tgz")
        return [[*pin(LOADGEN_CPU), "tar", "czf", tgz, "-C", str(self.files), *self.subs],
                [*pin(LOADGEN_CPU), "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                 "-H", f"Authorization: Bearer {token}", "-F", f"file=@{tgz};type={CTYPE}", url]]  # fmt: skip

    def one(self, r: int, t: Trial) -> dict:
        """One run of one way against a fresh server; times from its start."""
        a, n = self.args, self.args.files
        srv = self.server(f"ingress-{t.name}-{r + 1}", "ingress.yaml")
        try:
            token = self.tokens[srv.name]
            cmds = self.argv(t.name, srv, token)
            self.commands.setdefault(f"{t.label} (then poll the store until {n:,} records)", cmds)
            if t.name == "floor":
                (self.tmp / "floor.tgz").unlink(missing_ok=True)
            os.sync()
            self.settle()
            poll = Poll(srv.data_dir / "sluice.db")  # type: ignore[attr-defined]
            res: dict = {}
            env = {**os.environ, "TMPDIR": str(self.tmp)}
            t0 = time.monotonic()
            procs = [subprocess.Popen(cmds[0], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)]  # fmt: skip
            if t.name == "floor":
                procs[0].wait(timeout=300)
                res["tar_s"] = time.monotonic() - t0
                procs.append(subprocess.Popen(cmds[1], cwd=ROOT, stdout=subprocess.PIPE,
                                              stderr=subprocess.PIPE, text=True))  # fmt: skip
            count, proc = 0, procs[-1]
            while count < n or "upload_s" not in res:
                if "upload_s" not in res and proc.poll() is not None:
                    res["upload_s"] = time.monotonic() - t0
                if count < n:
                    count = poll.count()
                    if count >= n:
                        res["records_s"] = time.monotonic() - t0
                if time.monotonic() - t0 > a.run_timeout:
                    raise RuntimeError(f"{t.label}: {count:,} of {n:,} records after {a.run_timeout:g} s")
                time.sleep(a.poll)
            poll.close()
            for p, c in zip(procs, cmds):
                out, err = p.communicate()
                if p.returncode != 0 or ("curl" in c and out.strip() != "202"):
                    raise RuntimeError(f"{self.red(c)}: exit {p.returncode}, {out[-300:]} {err[-500:]}")
            res["queryable"] = queryable(srv, token)
            if res["queryable"] != n:
                raise RuntimeError(f"{t.label}: {res['queryable']:,} records queryable, expected {n:,}")
            return res
        finally:
            self.finish(srv)
            shutil.rmtree(srv.data_dir, ignore_errors=True)  # type: ignore[attr-defined]

    def measure(self) -> None:
        a = self.args
        log(f"writing {a.files:,} files of {a.file_bytes} bytes")
        self.subs = make_files(self.files, a.files, a.file_bytes)
        trials = [Trial("ship", "ship", []), Trial("floor", "floor: tar czf + curl", [])]
        runs: dict[str, list[dict]] = {t.name: [] for t in trials}
        try:
            for r, t in self.rounds(trials):
                res = self.one(r, t)
                runs[t.name].append(res)
                log(f"{t.label} run {r + 1}: 202 after {res['upload_s']:.3f} s, all {a.files:,} "
                    f"records stored after {res['records_s']:.3f} s "
                    f"({a.files / res['records_s']:,.0f} files/s)")  # fmt: skip
        except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            self.out["ingress"] = {"error": str(exc)[-1000:]}
            log(f"FAILED: {exc}")
            return
        out: dict = {"files": a.files, "bytes": sum(f.stat().st_size for f in self.files.rglob("*.json"))}
        for t in trials:
            rs = runs[t.name]
            out[t.name] = {"label": t.label, **{k: statistics.median(x[k] for x in rs) for k in rs[0]},
                           "runs": [{k: round(v, 3) for k, v in x.items()} for x in rs]}  # fmt: skip
        out["tgz_bytes"] = (self.tmp / "floor.tgz").stat().st_size
        for key in [k for k in self.commands if k.startswith("server/ingress-") and not k.endswith("-1")]:
            del self.commands[key]  # every run's server is started the same way
        self.out["ingress"] = out

    def verdicts(self) -> list[dict]:
        o = self.out.get("ingress", {})
        t = f"{self.args.files:,} files shipped until stored ≤ {TARGET_FACTOR:g}× tar czf + curl (same wait)"
        if o.get("error"):
            return [dict(target=t, ok=False, figure=o["error"][:120])]
        if "ship" not in o:
            return []
        s, f = o["ship"]["records_s"], o["floor"]["records_s"]
        return [dict(target=t, ok=s <= TARGET_FACTOR * f,
                     figure=f"{s:.2f} s vs {f:.2f} s = {s / f:.2f}× ({o['files'] / s:,.0f} vs "
                            f"{o['files'] / f:,.0f} files/s)")]  # fmt: skip

    def section(self, verdicts: list[dict]) -> list[str]:
        a = self.args
        L = section_head(self.BEGIN, "Ingress: ship a folder", "bench/ingress.py", self.machine, "a minute", verdicts)
        o = self.out.get("ingress", {})
        if "ship" in o:
            L += ["", f"**Folder.** {o['files']:,} JSON files, {o['bytes'] / o['files']:,.0f} bytes each "
                  f"({o['bytes'] / 1e6:.1f} MB; varied text, gzip tar {o['tgz_bytes'] / 1e6:.2f} MB) in 10 "
                  "sub-folders, written once and synced (in the page cache for every run). Each run: a "
                  "fresh server and data dir, `sync`, server idle, then the clock starts with the client "
                  f"command and stops when a read-only SQLite `count(*)` (every {a.poll * 1000:g} ms) sees "
                  f"all {o['files']:,} records of stream `{SERVICE}`; afterwards `GET "
                  f"/v1/streams/{SERVICE}/events` paged with the cursor returned all of them in every run. "
                  f"{a.repeat} run(s) per way, taking turns (AB, BA, ...); medians shown. The sinks were "
                  "`sql` and `attachments`" + (" and `object_store`" if a.with_object_store else
                  " (examples/ingress.yaml also has an `object_store` sink; it was left out, "
                  "`--with-object-store` puts it back)") + ".",
                  "",
                  "| Way | until stored, s | files/s | until the 202, s | of which tar czf, s | runs: until stored, s |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
            for k in ("ship", "floor"):
                r = o[k]
                tar = f"{r['tar_s']:.3f}" if "tar_s" in r else "–"
                each = ", ".join(f"{x['records_s']:.3f}" for x in r["runs"])
                L.append(f"| {r['label']} | {r['records_s']:.3f} | {o['files'] / r['records_s']:,.0f} | "
                         f"{r['upload_s']:.3f} | {tar} | {each} |")
            s, f = o["ship"], o["floor"]
            L += ["", f"Until the 202 only (ship's exit vs. tar + curl), without the server's delivery "
                  f"to the store: {s['upload_s']:.3f} s vs {f['upload_s']:.3f} s = "
                  f"{s['upload_s'] / f['upload_s']:.2f}×. The target uses the times until stored, "
                  "which include the same server work (unpacking, journal, SQL sink) on both sides."]  # fmt: skip
        L += failures(self.out)
        L += ["", f"**Cores.** The server tree (HTTP worker, delivery, journal fsync) is pinned to CPU "
              f"{SERVER_CPU} (`taskset -c {SERVER_CPU}`); ship, tar and curl are pinned to CPU "
              f"{LOADGEN_CPU}, and so is this harness (it polls the store). All traffic is on "
              "127.0.0.1; files, data dirs and archives are on the same file system (the run's "
              "temporary directory, also ship's `$TMPDIR`)."]  # fmt: skip
        L += commands_block(self, "Commands (`$BENCH_TMP` = the run's temporary directory, `$TOKEN` = "
                            "the token minted for each fresh data dir, `$BENCH_TMP/ingress-<way>-<run>-data`; "
                            "ports are picked at run time; the first run's commands shown):",
                            {"ingress.yaml": self.configs["ingress.yaml"], "ship.yaml": SHIP})
        return L + [self.END]


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--files", type=int, default=10_000, help="files in the folder")
    p.add_argument("--file-bytes", type=int, default=1024, help="size of each file")
    p.add_argument("--poll", type=float, default=0.01, help="seconds between store counts")
    p.add_argument("--run-timeout", type=float, default=120.0, help="max seconds of one run")
    p.add_argument("--with-object-store", action="store_true",
                   help="also deliver to an object_store sink, as examples/ingress.yaml does")  # fmt: skip
    common_options(p)
    args = p.parse_args(argv)
    check_args(p, args, (), ("taskset", "tar", "curl"))
    if not 100 <= args.file_bytes <= 1 << 20 or args.files < 1:
        p.error("--file-bytes must be 100..1 MiB and --files ≥ 1")
    pin_self(LOADGEN_CPU)
    return launch(IngressBench, args)


if __name__ == "__main__":
    sys.exit(main())
