"""Lightfile6 receiver benchmark: its three performance targets, each against a baseline
measured in the same run.

    flock /tmp/sluice-bench.lock python bench/lightfile6.py [--duration 6] [--repeat 3]
        [--only usage,specimen,memory] [--specimen-mib 100] [--memory-mib 1024]

One ``sluice serve`` (the lightfile6 source next to the generic ingest endpoint, an
object_store and an attachments sink, fresh data dir, journal fsync on) is pinned to CPU 0 with
``taskset``; the clients (wrk, curl) are pinned to CPU 1; the local-copy baselines (cp, dd)
run on CPU 0, where the server writes. Phases (``--only``):

- ``usage``: ``PUT /usage`` (bench/wrk/put_usage.lua) against ``POST /v1/streams/usage/events``
  (bench/wrk/post_event.lua), the same ≈300 B JSON body (bench/wrk/event.json), the same wrk
  options, on the same server, taking turns (AB, BA, ...); target: ≥ 85 % of the req/s.
- ``specimen``: a ``--specimen-mib`` file uploaded with ``curl -T`` (streams from the file)
  to ``PUT /specimen``, wall time until the 204; against ``cp`` of the same file on the same
  file system; for information, ``dd conv=fsync`` (a copy that is on disk, as the gateway's)
  and the same upload to the no-op Starlette baseline (bench/baselines/noop_starlette.py, body
  streamed and dropped: the HTTP receive ceiling) and ``openssl dgst -sha256`` of the file
  (the hash every spooled blob gets); turns alternate; ``sync`` and an idle
  server before each. Target: ≥ 50 % of cp's throughput.
- ``memory``: a ``--memory-mib`` upload to a freshly started server (after one 64 KiB warm-up
  upload); VmRSS of every process of the server tree every ``--sample-interval`` s; growth =
  max during the upload − the value just before it, per process. Target: < 64 MB for the
  HTTP worker.

The run holds an exclusive flock on /tmp/sluice-bench.lock (it waits for it, unless its
parent, e.g. ``flock(1)``, already holds it), so benchmark runs never overlap. It prints a
summary table and rewrites the LIGHTFILE6 section of docs/benchmarks.md (bench/run.py keeps
that section when it rewrites the rest). Servers are stopped by PID; the temporary directory is
removed unless ``--keep``. Reuses bench/run.py's helpers (servers, sampling, settling, wrk).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run import (
    EVENT_FILE, HOST, LF6_BEGIN, LF6_END, LOADGEN_CPU, PATH, ROOT, SERVER_CPU, Server, descendants,
    failure, http_request, log, pin,
)  # fmt: skip
from targets import (
    LOCK, TargetBench, Trial, check_args, common_options, launch, parser, rps_verdict, wrk_options,
    wrk_rows, wrk_turns,
)  # fmt: skip

CONFIG = """\
sources:
  - type: lightfile6
sinks:
  - {name: objects, type: object_store}
  - {name: specimens, type: attachments}
