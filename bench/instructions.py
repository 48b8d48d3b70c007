"""Instructions per request, counted by valgrind's callgrind: a figure the host's noise does not move.

On a shared VM the speed of a core can change by a third from one second to the next, so
requests/s of two servers measured even a few seconds apart compare the host as much as the
code (bench/run.py alternates runs and reports medians for that reason). Counting executed
instructions is repeatable instead, whatever else the machine is doing. It is not one of the
issue's targets, which are about requests/s: it leaves out what costs time without
instructions (cache misses, the kernel's share is counted only in part, waits), and it runs
the servers about 50 times slower, which changes how requests group per event-loop turn and
per sync. Use it to compare code: the same server before and after a change, or the two
servers of target 1a. The single-event count repeats within 1 %; the per-event count of
``--body ndjson`` moves by about 10 % from run to run (two runs of the same code: 22,081 and
19,525), with how bodies group per read and per commit: repeat it and compare ranges.

Each server runs under ``valgrind --tool=callgrind --trace-children=yes`` on CPU 0, loaded by
``wrk -t1 -c32`` with the ≈300 B event (bench/wrk/post_event.lua) on CPU 1: a warm-up, then
the counters are zeroed (``callgrind_control -z``), a measured run, and a dump
(``callgrind_control -d``). Per request (with ``--body ndjson``: per event, in bodies of
``--lines`` NDJSON lines on 8 connections) it reports:

- ``noop``: the no-op Starlette app's process (uvicorn, as bench/run.py serves it);
- ``sluice``: sluiceway's HTTP worker process (ingest, access log, the journal's sync thread);
  and, for the delivering process (both default sinks), instructions per record delivered,
  counted from the same zero until every sink has sent as many records as were accepted
  (``sluice_sink_records_sent_total`` against ``sluice_events_accepted_total``).

    python bench/instructions.py [--duration 30] [--servers noop,sluice] [--config sluice.yaml]
    python bench/instructions.py --servers sluice --body ndjson [--lines 2000]   # per event, bulk

Needs valgrind and wrk (``apt-get install valgrind wrk``); takes 2-4 minutes per server.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import (
    BENCH, HOST, LOADGEN_CPU, PATH, ROOT, SERVER_CPU, UVICORN_FLAGS, descendants, free_port, http_request, log, pin,
)  # fmt: skip

LUA = {"event": BENCH / "wrk" / "post_event.lua", "ndjson": BENCH / "wrk" / "post_ndjson.lua"}
NOOP_ARGV = ["-m", "uvicorn", "noop_starlette:app", "--app-dir", str(BENCH / "baselines"), *UVICORN_FLAGS]


def get(port: int, path: str) -> str | None:
    try:
        status, body = http_request(port, "GET", path, timeout=30)
    except OSError:
        return None
    return body.decode() if status == 200 else None


def wrk(port: int, seconds: int, token: str, args: argparse.Namespace) -> int:
    """Events sent during a closed-loop wrk run (refused if any answer was not 2xx): one per
    request, or ``--lines`` per NDJSON body."""
    extra, conns = ([str(args.lines)], "-c8") if args.body == "ndjson" else ([], "-c32")
    out = subprocess.run(
        [*pin(LOADGEN_CPU), "wrk", "-t1", conns, f"-d{seconds}s", "-s", str(LUA[args.body]),
         f"http://{HOST}:{port}{PATH}", "--", token, *extra],
        capture_output=True, text=True, check=True).stdout  # fmt: skip
    if "Non-2xx" in out:
        raise SystemExit(f"the server answered errors under load:\n{out}")
    m = re.search(r"(\d+) requests in", out)
    if not m:
        raise SystemExit(f"cannot read wrk's output:\n{out}")
    return int(m.group(1)) * (args.lines if args.body == "ndjson" else 1)


def callgrind_control(flag: str, pid: int) -> None:
    subprocess.run(["callgrind_control", flag, str(pid)], capture_output=True, check=True)


def total_after_zero(out_dir: Path, pid: int) -> int:
    """Instructions the process executed from the zeroing to the dump (its ``.1`` file)."""
    text = (out_dir / f"cg.{pid}.1").read_text(errors="replace")
    m = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(r"^totals:\s+(\d+)", text, re.M)
    if not m:
        raise SystemExit(f"no totals in {out_dir / f'cg.{pid}.1'}")
    return int(m.group(1))


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_until(what: str, check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(1)


def caught_up(port: int) -> bool:
    """Every sink has sent as many records as the gateway accepted (counters since start; a
    stale metrics snapshot of the delivering process can only make this answer no)."""
    text = get(port, "/metrics")
    if text is None:
        return False
    accepted = sum(float(v) for v in re.findall(r"^sluice_events_accepted_total(?:\{[^}]*\})?\s+(\S+)", text, re.M))
    sent = [float(v) for v in re.findall(r"^sluice_sink_records_sent_total\{[^}]*\}\s+(\S+)", text, re.M)]
    return bool(sent) and accepted > 0 and min(sent) >= accepted


def measure(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, float]:
    port = free_port()
    out_dir = tmp / name
    out_dir.mkdir()
    valgrind = ["valgrind", "--tool=callgrind", "--trace-children=yes",
                f"--callgrind-out-file={out_dir}/cg.%p"]  # fmt: skip
    env = {**os.environ, "SLUICE_LOG__LEVEL": "warning"}
    token = ""
    if name == "noop":
        argv = [sys.executable, *NOOP_ARGV, "--host", HOST, "--port", str(port)]
    else:
        sluice = shutil.which("sluice")
        if sluice is None:
            raise SystemExit("no `sluice` on PATH: pip install -e . first")
        data = tmp / "sluice-data"
        made = subprocess.run([sluice, "tokens", "create", "--data-dir", str(data), "--tenant", "bench",
                               "--scopes", "ingest"], capture_output=True, text=True, env=env, check=True)  # fmt: skip
        token = made.stdout.strip().splitlines()[-1]
        argv = [sluice, "serve", "--data-dir", str(data), "--host", HOST, "--port", str(port),
                "--workers", "1", *(["--config", args.config] if args.config else [])]  # fmt: skip
    with open(out_dir / "valgrind.log", "wb") as logf:
        proc = subprocess.Popen([*pin(SERVER_CPU), *valgrind, *argv], cwd=ROOT, env=env,
                                stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        log(f"{name}: starting under callgrind (port {port})")
        wait_until(f"{name} to answer /health", lambda: get(port, "/health") is not None, 900)
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited early; see {out_dir / 'valgrind.log'}")
        # The process that serves HTTP: uvicorn itself, or sluiceway's worker child.
        worker = proc.pid
        delivery = None
        if name != "noop":
            delivery = proc.pid
            workers = [c for c in descendants(proc.pid) if "sluiceway.runtime.worker" in cmdline(c)]
            if len(workers) != 1:
                raise SystemExit(f"expected one HTTP worker under pid {proc.pid}, found {workers}")
            worker = workers[0]
        log(f"{name}: warm-up {args.warmup} s")
        warm = wrk(port, args.warmup, token, args)
        if delivery is not None:
            wait_until("the sinks to catch up after the warm-up", lambda: caught_up(port), 900)
        for pid in (worker, delivery):
            if pid is not None:
                callgrind_control("-z", pid)
        log(f"{name}: measured run {args.duration} s")
        n = wrk(port, args.duration, token, args)
        callgrind_control("-d", worker)
        result = {"requests": n, "warmup_requests": warm,
                  "worker": total_after_zero(out_dir, worker) / n}  # fmt: skip
        if delivery is not None:
            log(f"{name}: waiting for the sinks to catch up")
            wait_until("the sinks to catch up", lambda: caught_up(port), 1800)
            callgrind_control("-d", delivery)
            result["delivery"] = total_after_zero(out_dir, delivery) / n
        return result
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--servers", default="noop,sluice", help="comma-separated: noop, sluice")
    p.add_argument("--duration", type=int, default=30, help="measured seconds of load (under valgrind)")
    p.add_argument("--warmup", type=int, default=20, help="seconds of load before the counters are zeroed")
    p.add_argument("--body", choices=["event", "ndjson"], default="event",
                   help="one ≈300 B event per request (32 connections), or NDJSON bodies (8 connections)")
    p.add_argument("--lines", type=int, default=2000, help="lines per NDJSON body")
    p.add_argument("--config", default="", help="YAML config for `sluice serve` (default: embedded defaults)")
    args = p.parse_args()
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in servers:
        if s not in ("noop", "sluice"):
            p.error(f"unknown server {s!r}: choose from noop, sluice")
    for tool in ("valgrind", "callgrind_control", "wrk", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install valgrind wrk")
    if args.config:
        args.config = str(Path(args.config).resolve())
    results = {}
    with tempfile.TemporaryDirectory(prefix="sluice-instr-") as tmp:
        for s in servers:
            results[s] = measure(s, args, Path(tmp))
    base = results.get("noop", {}).get("worker")
    for s, r in results.items():
        unit = "event" if args.body == "ndjson" else "request"
        line = f"{s:8s} {r['worker']:10,.0f} instructions/{unit} in the HTTP process ({r['requests']:,} {unit}s)"
        if base and s != "noop":
            line += f", {r['worker'] / base:.1%} of the no-op's"
        print(line)
        if "delivery" in r:
            print(f"{'':8s} {r['delivery']:10,.0f} instructions/record in the delivering process (both sinks)")


if __name__ == "__main__":
    main()
