"""What the standalone target benchmarks share (bench/lightfile6.py, bench/ingress.py,
bench/feedback.py, bench/logs.py, bench/jetstream.py): the run lock, the common options, the
driver and the marked section each writes to docs/benchmarks.md.

Each script measures its targets against a baseline in the same run and rewrites only the
text between its own markers (``<!-- BEGIN NAME (bench/name.py) -->`` … ``<!-- END NAME -->``);
bench/run.py keeps those sections as they are when it rewrites the rest of the page (see
``KEPT_SECTIONS`` there). A run holds an exclusive flock on /tmp/sluice-bench.lock for its
whole life, so runs never overlap; run them as ``flock /tmp/sluice-bench.lock python
bench/<script>.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from run import DOC, ROOT, Server, Suite, failure, log, marked_block, render_table

LOCK = Path("/tmp/sluice-bench.lock")


# --------------------------------------------------------------------------- the lock


def ancestors(pid: int) -> list[int]:
    out = []
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
        out.append(pid)
    return out


def flock_holders(fd: int) -> set[int]:
    """PIDs holding a flock on the file open at fd, from /proc/locks."""
    st = os.fstat(fd)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    out = set()
    with open("/proc/locks") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 5 and parts[1] == "FLOCK" and parts[5] == dev:
                out.add(int(parts[4]))
    return out


def take_lock(timeout: float):
    """Hold LOCK exclusively for this process's life; wait up to timeout seconds for it.
    If an ancestor holds it (``flock /tmp/sluice-bench.lock python bench/<script>.py``),
    this run is already the one holding it."""
    f = open(LOCK, "a")
    deadline = time.monotonic() + timeout
    said = False
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            pass
        holders = flock_holders(f.fileno())
        mine = holders & set(ancestors(os.getpid()))
        if mine:
            log(f"{LOCK} is held by parent pid {min(mine)}: running under it")
            return f
        if time.monotonic() > deadline:
            raise SystemExit(f"{LOCK} still held by pid(s) {sorted(holders)} after {timeout:g}s")
        if not said:
            log(f"waiting for {LOCK} (held by pid(s) {sorted(holders)}): another benchmark runs")
            said = True
        time.sleep(0.5)


# --------------------------------------------------------------------------- helpers


@dataclass
class Trial:
    """One way of loading the server or doing the work, taking turns with the others."""

    name: str
    label: str
    argv: list[str]  # a command; for wrk: [script, *script arguments]
    url: str = ""  # for wrk


def wrk_summary(label: str, rs: list[dict]) -> dict:
    """Medians over the measured wrk runs of one endpoint."""
    return {
        "label": label, "runs": [x["rps"] for x in rs],
        "rps": statistics.median(x["rps"] for x in rs),
        "p50_ms": statistics.median(x["latency_us"]["p50"] for x in rs) / 1000,
        "p99_ms": statistics.median(x["latency_us"]["p99"] for x in rs) / 1000,
        "errors": sum(x["errors_total"] for x in rs),
        "other_cpu_pct": max(x["other_cpu_pct"] for x in rs),
    }  # fmt: skip


def rps_verdict(target: str, a: dict, b: dict, floor: float) -> dict:
    """Target: a's req/s ≥ floor × b's (wrk_summary results), without errors."""
    ratio = a["rps"] / b["rps"]
    clean = a["errors"] == 0 and b["errors"] == 0
    return dict(target=target, ok=ratio >= floor and clean,
                figure=f"{a['rps']:,.0f} / {b['rps']:,.0f} = {ratio:.1%}" + ("" if clean else " (errors)"))  # fmt: skip


def wrk_rows(runs: list[dict]) -> list[str]:
    """A markdown table of wrk_summary results."""
    out = ["| Endpoint | req/s (median) | runs | p50 ms | p99 ms | errors | max other CPU % |",
           "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in runs:
        out.append(f"| `{r['label']}` | {r['rps']:,.0f} | {', '.join(f'{x:,.0f}' for x in r['runs'])} | "
                   f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | {r['other_cpu_pct']} |")  # fmt: skip
    return out


def wrk_turns(b: Suite, srv: Server, trials: list[Trial], key: str) -> dict[str, dict]:
    """The trials' wrk loads against srv, taking turns over --repeat rounds (AB, BA, ...);
    medians per trial. Commands are listed under ``f"{key} {label}"``."""
    runs: dict[str, list[dict]] = {t.name: [] for t in trials}
    for r, t in b.rounds(trials):
        res = b.measured_wrk(srv, t.argv[0], b.args.connections, t.argv[1:], url=t.url,
                             key=f"{key} {t.label}: warm-up, then measured run")  # fmt: skip
        runs[t.name].append(res)
        log(f"{t.label} run {r + 1}: {res['rps']:,.0f} req/s, p99 "
            f"{res['latency_us']['p99'] / 1000:.2f} ms, errors {res['errors_total']}, "
            f"other CPU {res['other_cpu_pct']}%")  # fmt: skip
    return {t.name: wrk_summary(t.label, runs[t.name]) for t in trials}


def pin_self(cpu: str) -> None:
    """Pin this (harness) process to one CPU; children started later inherit it unless
    started under their own ``taskset``."""
    os.sched_setaffinity(0, {int(cpu)})


# --------------------------------------------------------------------------- docs


def replace_section(begin: str, end: str, lines: list[str]) -> None:
    """Replace the text between begin and end (markers included) in docs/benchmarks.md with
    lines (which start with begin and end with end); a new section goes before the Notes."""
    block = "\n".join(lines)
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    old = marked_block(text, begin, end)
    if old:
        text = text.replace(old, block)
    elif "\n## Notes" in text:
        i = text.index("\n## Notes")
        text = text[: i + 1] + block + "\n\n" + text[i + 1 :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOC.write_text(text)


def section_head(begin: str, title: str, script: str, machine: dict, minutes: str,
                 verdicts: list[dict]) -> list[str]:  # fmt: skip
    """The start of a script's section: markers, how it was generated, the verdict table."""
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    argv = shlex.join(sys.argv[1:])
    L = [begin, f"## {title} ({script})", ""]
    L.append(f"Generated by `flock {LOCK} python {script}{' ' + argv if argv else ''}` on {now} "
             f"(commit {machine['commit']}; {machine['nproc']} cores: {machine['cpu']}). Rerun it "
             "to refresh this section; `bench/run.py` keeps it as it is. "
             f"`python {script} --help` lists the options; a run takes about {minutes}.")  # fmt: skip
    L += ["", "| Target | Figure | Result |", "|---|---|---|"]
    for v in verdicts:
        L.append(f"| {v['target']} | {v['figure']} | {'**PASS**' if v['ok'] else '**FAIL**'} |")
    return L


