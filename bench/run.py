"""sluiceway benchmark suite: throughput, bulk, latency and memory against baselines.

    python bench/run.py [--duration 10] [--only single,bulk,latency] [--repeat 1] [--profile]

Three servers are started the same way, one after the other, each pinned to CPU 0 with
``taskset`` (uvicorn flags ``--loop uvloop --http httptools --no-access-log --log-level warning
--workers 1``), while every load generator runs pinned to CPU 1:

- ``noop``: a no-op Starlette endpoint (bench/baselines/noop_starlette.py), the HTTP ceiling;
- ``fastapi``: FastAPI + pydantic body + one SQLite INSERT and commit per request
  (bench/baselines/fastapi_sqlite.py), the usual way such collectors are written;
- ``sluice``: ``sluice serve`` with a fresh data dir (journal fsync on).

Phases (``--only``):

- ``single``: wrk, one ≈300 B JSON event per request (bench/wrk/post_event.lua), a warm-up run
  and then the measured run(s); req/s and wrk's (closed-loop) latency percentiles. With
  ``--repeat`` > 1 the servers take turns round by round (ABC, CBA, ...), and target 1a is the
  median over the rounds of sluiceway's req/s divided by the no-op's in the same round: this
  host's speed drifts by tens of percent within minutes, and a ratio of runs a few seconds
  apart cancels most of that.
- ``latency``: bench/loadgen.py at a constant rate of ``--latency-fraction`` (0.5) of the peak
  req/s the same server reached in ``single`` (a short calibration run when ``single`` was not
  run); latency from each request's intended send time, so no coordinated omission. With
  ``--repeat`` > 1 each server gets that many runs, taking turns as in ``single``, and the run
  with the median p99 stands for it (every run's p99 is reported): one 10 s run on this VM is
  one sample of its hiccups, as one wrk run is of its speed.
- ``bulk``: wrk posting NDJSON bodies of ``--bulk-lines`` lines (bench/wrk/post_ndjson.lua);
  events/s counted from the ``accepted`` field of the 202 answers (noop and sluice only).

Throughout, VmRSS of each server and its children is sampled from /proc every 100 ms, and
once a second the tree's memory with shared pages counted once (``resident_once_kb``: the
sum of VmRSS counts each shared library once per process); target 4 is judged on the latter.
Between phases the harness waits until the server is idle (background delivery done) so one phase's
backlog does not run into the next. The results are printed as a table and docs/benchmarks.md
is rewritten (text between the NOTES markers in it is kept, and so are the sections the
standalone target scripts write between their own markers: bench/lightfile6.py's LIGHTFILE6,
bench/ingress.py's INGRESS, bench/feedback.py's FEEDBACK, bench/logs.py's LOGS and
bench/jetstream.py's JETSTREAM; see ``KEPT_SECTIONS``). Loopback only; every run is
bounded in time.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import datetime as dt
import http.client
import importlib.metadata
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DOC = ROOT / "docs" / "benchmarks.md"
EVENT_FILE = BENCH / "wrk" / "event.json"
PATH = "/v1/streams/usage/events"
HOST = "127.0.0.1"
SERVER_CPU = "0"
LOADGEN_CPU = "1"
UVICORN_FLAGS = [
    "--loop", "uvloop", "--http", "httptools", "--no-access-log",
    "--log-level", "warning", "--workers", "1",
]  # fmt: skip
NOTES_BEGIN = "<!-- BEGIN NOTES (kept by bench/run.py) -->"
NOTES_END = "<!-- END NOTES -->"
# The section bench/lightfile6.py writes; kept as it is (markers included) when this rewrites.
LF6_BEGIN = "<!-- BEGIN LIGHTFILE6 (bench/lightfile6.py) -->"
LF6_END = "<!-- END LIGHTFILE6 -->"
INGRESS_BEGIN = "<!-- BEGIN INGRESS (bench/ingress.py) -->"
INGRESS_END = "<!-- END INGRESS -->"
FEEDBACK_BEGIN = "<!-- BEGIN FEEDBACK (bench/feedback.py) -->"
FEEDBACK_END = "<!-- END FEEDBACK -->"
LOGS_BEGIN = "<!-- BEGIN LOGS (bench/logs.py) -->"
LOGS_END = "<!-- END LOGS -->"
JETSTREAM_BEGIN = "<!-- BEGIN JETSTREAM (bench/jetstream.py) -->"
JETSTREAM_END = "<!-- END JETSTREAM -->"
# Sections the standalone target scripts write (bench/targets.py); kept as they are, in this
# order, when this rewrites the page.
KEPT_SECTIONS = ((LF6_BEGIN, LF6_END), (INGRESS_BEGIN, INGRESS_END), (FEEDBACK_BEGIN, FEEDBACK_END),
                 (LOGS_BEGIN, LOGS_END), (JETSTREAM_BEGIN, JETSTREAM_END))

TARGET_VS_NOOP = 0.85
TARGET_VS_FASTAPI = 3.0
TARGET_BULK_EPS = 300_000
TARGET_P99_MS = 10.0
TARGET_RSS_MB = 200.0


# --------------------------------------------------------------------------- helpers


NICE = 0  # set from --nice


def pin(cpu: str) -> list[str]:
    """Command prefix that pins a process to one CPU. Load generators (CPU 1) are reniced
    with --nice; servers never are: sluiceway sets its delivery process to an absolute nice
    value, so renicing the servers would change the balance between its ingest and delivery."""
    prefix = ["nice", "-n", str(NICE)] if NICE and cpu == LOADGEN_CPU else []
    return [*prefix, "taskset", "-c", cpu]


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """pid and all its descendants, from /proc/<pid>/task/*/children."""
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                try:
                    with open(f"/proc/{p}/task/{task}/children") as f:
                        stack.extend(int(c) for c in f.read().split())
                except OSError:
                    pass
        except OSError:
            pass
    return out


def vmrss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


PFN_MASK = (1 << 55) - 1  # /proc/<pid>/pagemap: bits 0-54 the page frame, bit 63 "present"
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def resident_once_kb(pids: list[int]) -> int | None:
    """The physical memory the processes ``pids`` map, each page counted once, in kB.

    Summing VmRSS counts a page every process maps (the shared libraries: libpython,
    pydantic-core, libcrypto, …, some 20 MB a process) once per process. This reads each
    process's page table from /proc/<pid>/pagemap and counts the distinct page frames
    present. None where the kernel hides frame numbers (they read as 0 without
    CAP_SYS_ADMIN): the sum of VmRSS is then the only figure."""
    frames: set[int] = set()
    present = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/maps") as m, open(f"/proc/{pid}/pagemap", "rb", buffering=0) as pm:
                for line in m:
                    lo_s, hi_s = line.split(None, 1)[0].split("-")
                    lo, hi = int(lo_s, 16) // (PAGE_KB * 1024), int(hi_s, 16) // (PAGE_KB * 1024)
                    try:
                        pm.seek(lo * 8)
                        entries = array.array("Q", pm.read((hi - lo) * 8))
                    except (OSError, ValueError, OverflowError):
                        continue  # [vsyscall] and the like
                    mapped = [e & PFN_MASK for e in entries if e >> 63]
                    present += len(mapped)
                    frames.update(mapped)
        except OSError:
            continue  # the process has exited
    if present and frames <= {0}:
        return None
    return len(frames) * PAGE_KB


def memory_mb(once_mb: float | None, rss_mb: float) -> float:
    """The figure target 4 is judged on: pages counted once where measurable, else the sum."""
    return once_mb if once_mb is not None else rss_mb


def memory_figure(once_mb: float | None, rss_mb: float) -> str:
    if once_mb is None:
        return f"max {rss_mb:,.1f} MB (sum of VmRSS)"
    return f"max {once_mb:,.1f} MB with shared pages counted once (sum of VmRSS {rss_mb:,.1f} MB)"


def cpu_ticks(pid: int) -> int:
    return cpu_ticks_path(f"/proc/{pid}/stat")


def count_in_file(path: Path, needle: bytes) -> int:
    n, tail = 0, b""
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                buf = tail + chunk
                n += buf.count(needle)
                # keep a partial match (shorter than needle, so never counted twice)
                tail = buf[-(len(needle) - 1) :] if len(needle) > 1 else b""
    except OSError:
        return 0
    return n


def thread_ticks(pid: int) -> dict[int, tuple[str, int]]:
    """CPU ticks (utime + stime) of every thread of pid and its descendants, with names."""
    out = {}
    for p in descendants(pid):
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{p}/task/{tid}/comm") as f:
                    name = f.read().strip()
            except OSError:
                name = "?"
            out[int(tid)] = (name, cpu_ticks_path(f"/proc/{p}/task/{tid}/stat"))
    return out


def cpu_ticks_path(path: str) -> int:
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def http_request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:  # fmt: skip
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Redactor:
    """Shows commands as someone would type them: temp dir and token replaced by variables."""

    def __init__(self) -> None:
        self.subs: list[tuple[str, str]] = []

    def add(self, value: str, name: str) -> None:
        if value:
            self.subs.append((value, name))

    def __call__(self, argv: list[str] | str) -> str:
        text = argv if isinstance(argv, str) else shlex.join(argv)
        for value, name in self.subs:
            text = text.replace(value, name)
        text = text.replace(sys.executable, "python").replace(str(ROOT) + "/", "")
        return text


# --------------------------------------------------------------------------- servers


@dataclass
class Server:
    name: str
    label: str
    argv: list[str]
    env: dict[str, str]
    port: int
    log_path: Path
    has_bulk: bool
    proc: subprocess.Popen | None = None
    only: frozenset[str] | None = None  # the phases this server takes part in (None: all)
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # t, tree kB, main kB
    proc_samples: list[tuple[float, dict[int, int]]] = field(default_factory=list)  # t, pid → kB
    once_samples: list[tuple[float, int]] = field(default_factory=list)  # t, tree kB (pages once)
    interval: float = 0.1  # seconds between samples
    once_interval: float = 1.0  # between reads of the page tables (≈15 ms a process)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    started_at: float = 0.0
    ready_after: float = 0.0

    def start(self, ready_timeout: float = 60.0) -> None:
        self._log = open(self.log_path, "ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            self.argv, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; log:\n{self.tail_log()}"
                )
            try:
                status, _ = http_request(self.port, "GET", "/health", timeout=1.0)
                if status == 200:
                    self.ready_after = time.monotonic() - self.started_at
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer /health in {ready_timeout}s")

    def _sample(self) -> None:
        # This thread only (pid 0 is the calling thread on Linux): reading page tables takes
        # CPU, which goes to the load generator's core, not the pinned server's.
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setaffinity(0, {int(LOADGEN_CPU)})
        next_once = 0.0
        while not self._stop.is_set() and self.proc and self.proc.poll() is None:
            pids = descendants(self.proc.pid)
            kbs = [vmrss_kb(p) for p in pids]
            t = time.monotonic()
            self.samples.append((t, sum(kbs), kbs[0] if kbs else 0))
            self.proc_samples.append((t, dict(zip(pids, kbs))))
            if t >= next_once:
                next_once = t + self.once_interval
                once = resident_once_kb(pids) if len(pids) > 1 else (kbs[0] if kbs else None)
                if once is not None:
                    self.once_samples.append((t, once))
            self._stop.wait(self.interval)

    def max_rss_mb(self, since: float = 0.0, until: float = float("inf")) -> float:
        vals = [kb for t, kb, _ in self.samples if since <= t <= until]
        return round(max(vals) / 1024.0, 1) if vals else 0.0

    def max_once_mb(self, since: float = 0.0, until: float = float("inf")) -> float | None:
        """The tree's peak memory with shared pages counted once (None: not measurable)."""
        vals = [kb for t, kb in self.once_samples if since <= t <= until]
        return round(max(vals) / 1024.0, 1) if vals else None

    def tree_cpu_ticks(self) -> int:
        return sum(cpu_ticks(p) for p in descendants(self.proc.pid)) if self.proc else 0

    def wait_idle(self, timeout: float, window: float = 0.5, threshold: float = 0.05) -> float:
        """Wait until the server tree uses < threshold of a core for four windows in a row."""
        hz = os.sysconf("SC_CLK_TCK")
        t0 = time.monotonic()
        quiet = 0
        last = self.tree_cpu_ticks()
        while time.monotonic() - t0 < timeout:
            time.sleep(window)
            cur = self.tree_cpu_ticks()
            busy = (cur - last) / hz / window
            last = cur
            quiet = quiet + 1 if busy < threshold else 0
            if quiet >= 4:
                break
        return round(time.monotonic() - t0, 1)

    def stop(self) -> None:
        self._stop.set()
        if not self.proc:
            return
        pids = descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for pid in pids[1:]:  # children left behind, by pid
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self._thread:
            self._thread.join(timeout=2)
        self._log.close()

    def tail_log(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


# --------------------------------------------------------------------------- load runners


def run_wrk(
    argv: list[str], timeout: float, env: dict[str, str] | None = None
) -> tuple[dict, str]:
    proc = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )
    out = proc.stdout + proc.stderr
    m = re.search(r"^WRKJSON (.*)$", proc.stdout, re.M)
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}")
    return json.loads(m.group(1)), out


def wrk_argv(
    script: str, url: str, duration: float, connections: int, script_args: list[str]
) -> list[str]:
    return [
        *pin(LOADGEN_CPU), "wrk", "-t1", f"-c{connections}",
        f"-d{duration:g}s", "--timeout", "10s", "-s", script, url, "--", *script_args,
    ]  # fmt: skip


def _server_cpu(res: dict) -> str:
    """The server tree's CPU during a measured run: % of one core, and per request."""
    if "server_cpu_pct" not in res:
        return "–"
    return f"{res['server_cpu_pct']} ({res['server_cpu_us_per_req']})"


def paired_ratios(a: list[float], b: list[float]) -> list[float]:
    """a[r] / b[r] for each round r in which both servers ran (runs are listed in round order;
    a failed run leaves its server's list short, and then no pairing is possible)."""
    if len(a) != len(b):
        return []
    return [x / y for x, y in zip(a, b) if y]


MEDIAN_P99_NOTE = " (the run with the median p99 shown; every run's p99 after it)"


def median_by(runs: list[dict], key: str) -> dict:
    ordered = sorted(runs, key=lambda r: r[key])
    return ordered[(len(ordered) - 1) // 2]


# --------------------------------------------------------------------------- suite


class CpuWatch:
    """CPU used on the machine during a run by processes other than the benchmark's own."""

    def __init__(self, servers: list[Server], target: Server | None = None) -> None:
        self.servers = servers
        self.target = target
        self.bystanders = [s for s in servers if s is not target]
        self.hz = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _busy_ticks() -> int:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        # user + nice + system. irq/softirq time is left out: the kernel charges it to no
        # process, and here it is mostly the loopback traffic of the benchmark itself.
        return v[0] + v[1] + v[2]

    def _ours(self) -> float:
        ru_c = resource.getrusage(resource.RUSAGE_CHILDREN)
        ru_s = resource.getrusage(resource.RUSAGE_SELF)
        servers = sum(s.tree_cpu_ticks() for s in self.servers) / self.hz
        return servers + ru_c.ru_utime + ru_c.ru_stime + ru_s.ru_utime + ru_s.ru_stime

    def _bystander_ticks(self) -> dict[int, int]:
        return {p: cpu_ticks(p) for s in self.bystanders if s.proc
                for p in descendants(s.proc.pid)}  # fmt: skip

    def __enter__(self) -> CpuWatch:
        self.t0, self.b0, self.o0 = time.monotonic(), self._busy_ticks(), self._ours()
        self.y0 = self._bystander_ticks()
        self.s0 = self.target.tree_cpu_ticks() if self.target else 0
        return self

    def __exit__(self, *exc: object) -> None:
        secs = max(1e-6, time.monotonic() - self.t0)
        busy = (self._busy_ticks() - self.b0) / self.hz
        ours = self._ours() - self.o0
        # CPU seconds of the server under load (its whole tree: workers, journal, delivery)
        self.target_s = ((self.target.tree_cpu_ticks() if self.target else 0) - self.s0) / self.hz
        self.target_pct = round(self.target_s / secs * 100.0, 1)
        self.foreign_pct = round(max(0.0, busy - ours) / secs * 100.0, 1)
        # CPU of the servers that were *not* under load (they share CPU 0 with the one that is)
        # per process, so a child that exits in between cannot make the sum negative
        y1 = self._bystander_ticks()
        ticks = sum(max(0, t - self.y0.get(p, 0)) for p, t in y1.items())
        self.bystander_pct = round(ticks / self.hz / secs * 100.0, 1)


class Suite:
    token_scopes = "ingest"  # of the bearer token minted for each sluice server

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.phases = [p.strip() for p in args.only.split(",") if p.strip()]
        bad = set(self.phases) - {"single", "bulk", "latency"}
        if bad:
            raise SystemExit(f"unknown phase(s) {sorted(bad)}; valid: single, bulk, latency")
        self.tmp = Path(tempfile.mkdtemp(prefix="sluice-bench-"))
        self.red = Redactor()
        self.red.add(str(self.tmp), "$BENCH_TMP")
        self.commands: dict[str, list[list[str]]] = {}
        self.results: dict[str, dict] = {}
        self.notes: list[str] = []
        self.up: list[Server] = []
        self.tokens: dict[str, str] = {}
        self.machine = machine_info()  # at the start: the code the servers run

    # -- servers

    def uvicorn_server(self, name: str, label: str, module: str, env_extra: dict) -> Server:
        port = free_port()
        argv = [
            *pin(SERVER_CPU), sys.executable, "-m", "uvicorn", module,
            "--app-dir", "bench/baselines", "--host", HOST, "--port", str(port), *UVICORN_FLAGS,
        ]  # fmt: skip
        env = {**os.environ, **env_extra}
        return Server(name, label, argv, env, port, self.tmp / f"{name}.log", has_bulk=False)

    def sluice_cmd(self) -> list[str] | None:
        if self.args.sluice_cmd:
            return shlex.split(self.args.sluice_cmd)
        exe = shutil.which("sluice")
        if exe:
            self.red.add(exe, "sluice")
        return [exe] if exe else None

    def sluice_server(self, name: str = "sluice") -> tuple[Server | None, str]:
        cmd = self.sluice_cmd()
        if not cmd:
            return None, "no `sluice` executable on PATH"
        try:
            h = subprocess.run(
                [*cmd, "serve", "--help"], capture_output=True, text=True, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"`sluice serve --help` failed: {exc}"
        if h.returncode != 0:
            return None, "`sluice serve --help` failed: " + (h.stderr or h.stdout).strip()[-300:]
        data = self.tmp / f"{name}-data"
        data.mkdir()
        port = free_port()
        both_cores = name == "sluice-2w"
        argv = [
            *([] if both_cores else pin(SERVER_CPU)), *cmd, "serve", "--data-dir", str(data),
            "--host", HOST, "--port", str(port),
        ]  # fmt: skip
        label = "sluiceway"
        if name == "sluice-nosinks":
            # Diagnostic: the same gateway without delivery, i.e. HTTP + journal (fsync) only.
            # Nothing is ever acknowledged, so the journal gets room for the whole run.
            conf = self.tmp / "sluice-nosinks.yaml"
            conf.write_text("sinks: []\njournal:\n  max_bytes: 32GiB\n  segment_bytes: 256MiB\n")
            argv += ["--config", str(conf)]
            label = "sluiceway without sinks (diagnostic)"
        elif name == "sluice-burst":
            # Diagnostic: the default gateway, sinks and all, with a journal that has room for
            # the whole bulk run whatever the disk: how fast it accepts a burst that its delivery
            # works off afterwards. The default (``max_bytes: auto``, a quarter of the free disk)
            # is the same on a disk with 64 GiB free; on a smaller one the journal fills during
            # the run and the rate falls to what delivery, sharing the core, drains.
            conf = self.tmp / "sluice-burst.yaml"
            conf.write_text("journal:\n  max_bytes: 16GiB\n")
            argv += ["--config", str(conf)]
            label = "sluiceway, journal with room for the run (diagnostic)"
        elif both_cores:
            # The default gateway as one would run it on this 2-core machine for bulk loads,
            # with an HTTP worker per core and nothing pinned (wrk stays on its CPU).
            argv += ["--workers", "2"]
            label = "sluiceway, `--workers 2`, not pinned"
        elif self.args.sluice_config:
            argv += ["--config", str(Path(self.args.sluice_config).resolve())]
        # Pass the same uvicorn flags as the baselines where `sluice serve` accepts them.
        missing = []
        flags = UVICORN_FLAGS
        if both_cores:  # its own --workers 2, not the baselines' --workers 1
            at = flags.index("--workers")
            flags = flags[:at] + flags[at + 2:]
        i = 0
        while i < len(flags):
            has_value = i + 1 < len(flags) and not flags[i + 1].startswith("--")
            group = flags[i : i + 2] if has_value else [flags[i]]
            if re.search(re.escape(flags[i]) + r"(?![\w-])", h.stdout):
                argv += group
            else:
                missing.append(" ".join(group))
            i += len(group)
        if missing and name == "sluice":
            self.notes.append(
                "`sluice serve` takes no option for "
                + ", ".join(f"`{m}`" for m in missing)
                + "; it configures uvicorn itself (src/sluiceway/runtime/server.py)."
            )
        env_extra = dict(kv.split("=", 1) for kv in self.args.sluice_env)
        self.sluice_env_used = env_extra
        srv = Server(name, label, argv, {**os.environ, **env_extra}, port,
                     self.tmp / f"{name}.log", has_bulk=True)  # fmt: skip
        srv.data_dir = data  # type: ignore[attr-defined]
        return srv, ""

    def sluice_token(self, data: Path) -> str:
        cmd = self.sluice_cmd() or ["sluice"]
        argv = [*cmd, "tokens", "create", "--data-dir", str(data), "--tenant", "bench",
                "--scopes", self.token_scopes]  # fmt: skip
        p = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT)
        if p.returncode != 0:
            raise RuntimeError(f"token creation failed: {(p.stderr or p.stdout)[-500:]}")
        lines = [ln.strip() for ln in p.stdout.splitlines() if ln.strip()]
        if not lines:
            raise RuntimeError("`sluice tokens create` printed nothing")
        self.commands.setdefault("server/sluice (token)", [argv])
        return lines[-1]

    def start(self, srv: Server, is_sluice: bool) -> None:
        res = self.results.setdefault(srv.name, {"label": srv.label, "phases": {}})
        shown = srv.argv
        if srv.name.startswith("sluice") and getattr(self, "sluice_env_used", None):
            shown = [f"{k}={v}" for k, v in self.sluice_env_used.items()] + srv.argv
        elif srv.name == "fastapi":
            shown = [f"{k}={v}" for k, v in srv.env.items()
                     if k.startswith("BENCH_") and os.environ.get(k) != v] + srv.argv  # fmt: skip
        self.commands.setdefault(f"server/{srv.name}", [shown])
        token = ""
        if is_sluice:
            try:
                token = self.sluice_token(srv.data_dir)  # type: ignore[attr-defined]
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                log(f"sluice: token before serve failed ({exc}); retrying once it is up")
        log(f"{srv.name}: starting: {self.red(srv.argv)}")
        srv.start()
        try:
            res["ready_s"] = round(srv.ready_after, 2)
            if is_sluice and not token:
                token = self.sluice_token(srv.data_dir)  # type: ignore[attr-defined]
            self.red.add(token, "$TOKEN")
            err = self.preflight(srv, token)
            if err:
                raise RuntimeError(f"{srv.name} preflight: {err}")
        except BaseException:
            self.finish(srv)
            raise
        self.tokens[srv.name] = token
        self.up.append(srv)

    def finish(self, srv: Server) -> None:
        res = self.results.setdefault(srv.name, {"label": srv.label, "phases": {}})
        srv.stop()
        res["max_rss_mb"] = srv.max_rss_mb()
        res["max_once_mb"] = srv.max_once_mb()
        res["max_rss_main_mb"] = (
            round(max(m for _, _, m in srv.samples) / 1024.0, 1) if srv.samples else 0.0
        )
        res["rss_samples"] = len(srv.samples)
        if srv.name == "sluice":
            n = count_in_file(srv.log_path, b'"event":"request"')
            if n:
                self.notes.append(
                    f"`sluice serve` wrote {n:,} access-log lines (one per request) to stderr "
                    "during the run (its own access log, independent of the log level), while "
                    "the baselines run with `--no-access-log`."
                )
        if srv in self.up:
            self.up.remove(srv)
        log(f"{srv.name}: stopped; max RSS {res['max_rss_mb']} MB, pages counted once "
            f"{res['max_once_mb']} MB ({res['rss_samples']} samples)")

    def settle(self) -> float:
        """Wait until every running server is idle, then (bounded by --quiet-timeout) until
        the rest of the machine is quiet too; returns the seconds waited."""
        t0 = time.monotonic()
        for srv in self.up:
            srv.wait_idle(max(1.0, self.args.settle_timeout - (time.monotonic() - t0)))
        t1 = time.monotonic()
        quiet = 0
        while time.monotonic() - t1 < self.args.quiet_timeout:
            with CpuWatch(self.up) as cpu:
                time.sleep(0.5)
            quiet = quiet + 1 if cpu.foreign_pct < self.args.quiet_threshold else 0
            if quiet >= 2:
                break
        return round(time.monotonic() - t0, 1)

    # -- checks

    def _headers(self, token: str, ctype: str) -> dict[str, str]:
        headers = {"Content-Type": ctype}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def preflight(self, srv: Server, token: str) -> str | None:
        body = EVENT_FILE.read_bytes().strip()
        status, resp = http_request(
            srv.port, "POST", PATH, body, self._headers(token, "application/json")
        )
        if status != 202:
            return f"single event: expected 202, got {status} {resp[:300]!r}"
        if srv.name.startswith("sluice"):
            try:
                doc = json.loads(resp)
            except ValueError:
                return f"single event: 202 body is not JSON: {resp[:200]!r}"
            if doc.get("accepted") != 1:
                return f"single event: expected accepted=1, got {doc}"
        return None

    def preflight_bulk(self, srv: Server, token: str) -> str | None:
        line = EVENT_FILE.read_bytes().strip()
        status, resp = http_request(
            srv.port, "POST", PATH, b"\n".join([line] * 3) + b"\n",
            self._headers(token, "application/x-ndjson"),
        )  # fmt: skip
        if status != 202:
            return f"ndjson: expected 202, got {status} {resp[:300]!r}"
        if srv.name.startswith("sluice"):
            try:
                accepted = json.loads(resp).get("accepted")
            except ValueError:
                accepted = None
            if accepted != 3:
                return f"ndjson: 3 lines sent, answer {resp[:200]!r}"
        return None

    # -- phases

    def url(self, srv: Server) -> str:
        return f"http://{HOST}:{srv.port}{PATH}"

    def measured_wrk(self, srv: Server, script: str, conns: int, script_args: list[str],
                     url: str = "", key: str = "") -> dict:  # fmt: skip
        """Settle, warm up, then one measured wrk run against srv (at url, default the
        ingest endpoint); the commands are listed under key (default phase/server)."""
        a = self.args
        url = url or self.url(srv)
        settle_s = self.settle()
        warm = wrk_argv(script, url, a.warmup, conns, script_args)
        run_wrk(warm, timeout=a.warmup + 60)
        argv = wrk_argv(script, url, a.duration, conns, script_args)
        t0 = time.monotonic()
        with CpuWatch(self.up, srv) as cpu:
            res, _ = run_wrk(argv, timeout=a.duration + 60)
        t1 = time.monotonic()
        secs = res["duration_us"] / 1e6
        res["rps"] = round(res["requests"] / secs, 1)
        res["rss_mb"] = srv.max_rss_mb(t0, t1)
        res["once_mb"] = srv.max_once_mb(t0, t1)
        res["errors_total"] = sum(res["errors"].values())
        res["other_cpu_pct"] = cpu.foreign_pct
        res["idle_servers_cpu_pct"] = cpu.bystander_pct
        res["server_cpu_pct"] = cpu.target_pct
        res["server_cpu_us_per_req"] = round(cpu.target_s / max(1, res["requests"]) * 1e6, 1)
        res["settle_s"] = settle_s
        key = key or f"{'bulk' if 'ndjson' in script else 'single'}/{srv.name}"
        self.commands.setdefault(key, [warm, argv])
        return res

    def rounds(self, servers: list[Server]):
        """Interleave servers over the repeats, alternating the order (ABC, CBA, ...)."""
        for r in range(self.args.repeat):
            for srv in servers if r % 2 == 0 else list(reversed(servers)):
                yield r, srv

    def phase_single(self) -> None:
        servers = [s for s in self.up if s.only is None or "single" in s.only]
        runs: dict[str, list[dict]] = {s.name: [] for s in servers}
        for r, srv in self.rounds(servers):
            try:
                res = self.measured_wrk(srv, "bench/wrk/post_event.lua", self.args.connections,
                                        [self.tokens[srv.name]])  # fmt: skip
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                self.results[srv.name]["phases"]["single"] = {"error": str(exc)[-500:]}
                log(f"{srv.name}: single failed: {exc}")
                continue
            runs[srv.name].append(res)
            log(f"{srv.name}: single run {r + 1}: {res['rps']:,.0f} req/s, "
                f"p99 {res['latency_us']['p99'] / 1000:.2f} ms, errors {res['errors_total']}, "
                f"server CPU {res['server_cpu_pct']}% ({res['server_cpu_us_per_req']} µs/req), "
                f"other CPU {res['other_cpu_pct']}%, idle servers {res['idle_servers_cpu_pct']}%")  # fmt: skip
        for name, rs in runs.items():
            if rs:
                best = median_by(rs, "rps")
                self.results[name]["phases"]["single"] = {**best, "runs": [x["rps"] for x in rs]}

    def phase_latency_rounds(self) -> bool:
        """``--repeat`` constant-rate runs per server, servers taking turns as in ``single``;
        the run with the median p99 stands for the server, and every run's p99 is kept."""
        servers = [s for s in self.up if s.only is None or "latency" in s.only]
        runs: dict[str, list[dict]] = {s.name: [] for s in servers}
        peaks: dict[str, float] = {}
        ok = True
        for r, srv in self.rounds(servers):
            if "error" in self.results[srv.name]["phases"].get("latency", {}):
                continue
            try:
                res = self.phase_latency(srv, peaks.get(srv.name))
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as exc:
                ok = False
                self.results[srv.name]["phases"]["latency"] = {"error": str(exc)[-500:]}
                log(f"{srv.name}: latency failed: {exc}")
                continue
            peaks[srv.name] = res["peak_rps"]
            res["p99_ms"] = res["latency_ms"]["p99"] if res["latency_ms"]["p99"] is not None else float("inf")
            runs[srv.name].append(res)
            log(f"{srv.name}: latency run {r + 1}: p99 {res['latency_ms']['p99']} ms")
        for name, rs in runs.items():
            if rs and "error" not in self.results[name]["phases"].get("latency", {}):
                self.results[name]["phases"]["latency"] = {**median_by(rs, "p99_ms"),
                                                           "runs_p99": [x["latency_ms"]["p99"] for x in rs]}
        return ok

    def phase_latency(self, srv: Server, peak: float | None = None) -> dict:
        """One constant-rate run at ``--latency-fraction`` of ``peak`` (default: the server's
        req/s in ``single``, else a 5 s wrk calibration run)."""
        a = self.args
        token = self.tokens[srv.name]
        peak = peak or self.results[srv.name]["phases"].get("single", {}).get("rps")
        calib = None
        if not peak:
            self.settle()
            calib = wrk_argv("bench/wrk/post_event.lua", self.url(srv), 5, a.connections, [token])
            log(f"{srv.name}: latency calibration (wrk 5s) to find the peak rate")
            res, _ = run_wrk(calib, timeout=70)
            peak = res["requests"] / (res["duration_us"] / 1e6)
        rate = max(1.0, round(peak * a.latency_fraction))
        argv = [
            *pin(LOADGEN_CPU), sys.executable, "bench/loadgen.py",
            "--url", self.url(srv), "--rate", f"{rate:g}", "--duration", f"{a.duration:g}",
            "--warmup", f"{a.latency_warmup:g}", "--connections", str(a.connections),
            "--token", token,
        ]  # fmt: skip
        settle_s = self.settle()
        log(f"{srv.name}: constant rate {rate:,.0f} req/s for {a.duration:g}s "
            f"(+{a.latency_warmup:g}s warm-up)")  # fmt: skip
        t0 = time.monotonic()
        with CpuWatch(self.up, srv) as cpu:
            p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True,
                               timeout=a.duration + a.latency_warmup + 60)  # fmt: skip
        t1 = time.monotonic()
        if p.returncode != 0:
            raise RuntimeError(f"loadgen failed:\n{p.stdout}\n{p.stderr}")
        res = json.loads(p.stdout.strip().splitlines()[-1])
        res["peak_rps"] = round(peak, 1)
        res["rss_mb"] = srv.max_rss_mb(t0, t1)
        res["once_mb"] = srv.max_once_mb(t0, t1)
        res["other_cpu_pct"] = cpu.foreign_pct
        res["idle_servers_cpu_pct"] = cpu.bystander_pct
        res["server_cpu_pct"] = cpu.target_pct
        sent = res["achieved_rate"] * (a.duration + a.latency_warmup)  # warm-up is inside the watch
        res["server_cpu_us_per_req"] = round(cpu.target_s / max(1.0, sent) * 1e6, 1)
        res["settle_s"] = settle_s
        self.commands.setdefault(f"latency/{srv.name}", ([calib] if calib else []) + [argv])
        lat = res["latency_ms"]
        log(f"{srv.name}: achieved {res['achieved_rate']:,.0f} req/s, p50 {lat['p50']} ms, "
            f"p99 {lat['p99']} ms, max {lat['max']} ms, statuses {res['statuses']}, "
            f"failures {res['failures']}, send lag p99 {res['send_lag_ms']['p99']} ms, "
            f"generator lag max {res['generator_lag_ms']['max']} ms, "
            f"server CPU {res['server_cpu_pct']}% ({res['server_cpu_us_per_req']} µs/req), "
            f"other CPU {res['other_cpu_pct']}%, idle servers {res['idle_servers_cpu_pct']}%")  # fmt: skip
        return res

    def phase_bulk(self) -> None:
        servers = [s for s in self.up if s.has_bulk]
        for srv in list(servers):
            err = self.preflight_bulk(srv, self.tokens[srv.name])
            if err:
                self.results[srv.name]["phases"]["bulk"] = {"error": err}
                log(f"{srv.name}: bulk preflight failed: {err}")
                servers.remove(srv)
        runs: dict[str, list[dict]] = {s.name: [] for s in servers}
        for r, srv in self.rounds(servers):
            args = [self.tokens[srv.name], str(self.args.bulk_lines)]
            try:
                res = self.measured_wrk(srv, "bench/wrk/post_ndjson.lua",
                                        self.args.bulk_connections, args)  # fmt: skip
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                self.results[srv.name]["phases"]["bulk"] = {"error": str(exc)[-500:]}
                log(f"{srv.name}: bulk failed: {exc}")
                continue
            res["eps"] = round(res["accepted"] / (res["duration_us"] / 1e6), 1)
            runs[srv.name].append(res)
            log(f"{srv.name}: bulk run {r + 1}: {res['eps']:,.0f} events/s accepted "
                f"({res['rps']:,.1f} req/s, {res['not_accepted']} not accepted, "
                f"errors {res['errors_total']}, other CPU {res['other_cpu_pct']}%, "
                f"idle servers {res['idle_servers_cpu_pct']}%) "
                f"{res['first_bad']}")  # fmt: skip
        for name, rs in runs.items():
            if rs:
                best = median_by(rs, "eps")
                self.results[name]["phases"]["bulk"] = {**best, "runs": [x["eps"] for x in rs]}

    def profile(self, srv: Server) -> dict:
        """py-spy over extra wrk runs (not measured ones: py-spy slows the server down)."""
        if not shutil.which("py-spy"):
            return {"error": "py-spy not installed (pip install py-spy)"}
        token = self.tokens[srv.name]
        out = {}
        for phase, script, conns, extra in (
            ("single", "bench/wrk/post_event.lua", self.args.connections, []),
            ("bulk", "bench/wrk/post_ndjson.lua", self.args.bulk_connections,
             [str(self.args.bulk_lines)]),
        ):  # fmt: skip
            if phase not in self.phases:
                continue
            self.settle()
            raw = self.tmp / f"profile-{phase}.txt"
            dur = max(5, int(self.args.duration))
            rate = 100
            spy = [*pin(LOADGEN_CPU), "py-spy", "record", "--pid", str(srv.proc.pid),
                   "--subprocesses", "--threads", "--native", "--duration", str(dur),
                   "--rate", str(rate), "--format", "raw", "--output", str(raw)]  # fmt: skip
            log(f"{srv.name}: profiling {phase} with py-spy for {dur}s")
            wrk = wrk_argv(script, self.url(srv), dur + 2, conns, [token, *extra])
            lg = subprocess.Popen(wrk, cwd=ROOT, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)  # fmt: skip
            time.sleep(1.0)
            before = thread_ticks(srv.proc.pid)
            t0 = time.monotonic()
            sp = subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                _, err = sp.communicate(timeout=dur + 60)
            except subprocess.TimeoutExpired:
                sp.kill()
                _, err = sp.communicate()
            secs = time.monotonic() - t0
            after = thread_ticks(srv.proc.pid)
            lg.wait(timeout=dur + 60)
            if not raw.exists():
                out[phase] = {"error": err.decode(errors="replace")[-300:]}
                continue
            self.commands.setdefault(f"profile/{phase}", [wrk, spy])
            out[phase] = summarize_profile(raw, dur, rate)
            hz = os.sysconf("SC_CLK_TCK")
            names = out[phase].pop("tid_names", {})
            cpu = {}
            for tid, (comm, ticks) in after.items():
                d = ticks - before.get(tid, (comm, 0))[1]
                name = _thread_name_tagged(names[tid]) if tid in names else comm
                if d > 0:
                    cpu[name] = cpu.get(name, 0.0) + d / hz / secs * 100.0
            out[phase]["thread_cpu"] = sorted(((k, round(v, 1)) for k, v in cpu.items()),
                                              key=lambda kv: -kv[1])  # fmt: skip
            if self.args.keep:
                out[phase]["raw"] = self.red(str(raw))
        return out

    # -- driver

    def run(self) -> int:
        a = self.args
        wanted = [s.strip() for s in a.servers.split(",") if s.strip()]
        planned: list[tuple[Server, bool]] = []
        if "noop" in wanted:
            srv = self.uvicorn_server("noop", "no-op Starlette", "noop_starlette:app", {})
            srv.has_bulk = True
            planned.append((srv, False))
        if "fastapi" in wanted:
            env = {"BENCH_SQLITE_PATH": str(self.tmp / "fastapi.db")}
            if a.fastapi_handler != "sync":
                env["BENCH_FASTAPI_HANDLER"] = a.fastapi_handler
            srv = self.uvicorn_server("fastapi", "FastAPI + pydantic + SQLite",
                                      "fastapi_sqlite:app", env)  # fmt: skip
            planned.append((srv, False))
        for name in ("sluice", "sluice-nosinks", "sluice-burst", "sluice-2w"):
            if name not in wanted:
                continue
            srv, why = self.sluice_server(name)
            if srv is not None and name in ("sluice-burst", "sluice-2w"):
                srv.only = frozenset({"bulk"})
            if srv is None:
                self.results[name] = {"label": "sluiceway", "skipped": why, "phases": {}}
                log(f"{name}: skipped: {why}")
            else:
                planned.append((srv, True))
        # sluice-2w is not pinned: its processes would share both cores with the others' runs
        # (and its delivery of a bulk run would overlap the next ones). It runs alone, after them.
        late = [p for p in planned if p[0].name == "sluice-2w"]
        ok = True
        try:
            ok = self.start_all([p for p in planned if p not in late]) and ok
            if "single" in self.phases:
                self.phase_single()
            if "latency" in self.phases:
                ok = self.phase_latency_rounds() and ok
            if "bulk" in self.phases:
                self.phase_bulk()
            if a.profile:
                for srv in self.up:
                    if srv.name == "sluice":
                        self.results["sluice"]["profile"] = self.profile(srv)
        finally:
            for srv in list(self.up):
                self.finish(srv)
        if late and "bulk" in self.phases:
            try:
                ok = self.start_all(late) and ok
                self.phase_bulk()
            finally:
                for srv in list(self.up):
                    self.finish(srv)
        for srv, _ in planned:
            if self.results.get(srv.name, {}).get("error"):
                log(f"--- {srv.name} log tail ---\n{srv.tail_log()}")
        verdicts = self.verdicts()
        table = render_table(verdicts)
        print()
        print(table)
        if a.json_out:
            Path(a.json_out).write_text(
                json.dumps({"results": self.results, "verdicts": verdicts}, indent=2, default=str)
            )
        if not a.no_docs:
            write_doc(self, verdicts)
            log(f"wrote {DOC.relative_to(ROOT)}")
        if a.keep:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return 0 if ok else 1

    def start_all(self, servers: list[tuple[Server, bool]]) -> bool:
        """Start each (server, is_sluice); False if any failed to start (noted in its results)."""
        ok = True
        for srv, is_sluice in servers:
            try:
                self.start(srv, is_sluice)
            except (RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
                ok = False
                self.results[srv.name]["error"] = str(exc)[-2000:]
                log(f"{srv.name}: FAILED to start: {exc}")
        return ok

    def verdicts(self) -> list[dict]:
        r = self.results

        def ph(server: str, phase: str) -> dict:
            return r.get(server, {}).get("phases", {}).get(phase, {})

        out = []
        s_rps = ph("sluice", "single").get("rps")
        n_rps = ph("noop", "single").get("rps")
        f_rps = ph("fastapi", "single").get("rps")
        if s_rps and n_rps:
            pairs = paired_ratios(ph("sluice", "single").get("runs", []), ph("noop", "single").get("runs", []))
            if len(pairs) > 1:  # the same round's runs, a few seconds apart: the host's drift cancels
                ratio = statistics.median(pairs)
                figure = (f"median of the rounds' ratios {ratio:.1%} (rounds: "
                          f"{', '.join(f'{x:.1%}' for x in pairs)}; medians {s_rps:,.0f} / {n_rps:,.0f})")
            else:
                ratio = s_rps / n_rps
                figure = f"{s_rps:,.0f} / {n_rps:,.0f} = {ratio:.1%}"
            out.append(dict(target=f"1a. single event req/s ≥ {TARGET_VS_NOOP:.0%} of no-op Starlette",
                            figure=figure, ok=ratio >= TARGET_VS_NOOP))  # fmt: skip
        if s_rps and f_rps:
            ratio = s_rps / f_rps
            out.append(dict(target=f"1b. single event req/s ≥ {TARGET_VS_FASTAPI:g}× FastAPI + SQLite",
                            figure=f"{s_rps:,.0f} / {f_rps:,.0f} = {ratio:.1f}×",
                            ok=ratio >= TARGET_VS_FASTAPI))  # fmt: skip
        b = ph("sluice", "bulk")
        if b.get("eps") is not None:
            clean = b.get("not_accepted", 0) == 0 and b.get("errors_total", 0) == 0
            out.append(dict(target=f"2. bulk NDJSON ≥ {TARGET_BULK_EPS:,} events/s accepted, one core",
                            figure=f"{b['eps']:,.0f} events/s ({b['lines_per_body']} lines/body, "
                                   f"{b['rps']:,.1f} req/s)",
                            ok=b["eps"] >= TARGET_BULK_EPS and clean))  # fmt: skip
        elif b.get("error"):
            out.append(dict(target=f"2. bulk NDJSON ≥ {TARGET_BULK_EPS:,} events/s accepted",
                            figure=b["error"][:120], ok=False))  # fmt: skip
        # The other bulk servers: (server, what differs, the figure's end, extra condition).
        for name, what, extra, cond in (
            ("sluice-burst", "(diagnostic). the same, journal with room for the run",
             lambda r: f", {r.get('not_accepted', 0)} not accepted)", lambda r: True),
            # sluice-2w passes only if memory (target 4) holds in its configuration too.
            ("sluice-2w", f". the same on both cores (`--workers 2`), memory < {TARGET_RSS_MB:g} MB",
             lambda r: f"), {memory_figure(r.get('once_mb'), r['rss_mb'])}",
             lambda r: memory_mb(r.get("once_mb"), r["rss_mb"]) < TARGET_RSS_MB),
        ):  # fmt: skip
            d = ph(name, "bulk")
            if d.get("eps") is None:
                continue
            clean = d.get("not_accepted", 0) == 0 and d.get("errors_total", 0) == 0
            out.append(dict(target=f"2{what}",
                            figure=f"{d['eps']:,.0f} events/s ({d['rps']:,.1f} req/s{extra(d)}",
                            ok=d["eps"] >= TARGET_BULK_EPS and clean and cond(d)))  # fmt: skip
        lt = ph("sluice", "latency")
        if lt.get("latency_ms"):
            p99 = lt["latency_ms"]["p99"]
            kept_up = lt["achieved_rate"] >= 0.98 * lt["target_rate"]
            clean = not lt["failures"] and lt["ok_2xx"] == lt["completed"] and not lt["unfinished"]
            each = f"; runs {p99_runs(lt)}" if p99_runs(lt) else ""
            # The baseline at half its own peak tells how much of a miss is the machine's.
            base, noop = ph("noop", "latency"), ""
            if base.get("latency_ms"):
                noop = f"; the no-op at half its own peak: p99 {base['latency_ms']['p99']:.2f} ms"
                noop += f" (runs {p99_runs(base)})" if p99_runs(base) else ""
            out.append(dict(target=f"3. single event p99 at ½ peak < {TARGET_P99_MS:g} ms",
                            figure=f"p99 {p99:.2f} ms at {lt['achieved_rate']:,.0f} req/s "
                                   f"(peak {lt['peak_rps']:,.0f}{each}){noop}",
                            ok=p99 is not None and p99 < TARGET_P99_MS and kept_up and clean))  # fmt: skip
        if "sluice" in r and r["sluice"].get("rss_samples"):
            once, mb = r["sluice"].get("max_once_mb"), r["sluice"]["max_rss_mb"]
            out.append(dict(target=f"4. server resident memory (process + children) < {TARGET_RSS_MB:g} MB",
                            figure=f"{memory_figure(once, mb)} over {r['sluice']['rss_samples']} samples",
                            ok=memory_mb(once, mb) < TARGET_RSS_MB))  # fmt: skip
        return out


# --------------------------------------------------------------------------- profile summary


WAIT_FRAMES = re.compile(
    r"^(pthread_cond_(timed)?wait|PyThread_acquire_lock_timed|take_gil|sem_(timed|clock)?wait|"
    r"epoll_p?wait|uv__io_poll|__?poll|select|pselect6?|futex\w*|__futex\w*|"
    r"(clock_)?nanosleep)\b"
)


def summarize_profile(raw: Path, seconds: float, rate: int, top: int = 15) -> dict:
    """Summarize py-spy ``--native --threads --format raw`` output.

    Samples in which a thread waits (for a lock, the GIL, a condition or epoll: a wait
    function in the native frames below the last Python frame) are set apart as idle; the
    rest are the time a thread spends running or in a blocking system call (write, fsync).
    Percentages are of wall time: 100 % = one thread busy for the whole profile. Time in C
    is charged to the Python function that called it ("self, Python"); "native leaf" shows the
    innermost C function (write, fdatasync, sqlite3VdbeExec, deflate, ...)."""
    wall = float(seconds * rate)
    per_thread: dict[str, list[int]] = {}  # name -> [busy, waiting]
    self_py: dict[str, int] = {}
    leaf_native: dict[str, int] = {}
    incl: dict[str, int] = {}
    busy_total = 0
    tid_names: dict[int, str] = {}
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        thread = "?"
        proc = ""
        frames = []
        for f in stack.split(";"):
            if f.startswith("process "):
                # a child started by multiprocessing (e.g. an HTTP worker) vs the main process
                proc = "child " if "multiprocessing" in f else "main "
                continue
            if f.startswith("thread ("):
                thread = f
                m = re.match(r"thread \((\d+)\):\s*(.*)", f)
                if m:
                    tid_names[int(m.group(1))] = proc + m.group(2).strip()
                continue
            if f.startswith("0x"):  # unsymbolized native frame
                continue
            frames.append(f)
        py_idx = [i for i, f in enumerate(frames) if _is_python_frame(f)]
        last_py = py_idx[-1] if py_idx else -1
        native_tail = [_frame_name(f) for f in frames[last_py + 1 :]]
        waiting = any(WAIT_FRAMES.match(f) for f in native_tail) or not frames
        slot = per_thread.setdefault(proc + _thread_name(thread), [0, 0])
        slot[1 if waiting else 0] += count
        if waiting:
            continue
        busy_total += count
        if last_py >= 0:
            name = _frame_name(frames[last_py])
            self_py[name] = self_py.get(name, 0) + count
        leaf = native_tail[-1] if native_tail else "(Python)"
        leaf_native[leaf] = leaf_native.get(leaf, 0) + count
        for name in {_frame_name(f) for f in frames if _is_python_frame(f)}:
            incl[name] = incl.get(name, 0) + count
    if not per_thread:
        return {"samples": 0}

    def pct(d: dict[str, int], keep=lambda k, v: True) -> list[tuple[str, float]]:
        items = [(k, v) for k, v in d.items() if keep(k, v)]
        return [(k, round(100.0 * v / wall, 1))
                for k, v in sorted(items, key=lambda kv: -kv[1])[:top]]  # fmt: skip

    threads = sorted(per_thread.items(), key=lambda kv: -kv[1][0])
    max_thread = threads[0][1][0]
    return {
        "seconds": seconds,
        "rate": rate,
        "busy_pct": round(100.0 * busy_total / wall, 1),
        "threads": [(k, round(100.0 * b / wall, 1)) for k, (b, _) in threads if b][:top],
        "self": pct(self_py),
        "native": pct(leaf_native),
        # the project's own functions, without the entry points present in ~every sample
        "sluiceway": pct(incl, lambda k, v: "(sluiceway/" in k and v < 0.85 * max_thread),
        "tid_names": tid_names,
    }


def _is_python_frame(frame: str) -> bool:
    return bool(re.search(r"\.pyx?(:\d+)?\)$", frame)) or "(<frozen " in frame


def _thread_name(frame: str) -> str:
    # "thread (12345): journal-w0_0" -> "journal-w0_0"; numbered pools are folded together.
    name = frame.split(":", 1)[1].strip() if ":" in frame else frame
    return re.sub(r"^Thread-\d+", "Thread-N", re.sub(r"_\d+$", "_N", name))


def _thread_name_tagged(name: str) -> str:
    # "child Thread-3 (worker)" -> "child Thread-N (worker)"
    tag, _, rest = name.partition(" ") if name.startswith(("main ", "child ")) else ("", "", name)
    return (tag + " " if tag else "") + _thread_name("thread (0): " + rest)


def _frame_name(frame: str) -> str:
    # "function (path/to/file.py:123)" -> "function (path/to/file.py)"
    m = re.match(r"(.*?) \((.*?)(?::\d+)?\)$", frame.strip())
    if not m:
        return frame.strip()
    func, path = m.groups()
    if "/src/sluiceway/" in path:
        path = path[path.index("sluiceway/") :]
    elif "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    return f"{func} ({path})"


# --------------------------------------------------------------------------- output


def p99_runs(latency: dict) -> str:
    """"a, b, c ms": each run's p99 of a latency phase measured more than once, else ""."""
    rounds = latency.get("runs_p99") or []
    return f"{', '.join(f'{x:.2f}' for x in rounds)} ms" if len(rounds) > 1 else ""


def render_table(verdicts: list[dict]) -> str:
    rows = [("Target", "Figure", "Result")]
    rows += [(v["target"], v["figure"], "PASS" if v["ok"] else "FAIL") for v in verdicts]
    if len(rows) == 1:
        rows.append(("(no target could be evaluated)", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def machine_info() -> dict:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in ("sluiceway", "uvicorn", "uvloop", "httptools", "starlette", "fastapi",
                "pydantic", "orjson"):  # fmt: skip
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    try:
        wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    except OSError:
        wrk = "not found"
    mem_kb = 0
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                capture_output=True, text=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()  # fmt: skip
        if dirty:
            commit += " (+ uncommitted changes under src/)"
    except OSError:
        commit = "?"
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "mem_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk.strip(),
        "versions": versions,
        "commit": commit,
    }


def marked_block(text: str, begin: str, end: str) -> str:
    """The text from begin to end, both markers included; "" if either is missing."""
    i = text.find(begin)
    j = text.find(end, i + len(begin)) if i >= 0 else -1
    return text[i : j + len(end)] if j >= 0 else ""


def failure(what: str, error: str) -> str:
    """A docs line for a failed run: its name and the last line of its error."""
    return f"{what} failed: `{error.strip().splitlines()[-1][:300]}`"


def _ms(us: float | int | None) -> str:
    return "–" if us is None else f"{us / 1000:.2f}"


def write_doc(suite: Suite, verdicts: list[dict]) -> None:
    a = suite.args
    m = suite.machine
    red = suite.red
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    argv_shown = " ".join(shlex.quote(x) for x in sys.argv[1:])
    L: list[str] = []
    w = L.append
    w("# Benchmarks")
    w("")
    w(f"Generated by `python bench/run.py{(' ' + argv_shown) if argv_shown else ''}` on {now} "
      f"(commit {m['commit']}). Rerun it to refresh this page; only the notes section at the "
      "end is written by hand, and the Lightfile6, Ingress and Feedback sections by "
      "bench/lightfile6.py, bench/ingress.py and bench/feedback.py (kept as they are "
      "here).")  # fmt: skip
    w("")
    w("To run: `apt-get install wrk` (util-linux provides `taskset`), `pip install -e '.[test]'`, "
      "optionally `pip install py-spy` for `--profile`; then `python bench/run.py` (all phases, "
      "about 5 minutes), or e.g. `python bench/run.py --duration 10 --only single,latency "
      "--repeat 3`. Needs 2 CPUs. `python bench/run.py --help` lists the options; "
      "the default servers include `sluice-2w`, sluiceway with `--workers 2` on both cores (bulk "
      "only; not pinned, wrk stays on CPU 1); "
      "`--servers noop,fastapi,sluice,sluice-nosinks,sluice-burst,sluice-2w` adds the diagnostic "
      "runs of sluiceway without sinks, and (bulk only) with a journal that has room for the whole "
      "run. "
      "To compare code on a noisy host, `python bench/instructions.py` (valgrind) counts the "
      "instructions per request of the no-op and of sluiceway, and per record of its delivery.")  # fmt: skip
    w("")
    w("## Results")
    w("")
    w("| Target | Figure | Result |")
    w("|---|---|---|")
    for v in verdicts:
        w(f"| {v['target']} | {v['figure']} | {'**PASS**' if v['ok'] else '**FAIL**'} |")
    if not verdicts:
        w("| (no target could be evaluated in this run) | | |")
    others = [
        ph["other_cpu_pct"]
        for res in suite.results.values()
        for ph in res.get("phases", {}).values()
        if isinstance(ph, dict) and "other_cpu_pct" in ph
    ]
    if others:
        w("")
        w(f"CPU used by processes outside the benchmark during the measured runs: at most "
          f"{max(others):g} % of one core (median {sorted(others)[len(others) // 2]:g} %)"
          + (". **Other work shared the machine: treat these figures as noisy.**"
             if max(others) > 25 else ".")  # fmt: skip
          )
    w("")
    idle = [
        (ph["idle_servers_cpu_pct"], res.get("label", name))
        for name, res in suite.results.items()
        for ph in res.get("phases", {}).values()
        if isinstance(ph, dict) and "idle_servers_cpu_pct" in ph
    ]
    if idle:
        worst = max(idle)
        w(f"CPU used by the servers not under load (they share CPU {SERVER_CPU}) during a "
          f"measured run: at most {worst[0]:g} % of one core (during a {worst[1]} run).")  # fmt: skip
    for name, res in suite.results.items():
        if res.get("skipped"):
            w("")
            w(f"`{name}` was not measured: {res['skipped']}.")
        if res.get("error"):
            w("")
            w(failure(f"`{name}`", res["error"]))
        for phase, pres in res.get("phases", {}).items():
            if isinstance(pres, dict) and pres.get("error"):
                w("")
                w(failure(f"`{name}` {phase}", pres["error"]))
    w("")
    w("### Single event per request (wrk, closed loop)")
    w("")
    w(f"{EVENT_FILE.stat().st_size}-byte JSON body (`bench/wrk/event.json`), `-t1 "
      f"-c{a.connections}`, {a.warmup:g} s warm-up then {a.duration:g} s measured, "
      f"{a.repeat} time(s) per server{' (median run shown)' if a.repeat > 1 else ''}.")  # fmt: skip
    w("")
    w("| Server | req/s | vs no-op | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | "
      "server CPU % (µs/req) | max RSS MB | other CPU % |")  # fmt: skip
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    noop_rps = suite.results.get("noop", {}).get("phases", {}).get("single", {}).get("rps")
    for name, res in suite.results.items():
        s = res.get("phases", {}).get("single")
        if not s or s.get("error"):
            continue
        lat = s["latency_us"]
        vs = f"{s['rps'] / noop_rps:.1%}" if noop_rps else "–"
        runs = f" (runs: {', '.join(f'{x:,.0f}' for x in s['runs'])})" if len(s["runs"]) > 1 else ""
        w(f"| {res['label']} | {s['rps']:,.0f}{runs} | {vs} | {_ms(lat['p50'])} | "
          f"{_ms(lat['p90'])} | {_ms(lat['p99'])} | {_ms(lat['p999'])} | {_ms(lat['max'])} | "
          f"{s['errors_total']} | {_server_cpu(s)} | {s['rss_mb']} | {s['other_cpu_pct']} |")  # fmt: skip
    w("")
    w("### Latency at a constant rate (bench/loadgen.py, open loop)")
    w("")
    w(f"Rate = {a.latency_fraction:g} × the server's own peak from the run above; "
      f"{a.connections} keep-alive connections, {a.latency_warmup:g} s warm-up then "
      f"{a.duration:g} s measured, {a.repeat} time(s) per server, the servers taking turns"
      f"{MEDIAN_P99_NOTE if a.repeat > 1 else ''}. "
      "Latency runs from each request's intended send time "
      "(coordinated omission corrected). *Send lag* (p99) is how late requests went out: "
      "the generator's own lateness plus waiting for a free connection while the server is "
      "behind; *generator lag* (max) is the generator's own lateness alone, its self-check. "
      "*Server CPU* is the CPU time of the server's whole process tree (HTTP worker, journal "
      "thread, delivery to the sinks) over the run, warm-up included, as % of its one core and "
      "per request sent: at a steady rate a request costs more than at the peak (fewer requests "
      "share each wake-up and each sync), so half the peak rate is not half of the core.")
    w("")
    w("| Server | target req/s | achieved | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | "
      "statuses | send lag p99 ms | generator lag max ms | server CPU % (µs/req) | max RSS MB | "
      "other CPU % |")  # fmt: skip
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, res in suite.results.items():
        t = res.get("phases", {}).get("latency")
        if not t or t.get("error"):
            continue
        lat = t["latency_ms"]
        st = ", ".join(f"{k}: {v}" for k, v in t["statuses"].items())
        if t["failures"]:
            st += "; " + ", ".join(f"{k}: {v}" for k, v in t["failures"].items())
        if t["unfinished"]:
            st += f"; unfinished: {t['unfinished']}"
        rounds = t.get("runs_p99", [])
        each = f" (runs: {', '.join(str(x) for x in rounds)})" if len(rounds) > 1 else ""
        w(f"| {res['label']} | {t['target_rate']:,.0f} | {t['achieved_rate']:,.0f} | "
          f"{lat['p50']} | {lat['p90']} | {lat['p99']}{each} | {lat['p999']} | {lat['max']} | {st} | "
          f"{t['send_lag_ms']['p99']} | {t.get('generator_lag_ms', {}).get('max', '–')} | "
          f"{_server_cpu(t)} | {t['rss_mb']} | {t['other_cpu_pct']} |")  # fmt: skip
    w("")
    w("### Bulk NDJSON (wrk)")
    w("")
    w(f"Bodies of {a.bulk_lines} lines (≈{a.bulk_lines * (EVENT_FILE.stat().st_size + 1) / 1e3:,.0f}"
      f" kB), `Content-Type: application/x-ndjson`, `-t1 -c{a.bulk_connections}`, "
      f"{a.warmup:g} s warm-up then {a.duration:g} s measured, {a.repeat} time(s) per server. "
      "Events are counted "
      "from the `accepted` field of 202 answers (the no-op server always says 1 per body, so "
      "its row shows requests, the HTTP transfer ceiling, in lines/s).")  # fmt: skip
    w("")
    w("| Server | bodies/s | events/s accepted | lines/s sent | MB/s | p50 ms | p99 ms | "
      "not accepted | errors | max MB (pages once) | max RSS MB (sum) | other CPU % |")  # fmt: skip
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, res in suite.results.items():
        b = res.get("phases", {}).get("bulk")
        if not b or b.get("error"):
            continue
        lines_s = b["rps"] * b["lines_per_body"]
        mb = lines_s * (EVENT_FILE.stat().st_size + 1) / 1e6
        eps = f"{b['eps']:,.0f}" if name != "noop" else "–"
        w(f"| {res['label']} | {b['rps']:,.1f} | {eps} | {lines_s:,.0f} | {mb:,.0f} | "
          f"{_ms(b['latency_us']['p50'])} | {_ms(b['latency_us']['p99'])} | "
          f"{b['not_accepted']} | {b['errors_total']} | {b.get('once_mb') or '–'} | {b['rss_mb']} | "
          f"{b['other_cpu_pct']} |")  # fmt: skip
    w("")
    w("### Memory")
    w("")
    w("VmRSS from `/proc/<pid>/status` of the server process plus all its descendants, "
      "summed, sampled every 100 ms from launch to stop (all phases). That sum counts a page "
      "several processes map (the shared libraries, some 20 MB a process) once per process; "
      "the tree's physical memory with each page counted once is read from the processes' "
      "page tables (`/proc/<pid>/pagemap`, distinct page frames present) once a second, "
      "and target 4 is judged on it (on the sum where frames are hidden: not root).")
    w("")
    w("| Server | ready after s | max MB, pages counted once (tree) | max RSS MB (tree, sum) | "
      "max RSS MB (main process) | samples |")
    w("|---|---|---|---|---|---|")
    for name, res in suite.results.items():
        if res.get("rss_samples"):
            w(f"| {res['label']} | {res.get('ready_s', '–')} | {res.get('max_once_mb') or '–'} | "
              f"{res['max_rss_mb']} | {res['max_rss_main_mb']} | {res['rss_samples']} |")  # fmt: skip
    prof = suite.results.get("sluice", {}).get("profile")
    if prof:
        w("")
        w("### Where sluiceway's time goes (py-spy, separate unmeasured runs)")
        w("")
        w("`py-spy record --native --threads` at 100 Hz while wrk loads the server as in the "
          "measured runs (py-spy slows the server down, so these runs are not measured). "
          "Percentages are of wall time (100 % = one thread busy throughout); samples where a "
          "thread waits (lock, GIL, condition, epoll) are left out. *Self, Python* charges "
          "time spent in C to the Python function that called it; *native leaf* is the "
          "innermost C function. A thread that is ready to run but waiting for the CPU still "
          "counts as busy to py-spy, so on one shared core the py-spy shares of a low-priority "
          "process overstate it: *Thread CPU*, from /proc/<pid>/task/*/stat over the same "
          "window, is the actual CPU split (\"main\" = the process started, \"child\" = "
          "processes it started with multiprocessing).")  # fmt: skip
        for phase, p in prof.items():
            w("")
            if p.get("error") or not p.get("threads"):
                w(f"{phase}: no profile ({p.get('error', 'no samples')})")
                continue
            tc = ", ".join(f"{k} {v} %" for k, v in p.get("thread_cpu", [])[:6])
            th = ", ".join(f"{k} {v} %" for k, v in p["threads"][:6])
            w(f"**{phase}**: busy samples {p['busy_pct']} % of wall time; by thread: {th}. "
              f"Thread CPU (/proc): {tc}.")  # fmt: skip
            w("")
            w("| % | self, Python | % | native leaf | % | sluiceway function, inclusive |")
            w("|---|---|---|---|---|---|")
            cols = [p["self"], p["native"], p.get("sluiceway", [])]
            for i in range(max(len(c) for c in cols)):
                cells = []
                for c in cols:
                    name, val = c[i] if i < len(c) else ("", "")
                    cells += [str(val), f"`{name}`" if name else ""]
                w("| " + " | ".join(cells) + " |")
    w("")
    w("## Machine")
    w("")
    w(f"- {m['nproc']} cores: {m['cpu']}; {m['mem_gib']} GiB RAM; Linux {m['kernel']}")
    w(f"- Python {m['python']}; {m['wrk']}")
    w("- " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()))
    w("")
    w("## How the cores were shared")
    w("")
    w(f"The machine has {m['nproc']} cores. Every server, with all its threads and children "
      f"(journal fsync, delivery to the sinks), is pinned to CPU {SERVER_CPU} with `taskset -c "
      f"{SERVER_CPU}`; every load generator (wrk, bench/loadgen.py, py-spy) is pinned to CPU "
      f"{LOADGEN_CPU} with `taskset -c {LOADGEN_CPU}`. The servers are started once, at the "
      "beginning, and stopped by PID (SIGTERM, then SIGKILL) at the end; load goes to one "
      "server at a time, and with `--repeat` the servers take turns (ABC, CBA, ...) so drift "
      "over the run hits them alike. Before every warm-up the harness waits until all server "
      "trees are idle (< 5 % of a core for 2 s), so background delivery of one run's events "
      "does not overlap the next run; a server's own delivery work during its run counts "
      "against it. *Other CPU %* is CPU time used on the machine during a measured run by "
      "processes outside the benchmark (100 % = one core): a noise indicator, as others may "
      "share this machine. All traffic is on 127.0.0.1.")  # fmt: skip
    if "sluice-2w" in suite.results:
        w("")
        w("The exception is `sluice-2w` (bulk only): `sluice serve --workers 2`, not "
          f"pinned, so its two HTTP workers and its delivery process use both cores, CPU {LOADGEN_CPU} "
          "shared with wrk. It is started after the other servers have been stopped, and its bulk "
          "runs are made alone.")  # fmt: skip
    if NICE:
        w("")
        w(f"The load generators ran under `nice -n {NICE}` (`--nice {NICE}`), so that other work "
          "on the machine disturbed them less; the servers ran at the default priority.")  # fmt: skip
    w("")
    w("## Exact commands")
    w("")
    w("`$BENCH_TMP` is the run's temporary directory; `$TOKEN` the bearer token minted for it "
      "(the baselines ignore it). Ports are picked free at run time. Commands run from the "
      "repository root.")  # fmt: skip
    w("")
    w("```sh")
    for key, cmds in suite.commands.items():
        w(f"# {key}")
        for c in cmds:
            if c:
                w(red(c))
    w("```")
    for note in suite.notes:
        w("")
        w(f"Note: {note}")
    w("")
    text = DOC.read_text() if DOC.exists() else ""
    for begin, end in KEPT_SECTIONS:
        kept = marked_block(text, begin, end)
        if kept:
            w(kept)
            w("")
    old_notes = marked_block(text, NOTES_BEGIN, NOTES_END)
    old_notes = old_notes[len(NOTES_BEGIN) : -len(NOTES_END)] if old_notes else ""
    w("## Notes")
    w("")
    w(NOTES_BEGIN)
    w(old_notes.strip("\n") if old_notes.strip() else "(analysis written by hand goes here)")
    w(NOTES_END)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text("\n".join(L) + "\n")