"""
USER = "bench-user"
URI = "file:///bench/specimen.bin"
MIB = 1 << 20
TARGET_USAGE = 0.85
TARGET_SPECIMEN = 0.50
TARGET_GROWTH_MB = 64.0
PHASES = ("usage", "specimen", "memory")


# --------------------------------------------------------------------------- helpers


def make_file(path: Path, size: int) -> Path:
    """size bytes that compress poorly (one random 8 MiB block repeated), left in the page
    cache and synced, so every reader starts from the same state."""
    block = os.urandom(8 * MIB)
    with open(path, "wb") as f:
        left = size
        while left:
            left -= f.write(block[: min(left, len(block))])
    os.sync()
    return path


def role(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"
    if "spawn_main" in cmd or "sluiceway.runtime.worker" in cmd:
        return "HTTP worker"
    if "resource_tracker" in cmd:
        return "multiprocessing resource tracker"
    if " serve" in cmd:
        return "main: supervisor + delivery"
    return cmd[:60]


def mib(nbytes: float) -> str:
    return f"{nbytes / MIB:,.0f} MiB"


# --------------------------------------------------------------------------- the benchmark


class Lightfile6Bench(TargetBench):
    BEGIN, END, name = LF6_BEGIN, LF6_END, "LIGHTFILE6"

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args, {"lightfile6.yaml": CONFIG})

    def server(self, name: str) -> Server:  # type: ignore[override]
        return super().server(name, "lightfile6.yaml", interval=self.args.sample_interval)

    def curl(self, srv: Server, src: Path) -> list[str]:
        url = f"http://{HOST}:{srv.port}/specimen?uri={URI}"
        return [*pin(LOADGEN_CPU), "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                "-T", str(src), "-H", "Expect:", "-H", f"USER_TOKEN: {USER}",
                "-H", "Content-Type: application/octet-stream", url]  # fmt: skip

    def timed(self, key: str, argv: list[str], timeout: float) -> float:
        """Wall seconds of argv; for curl, only if it got the 204."""
        self.commands.setdefault(key, [argv])
        t0 = time.monotonic()
        p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        secs = time.monotonic() - t0
        if p.returncode != 0 or ("curl" in argv and p.stdout.strip() != "204"):
            raise RuntimeError(f"{self.red(argv)}: exit {p.returncode}, {p.stdout} {p.stderr}")
        return secs

    # -- phases

    def phase_usage(self, srv: Server) -> dict:
        body = EVENT_FILE.read_bytes().strip()
        status, resp = http_request(srv.port, "PUT", "/usage", body,
                                    {"USER_TOKEN": USER, "Content-Type": "application/json"})  # fmt: skip
        if status != 204:
            raise RuntimeError(f"PUT /usage preflight: expected 204, got {status} {resp[:300]!r}")
        base = f"http://{HOST}:{srv.port}"
        trials = [
            Trial("generic", f"POST {PATH}", ["bench/wrk/post_event.lua", self.tokens[srv.name]],
                  base + PATH),
            Trial("usage", "PUT /usage", ["bench/wrk/put_usage.lua", USER], base + "/usage"),
        ]  # fmt: skip
        return wrk_turns(self, srv, trials, "1.")

    def phase_specimen(self, srv: Server) -> dict:
        size = self.args.specimen_mib * MIB
        src = make_file(self.tmp / f"specimen-{self.args.specimen_mib}MiB.bin", size)
        dst = self.tmp / "copy.bin"
        trials = [
            Trial("cp", "cp", [*pin(SERVER_CPU), "cp", str(src), str(dst)]),
            Trial("dd", "dd conv=fsync (information)",
                  [*pin(SERVER_CPU), "dd", f"if={src}", f"of={dst}", "bs=1M", "conv=fsync",
                   "status=none"]),
            Trial("sha256", "SHA-256 of the file (openssl dgst, information)",
                  [*pin(SERVER_CPU), "openssl", "dgst", "-sha256", "-out", os.devnull, str(src)]),
            Trial("upload", "PUT /specimen (curl -T)", self.curl(srv, src)),
        ]  # fmt: skip
        noop = self.uvicorn_server("noop", "no-op Starlette", "noop_starlette:app", {})
        self.start(noop, is_sluice=False)
        trials.append(Trial("noop", "no-op Starlette PUT, body dropped (information)",
                            self.curl(noop, src)))  # fmt: skip
        runs: dict[str, list[float]] = {t.name: [] for t in trials}
        try:
            for r, t in self.rounds(trials):
                dst.unlink(missing_ok=True)
                os.sync()
                self.settle()  # the previous upload's delivery is done
                secs = self.timed(f"2. {t.label}", t.argv, timeout=300)
                runs[t.name].append(secs)
                log(f"{t.label} run {r + 1}: {secs:.3f} s, {size / MIB / secs:,.0f} MiB/s")
        finally:
            self.finish(noop)
            dst.unlink(missing_ok=True)
            src.unlink()
        out = {"bytes": size}
        for t in trials:
            secs = statistics.median(runs[t.name])
            out[t.name] = {"label": t.label, "runs_s": [round(s, 3) for s in runs[t.name]],
                           "secs": secs, "mib_s": size / MIB / secs}  # fmt: skip
        return out

    def phase_memory(self) -> dict:
        size = self.args.memory_mib * MIB
        src = make_file(self.tmp / f"specimen-{self.args.memory_mib}MiB.bin", size)
        small = make_file(self.tmp / "warm-up.bin", 64 * 1024)
        srv = self.server("sluice-lf6-mem")
        try:
            self.timed("3. warm-up upload (64 KiB)", self.curl(srv, small), timeout=60)
            self.settle()
            roles = {p: role(p) for p in descendants(srv.proc.pid)}
            t0 = time.monotonic()
            secs = self.timed(f"3. {mib(size)} upload", self.curl(srv, src), timeout=600)
            t1 = time.monotonic()
            srv.wait_idle(self.args.settle_timeout)  # delivery: the attachments sink copies it
            t2 = time.monotonic()
        finally:
            self.finish(srv)
            src.unlink(missing_ok=True)
        procs = []
        for pid, name in roles.items():
            before = [s[pid] for t, s in srv.proc_samples if t < t0 and pid in s]
            during = [s[pid] for t, s in srv.proc_samples if t0 <= t <= t1 and pid in s]
            after = [s[pid] for t, s in srv.proc_samples if t1 < t <= t2 and pid in s]
            if not (before and during):
                continue
            procs.append({
                "pid": pid, "role": name, "before_mb": before[-1] / 1024,
                "max_upload_mb": max(during) / 1024, "growth_mb": (max(during) - before[-1]) / 1024,
                "max_delivery_mb": max(after) / 1024 if after else None,
            })  # fmt: skip
        n = sum(1 for t, _ in srv.proc_samples if t0 <= t <= t1)
        return {"bytes": size, "secs": secs, "samples": n, "procs": procs,
                "delivery_s": round(t2 - t1, 1)}  # fmt: skip

    # -- driver

    def measure(self) -> None:
        shared = [ph for ph in ("usage", "specimen") if ph in self.phases]
        srv = None
        if shared:
            try:
                srv = self.server("sluice-lf6")
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
                log(f"server FAILED to start: {exc}")
                for ph in shared:
                    self.out[ph] = {"error": f"server did not start: {exc}"[-1000:]}
        for ph in shared if srv else []:
            self.attempt(ph, getattr(self, f"phase_{ph}"), srv)
        if srv:
            self.finish(srv)
        if "memory" in self.phases:
            self.attempt("memory", self.phase_memory)

    def section(self, verdicts: list[dict]) -> list[str]:
        return section_lines(self, verdicts)

    def verdicts(self) -> list[dict]:
        out = []
        u = self.out.get("usage", {})
        t1 = f"1. PUT /usage req/s ≥ {TARGET_USAGE:.0%} of POST {PATH}"
        if "usage" in u:
            out.append(rps_verdict(t1, u["usage"], u["generic"], TARGET_USAGE))
        s = self.out.get("specimen", {})
        t2 = f"2. {self.args.specimen_mib} MiB specimen upload ≥ {TARGET_SPECIMEN:.0%} of cp"
        if "upload" in s:
            ratio = s["upload"]["mib_s"] / s["cp"]["mib_s"]
            out.append(dict(target=t2, ok=ratio >= TARGET_SPECIMEN,
                            figure=f"{s['upload']['mib_s']:,.0f} / {s['cp']['mib_s']:,.0f} MiB/s "
                                   f"= {ratio:.1%} (dd conv=fsync: {s['dd']['mib_s']:,.0f}, no-op receive: "
                                   f"{s['noop']['mib_s']:,.0f}, SHA-256: {s['sha256']['mib_s']:,.0f} MiB/s)"))  # fmt: skip
        m = self.out.get("memory", {})
        t3 = f"3. {self.args.memory_mib} MiB upload: HTTP worker RSS growth < {TARGET_GROWTH_MB:g} MB"
        workers = [p for p in m.get("procs", []) if p["role"] == "HTTP worker"]
        if workers:
            g = max(p["growth_mb"] for p in workers)
            out.append(dict(target=t3, ok=g < TARGET_GROWTH_MB,
                            figure=f"+{g:,.1f} MB ({m['samples']} samples in {m['secs']:.1f} s)"))  # fmt: skip
        for phase, t in (("usage", t1), ("specimen", t2), ("memory", t3)):
            if self.out.get(phase, {}).get("error"):
                out.append(dict(target=t, ok=False, figure=self.out[phase]["error"][:120]))
        return out


# --------------------------------------------------------------------------- docs


def section_lines(b: Lightfile6Bench, verdicts: list[dict]) -> list[str]:
    a, m, red = b.args, b.machine, b.red
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    argv = shlex.join(sys.argv[1:])
    L = [LF6_BEGIN, "## Lightfile6 receiver (bench/lightfile6.py)", ""]
    w = L.append
    w(f"Generated by `flock {LOCK} python bench/lightfile6.py{' ' + argv if argv else ''}` on "
      f"{now} (commit {m['commit']}; {m['nproc']} cores: {m['cpu']}). Rerun it to refresh this "
      "section; `bench/run.py` keeps it as it is. `python bench/lightfile6.py --help` lists the "
      "options; a run takes about 3 minutes.")  # fmt: skip
    w("")
    w("| Target | Figure | Result |")
    w("|---|---|---|")
    for v in verdicts:
        w(f"| {v['target']} | {v['figure']} | {'**PASS**' if v['ok'] else '**FAIL**'} |")
    u = b.out.get("usage", {})
    if "usage" in u:
        w("")
        w(f"**1. Reports.** The same {EVENT_FILE.stat().st_size}-byte JSON body "
          f"(`bench/wrk/event.json`) to both endpoints of one server, wrk `-t1 -c{a.connections}`, "
          f"{a.warmup:g} s warm-up then {a.duration:g} s measured per run, {a.repeat} run(s) each, "
          "taking turns (AB, BA, ...); median shown. `PUT /usage` carries `USER_TOKEN`, the "
          "generic endpoint a bearer token; both answer after the journal fsync (204 and 202).")  # fmt: skip
        w("")
        L.extend(wrk_rows([u["generic"], u["usage"]]))
    s = b.out.get("specimen", {})
    if "upload" in s:
        w("")
        w(f"**2. Specimen.** One {mib(s['bytes'])} file ({s['bytes']:,} bytes, in the page "
          "cache), copied or uploaded in turns (the order alternates per round), median of "
          f"{a.repeat}; before each: the destination removed, `sync`, the server idle (the "
          "previous upload delivered). The upload's time is curl's wall time until the 204, "
          "which comes after the gateway has hashed the body, fsynced the blob and the journal. "
          "`cp` (coreutils 9 uses `copy_file_range`) copies inside the kernel into the page "
          "cache and returns before anything is on disk; `dd conv=fsync` writes 1 MiB blocks "
          "from user space and fsyncs, like the gateway's spool; the no-op Starlette server "
          "receives the body the way the gateway does (uvicorn, httptools, uvloop) and drops "
          "it; `openssl dgst -sha256` hashes the file with the library the gateway's hashlib "
          "uses (the blob's sha256 goes into its record). The gateway must at least receive "
          "the body and hash it on its core: when either of those two rows alone is at or below "
          "the target's share of cp, the target cannot be met on this machine.")  # fmt: skip
        w("")
        w("| Way | MiB/s (median) | vs cp | seconds per run |")
        w("|---|---|---|---|")
        for k in ("cp", "dd", "sha256", "upload", "noop"):
            r = s.get(k)
            if r is None:
                continue
            w(f"| {r['label']} | {r['mib_s']:,.0f} | {r['mib_s'] / s['cp']['mib_s']:.1%} | "
              f"{', '.join(f'{x:.3f}' for x in r['runs_s'])} |")
    mm = b.out.get("memory", {})
    if mm.get("procs"):
        w("")
        w(f"**3. Memory.** One {mib(mm['bytes'])} upload ({mm['secs']:.1f} s) to a freshly started "
          "server after one 64 KiB warm-up upload; VmRSS of each process of the server tree "
          f"every {a.sample_interval * 1000:g} ms ({mm['samples']} samples during the upload). "
          "Growth = max during the upload − the last value before it. *Delivery* is the "
          f"{mm['delivery_s']:g} s after the 204 in which the attachments sink copied the blob.")  # fmt: skip
        w("")
        w("| Process | before MB | max during upload MB | growth MB | max during delivery MB |")
        w("|---|---|---|---|---|")
        for p in mm["procs"]:
            d = "–" if p["max_delivery_mb"] is None else f"{p['max_delivery_mb']:.1f}"
            w(f"| {p['role']} | {p['before_mb']:.1f} | {p['max_upload_mb']:.1f} | "
              f"{p['growth_mb']:+.1f} | {d} |")  # fmt: skip
    for phase, r in b.out.items():
        if r.get("error"):
            w("")
            w(failure(f"`{phase}`", r["error"]))
    w("")
    w(f"**Cores.** The server tree (HTTP worker, delivery, journal fsync) is pinned to CPU "
      f"{SERVER_CPU} (`taskset -c {SERVER_CPU}`), and so are the no-op Starlette server and "
      f"`cp` and `dd`, the baselines for the server's side of an upload; wrk and curl are "
      f"pinned to CPU {LOADGEN_CPU}. All traffic "
      "is on 127.0.0.1; data dir and copies are on the same file system (the run's temporary "
      "directory). Before each measured run the server is idle (< 5 % of a core for 2 s) and, "
      "bounded, the rest of the machine too; *other CPU %* is what other processes used during "
      "a run (100 % = one core).")  # fmt: skip
    w("")
    w("Commands (`$BENCH_TMP` = the run's temporary directory, `$TOKEN` = the bearer token "
      "minted for it; ports are picked at run time), with `$BENCH_TMP/lightfile6.yaml`:")
    w("")
    w("```yaml")
    w(CONFIG.rstrip("\n"))
    w("```")
    w("")
    w("```sh")
    for key, cmds in b.commands.items():
        w(f"# {key}")
        L.extend(red(c) for c in cmds if c)
    w("```")
    w(LF6_END)
    return L


# --------------------------------------------------------------------------- cli


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--only", default=",".join(PHASES), help="comma-separated: " + ", ".join(PHASES))
    wrk_options(p)
    p.add_argument("--specimen-mib", type=int, default=100, help="size of the specimen file")
    p.add_argument("--memory-mib", type=int, default=1024, help="size of the memory-test file")
    p.add_argument("--sample-interval", type=float, default=0.05, help="seconds between VmRSS samples")
    common_options(p)
    args = p.parse_args(argv)
    check_args(p, args, PHASES, ("wrk", "taskset", "curl", "dd", "openssl"))
    return launch(Lightfile6Bench, args)


if __name__ == "__main__":
    sys.exit(main())