def failures(out: dict[str, dict]) -> list[str]:
    lines = []
    for phase, r in out.items():
        if isinstance(r, dict) and r.get("error"):
            lines += ["", failure(f"`{phase}`", r["error"])]
    return lines


def commands_block(b: Suite, intro: str, files: dict[str, str] | None = None) -> list[str]:
    """The exact commands of a run, with the files it wrote (name → YAML text) first."""
    L = ["", intro, ""]
    for name, text in (files or {}).items():
        L += [f"`$BENCH_TMP/{name}`:", "", "```yaml", text.rstrip("\n"), "```", ""]
    L.append("```sh")
    for key, cmds in b.commands.items():
        L.append(f"# {key}")
        L.extend(b.red(c) for c in cmds if c)
    L.append("```")
    return L


# --------------------------------------------------------------------------- the driver


class TargetBench(Suite):
    """A standalone target benchmark: subclasses set BEGIN/END and implement ``measure``
    (filling ``self.out``), ``verdicts`` and ``section`` (the docs lines between the markers)."""

    BEGIN = END = ""
    name = ""

    def __init__(self, args: argparse.Namespace, configs: dict[str, str] | None = None) -> None:
        super().__init__(argparse.Namespace(**{**vars(args), "only": ""}))
        self.args = args
        self.phases = [p.strip() for p in getattr(args, "only", "").split(",") if p.strip()]
        self.configs = configs or {}
        for fname, text in self.configs.items():
            (self.tmp / fname).write_text(text)
        self.out: dict[str, dict] = {}

    def server(self, name: str, config: str, interval: float | None = None) -> Server:
        """A started ``sluice serve`` with a fresh data dir and the config file ``config``
        (its VmRSS sampled every ``interval`` s, default 0.1)."""
        self.args.sluice_config = str(self.tmp / config)
        srv, why = self.sluice_server(name)
        if srv is None:
            raise RuntimeError(why)
        if interval:
            srv.interval = interval
        self.start(srv, is_sluice=True)
        return srv

    def attempt(self, phase: str, fn, *args) -> None:
        try:
            self.out[phase] = fn(*args)
        except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
            self.out[phase] = {"error": str(exc)[-1000:]}
            log(f"{phase} FAILED: {exc}")

    def measure(self) -> None:
        raise NotImplementedError

    def verdicts(self) -> list[dict]:
        raise NotImplementedError

    def section(self, verdicts: list[dict]) -> list[str]:
        raise NotImplementedError

    def run(self) -> int:
        try:
            self.measure()
        finally:
            for srv in list(self.up):
                self.finish(srv)
        verdicts = self.verdicts()
        print()
        print(render_table(verdicts))
        ok = not any(isinstance(r, dict) and "error" in r for r in self.out.values())
        if self.args.json_out:
            Path(self.args.json_out).write_text(json.dumps(
                {"results": self.out, "verdicts": verdicts}, indent=2, default=str))  # fmt: skip
        if not self.args.no_docs:
            replace_section(self.BEGIN, self.END, self.section(verdicts))
            log(f"wrote the {self.name} section of {DOC.relative_to(ROOT)}")
        if self.args.keep:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return 0 if ok else 1