# --------------------------------------------------------------------------- cli


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="sluiceway benchmark suite (see the module docstring)."
    )
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of wrk warm-up")
    p.add_argument("--only", default="single,bulk,latency",
                   help="comma-separated phases: single, bulk, latency")  # fmt: skip
    p.add_argument("--servers", default="noop,fastapi,sluice,sluice-2w",
                   help="comma-separated servers: noop, fastapi, sluice, sluice-2w (bulk only: "
                   "--workers 2, not pinned), and the diagnostics "
                   "sluice-nosinks (sluiceway with no sinks, i.e. without delivery) and "
                   "sluice-burst (bulk only: the default gateway with a 16 GiB journal)")  # fmt: skip
    p.add_argument("--repeat", type=int, default=1, help="measured runs per phase (median)")
    p.add_argument("--connections", type=int, default=32, help="connections, single/latency")
    p.add_argument("--bulk-connections", type=int, default=8)
    p.add_argument("--bulk-lines", type=int, default=2000, help="NDJSON lines per body")
    p.add_argument("--latency-fraction", type=float, default=0.5, help="fraction of peak")
    p.add_argument("--latency-warmup", type=float, default=2.0)
    p.add_argument("--settle-timeout", type=float, default=120.0,
                   help="max seconds to wait for a server to go idle between phases")  # fmt: skip
    p.add_argument("--quiet-timeout", type=float, default=30.0,
                   help="max seconds to wait, before each run, for CPU use by other processes "
                   "on the machine to drop under --quiet-threshold")  # fmt: skip
    p.add_argument("--quiet-threshold", type=float, default=10.0,
                   help="percent of one core")  # fmt: skip
    p.add_argument("--nice", type=int, default=0,
                   help="run the load generators under `nice -n N` (e.g. -10 when other work "
                   "shares the machine; needs root for N < 0). Servers keep the default "
                   "priority.")  # fmt: skip
    p.add_argument("--fastapi-handler", choices=["sync", "async"], default="sync")
    p.add_argument("--sluice-env", action="append", metavar="KEY=VALUE",
                   default=None,
                   help="environment for `sluice serve` (repeatable; default "
                   "SLUICE_LOG__LEVEL=warning, the counterpart of uvicorn's --log-level "
                   "warning)")  # fmt: skip
    p.add_argument("--sluice-config", default="",
                   help="YAML config for `sluice serve` (default: none, the embedded defaults: "
                   "object_store and sql sinks in the data dir)")  # fmt: skip
    p.add_argument("--sluice-cmd", default="", help="command for sluice (default: on PATH)")
    p.add_argument("--profile", action="store_true",
                   help="also profile sluiceway with py-spy (separate, unmeasured runs)")  # fmt: skip
    p.add_argument("--json-out", default="", help="also write all figures as JSON here")
    p.add_argument("--no-docs", action="store_true", help="do not rewrite docs/benchmarks.md")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args(argv)
    global NICE
    NICE = args.nice
    if args.sluice_env is None:
        args.sluice_env = ["SLUICE_LOG__LEVEL=warning"]
    for kv in args.sluice_env:
        if "=" not in kv:
            p.error(f"--sluice-env wants KEY=VALUE, got {kv!r}")
    if args.duration <= 0 or args.duration > 300:
        p.error("--duration must be in (0, 300]")
    if args.repeat < 1 or args.repeat > 10:
        p.error("--repeat must be 1..10")
    bad = {x.strip() for x in args.servers.split(",") if x.strip()} - {
        "noop", "fastapi", "sluice", "sluice-nosinks", "sluice-burst", "sluice-2w"}
    if bad:
        p.error(f"unknown server(s) {sorted(bad)}; valid: noop, fastapi, sluice, sluice-nosinks, "
                "sluice-burst, sluice-2w")
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            p.error(f"`{tool}` is required (apt-get install {'wrk' if tool == 'wrk' else 'util-linux'})")
    if (os.cpu_count() or 1) < 2:
        p.error("needs 2 CPUs: the server is pinned to CPU 0 and the load generator to CPU 1")
    return Suite(args).run()


if __name__ == "__main__":
    sys.exit(main())