def wrk_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, default=6.0, help="seconds per measured wrk run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk warm-up per run")
    p.add_argument("--connections", type=int, default=32, help="wrk connections")


def common_options(p: argparse.ArgumentParser, repeat: int = 3) -> None:
    """The options every target script takes."""
    p.add_argument("--repeat", type=int, default=repeat, help="runs per way (median; order alternates)")
    p.add_argument("--settle-timeout", type=float, default=60.0,
                   help="max seconds to wait for the server to go idle before a run")  # fmt: skip
    p.add_argument("--quiet-timeout", type=float, default=3.0,
                   help="max seconds to wait for other processes' CPU use to drop under "
                   "--quiet-threshold before a run")  # fmt: skip
    p.add_argument("--quiet-threshold", type=float, default=10.0, help="percent of one core")
    p.add_argument("--lock-timeout", type=float, default=1800.0,
                   help=f"max seconds to wait for {LOCK}")  # fmt: skip
    p.add_argument("--sluice-env", action="append", metavar="KEY=VALUE", default=None,
                   help="environment for `sluice serve` (default SLUICE_LOG__LEVEL=warning)")
    p.add_argument("--sluice-cmd", default="", help="command for sluice (default: on PATH)")
    p.add_argument("--tmp-dir", default=None, help="where the temporary directory goes")
    p.add_argument("--json-out", default="", help="also write all figures as JSON here")
    p.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")


def pg_option(p: argparse.ArgumentParser) -> None:
    """``--pg-url``, for the scripts that use PostgreSQL (bench/feedback.py, bench/logs.py)."""
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test",
                   help="PostgreSQL to connect to; throwaway databases are created next to it")  # fmt: skip


def parser(doc: str) -> argparse.ArgumentParser:
    class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
        pass

    return argparse.ArgumentParser(description=doc, formatter_class=Formatter)


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace, phases: tuple[str, ...],
               tools: tuple[str, ...]) -> None:  # fmt: skip
    """The checks every target script makes on its options and the machine."""
    args.sluice_env = args.sluice_env or ["SLUICE_LOG__LEVEL=warning"]
    if phases:
        bad = {x.strip() for x in args.only.split(",") if x.strip()} - set(phases)
        if bad or not args.only.strip():
            p.error(f"--only: unknown phase(s) {sorted(bad)}; valid: {', '.join(phases)}")
    if not 1 <= args.repeat <= 10:
        p.error("--repeat must be 1..10")
    if not 0 < getattr(args, "duration", 1) <= 300:
        p.error("--duration must be in (0, 300]")
    if any("=" not in kv for kv in args.sluice_env):
        p.error("--sluice-env wants KEY=VALUE")
    for tool in tools:
        if not shutil.which(tool):
            p.error(f"`{tool}` is required")
    if (os.cpu_count() or 1) < 2:
        p.error("needs 2 CPUs: the server is pinned to CPU 0 and the clients to CPU 1")


def launch(bench: type[TargetBench], args: argparse.Namespace) -> int:
    """Run a target benchmark under the lock, stopping its servers on SIGTERM too."""
    tempfile.tempdir = args.tmp_dir
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the servers get stopped
    lock = take_lock(args.lock_timeout)
    try:
        return bench(args).run()
    finally:
        lock.close()
