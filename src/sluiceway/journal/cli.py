"""``sluice journal``: ``status`` (what the journal holds and how far each sink has delivered
it), ``repair`` (a damaged embedded journal, gateway stopped: ``repair``) and ``salvage``
(records of quarantined files back into the journal: ``salvage``).

``status`` is safe beside a running gateway: the journal is opened read-only and registers no
consumer, so it changes nothing (no cursor written, nothing reclaimed). Figures are as of the
moment of reading; a running gateway moves them on.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import orjson
import typer
from rich.table import Table

from sluiceway.cli_options import ConfigOpt, DataDirOpt

if TYPE_CHECKING:
    from sluiceway.config import Config

journal_app = typer.Typer(help="Inspect the journal: what it holds and how far each sink has delivered it.",
                          no_args_is_help=True)


async def journal_status(cfg: "Config") -> tuple[list[dict[str, Any]], list[str]]:
    """One dict per partition (offsets, bytes, each configured sink's cursor, lag and the
    ``received_at`` of its oldest record not yet delivered), and the
    errors of partitions that could not be read. On JetStream, also one dict per stream of
    another gateway's journal on the server, with ``"sinks": None`` (not this gateway's)."""
    from sluiceway.errors import JournalError
    from sluiceway.journal import build_journal
    from sluiceway.runtime.instance import InstanceIdError, existing_instance_id

    journal = build_journal(cfg, writer=False, writer_name=None)
    errors: list[str] = []
    # open() logs a partition it cannot read; refresh() below raises the same error, which is
    # reported once, with the others
    embedded_log = logging.getLogger("sluiceway.journal.embedded")
    level = embedded_log.level
    embedded_log.setLevel(logging.CRITICAL)
    try:
        await journal.open([])
    finally:
        embedded_log.setLevel(level)
    try:
        try:
            parts = await journal.refresh()
        except JournalError as e:  # the readable partitions are listed all the same
            errors.append(str(e))
            parts = journal.partitions()
        rows = []
        try:
            instance = existing_instance_id(cfg.data_dir)  # status writes nothing, not even a new id
        except InstanceIdError as e:  # the journal can still be shown; the damage is named
            instance = None
            errors.append(str(e))
        for part in parts:
            st = part.stats()
            sinks = {}
            waiting: dict[int, str | None] = {}  # acked -> received_at of the record after it
            for sink in cfg.sinks:
                try:
                    cur = await journal.cursor(part.name, sink.name)
                except JournalError as e:
                    errors.append(str(e))
                    continue
                lag = max(0, st.last_offset - cur.acked)
                if lag and cur.acked not in waiting:
                    waiting[cur.acked] = await _received_at(part, cur.acked)
                sinks[sink.name] = {"acked": cur.acked, "pending": list(cur.pending) if cur.pending else None,
                                    "lag": lag, "oldest_waiting": waiting.get(cur.acked) if lag else None}
            rows.append({"instance": instance, "partition": part.name,
                         "first_offset": st.first_offset, "last_offset": st.last_offset, "bytes": st.bytes,
                         "sinks": sinks})
        others = getattr(journal, "other_instances", None)
        if others is not None:
            try:
                rows += [{**r, "sinks": None} for r in await others()]
            except JournalError as e:
                errors.append(str(e))
        return rows, errors
    finally:
        await journal.aclose()


async def _received_at(part, acked: int) -> str | None:
    """``received_at`` of the first record after ``acked`` (the oldest a sink has not delivered)."""
    from sluiceway.errors import JournalError
    from sluiceway.record import decode_head

    try:
        entries = await part.read(acked, 1, 1)
    except JournalError:  # named by refresh() already, or gone meanwhile
        return None
    head = decode_head(entries[0].data) if entries else None
    return head.received_at if head is not None else None


@journal_app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="One JSON object per partition."),
           config: Optional[Path] = ConfigOpt, data_dir: Optional[Path] = DataDirOpt) -> None:
    """Per partition: the offsets and bytes it holds, and each sink's acked offset, batch in
    flight, lag (records not yet delivered) and when the oldest of those was received. Exits 1
    when a partition cannot be read."""
    from sluiceway import cli

    cfg = cli._load(config, data_dir=data_dir)
    if cfg.journal.engine == "embedded" and not (cfg.journal_dir / "partitions").is_dir():
        if not as_json:
            cli.out.print(f"no journal in {cfg.journal_dir} yet: nothing was accepted there")
        return
    if cfg.journal.engine == "jetstream" and not (cfg.data_dir / "instance-id").exists():
        if not as_json:  # its streams are named by the id, made when the gateway first starts
            cli.out.print(f"no journal for {cfg.data_dir} yet: it has no instance-id, so nothing was accepted there")
        return
    try:
        rows, errors = asyncio.run(journal_status(cfg))
    except Exception as e:  # noqa: BLE001 - e.g. the NATS server cannot be reached
        cli.err.print(f"error: cannot open the journal: {e}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    if as_json:
        for r in rows:
            typer.echo(orjson.dumps(r).decode())
    else:
        _print(cli.out, rows)
        kept = [f for f in (cfg.journal_dir / "quarantine").rglob("*") if f.is_file()]
        if kept:
            _say(cli.out, f"{cfg.journal_dir / 'quarantine'} holds {len(kept)} file(s), "
                 f"{sum(f.stat().st_size for f in kept):,} bytes: damaged journal files and cut frames, "
                 "kept for inspection (docs/operations.md, Damaged journal files)")
    for e in errors:
        cli.err.print(f"error: {e}", highlight=False, markup=False, soft_wrap=True)
    if errors:
        raise typer.Exit(1)


def _say(console, text: str) -> None:
    """One line of plain text, not wrapped (a line a script may look for stays whole)."""
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def _print(console, rows: list[dict[str, Any]]) -> None:
    own = [r for r in rows if r["sinks"] is not None]
    others = [r for r in rows if r["sinks"] is None]
    parts = Table("partition", "first", "last", "bytes")
    sinks = Table("partition", "sink", "acked", "in flight", "lag", "oldest waiting")
    totals: dict[str, int] = {}
    for r in own:
        parts.add_row(r["partition"], str(r["first_offset"]), str(r["last_offset"]), f"{r['bytes']:,}")
        for sink, c in r["sinks"].items():
            flight = f"{c['pending'][0]}-{c['pending'][1]}" if c["pending"] else ""
            sinks.add_row(r["partition"], sink, str(c["acked"]), flight, f"{c['lag']:,}", c["oldest_waiting"] or "")
            totals[sink] = totals.get(sink, 0) + c["lag"]
    console.print(parts)
    instance = f" of instance {own[0]['instance']}" if own and own[0]["instance"] else ""
    console.print(f"{len(own)} partition(s){instance}, {sum(r['bytes'] for r in own):,} bytes", highlight=False)
    if totals:
        console.print(sinks)
    for sink, lag in totals.items():
        console.print(f"sink {sink}: {lag:,} record(s) not yet delivered", highlight=False)
    if others:
        o = Table("instance", "partition", "stream", "first", "last", "bytes",
                  title="Other gateways' journal streams on this NATS server (not delivered by this gateway)")
        for r in others:
            o.add_row(r["instance"], r["partition"], r["stream"], str(r["first_offset"]), str(r["last_offset"]),
                      f"{r['bytes']:,}")
        console.print(o)


@journal_app.command("repair")
def repair_cmd(dry_run: bool = typer.Option(False, "--dry-run", help="Only report what is damaged; change nothing."),
               keep_tail: bool = typer.Option(
                   False, "--keep-tail",
                   help="Also keep the good frames that follow a torn write at the end of a partition's last segment "
                        "(the gateway cuts them off when it starts)."),
               config: Optional[Path] = ConfigOpt, data_dir: Optional[Path] = DataDirOpt) -> None:
    """With the gateway stopped: check every frame of the embedded journal, and replace each
    damaged segment by the runs of good frames it still holds. The damaged file is moved to
    journal/quarantine/, never deleted; a sink's batch in flight over records that could not be
    read is sent again under a key of its own. Exits 1 when the gateway is running."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    from sluiceway import cli
    from sluiceway.errors import JournalError

    from .repair import repair

    cfg = cli._load(config, data_dir=data_dir)
    if cfg.journal.engine != "embedded":
        cli.err.print("error: journal repair is for the embedded journal; a NATS JetStream journal is kept "
                      "(and repaired) by the NATS server", highlight=False, markup=False)
        raise typer.Exit(2)
    if not (cfg.journal_dir / "partitions").is_dir():
        cli.out.print(f"no journal in {cfg.journal_dir} yet: nothing to repair", highlight=False)
        return
    with Progress(TextColumn("checking the journal"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
                  console=cli.err, disable=not cli.err.is_terminal, transient=True) as progress:
        task = progress.add_task("check", total=None)
        try:
            report = repair(cfg.journal_dir, cfg.data_dir, consumers=[s.name for s in cfg.sinks], dry_run=dry_run,
                            keep_tail=keep_tail,
                            fsync=cfg.journal.fsync, progress=lambda n: progress.advance(task, n),
                            total=lambda n: progress.update(task, total=n))
        except JournalError as e:
            cli.err.print(f"error: {e}", highlight=False, markup=False)
            raise typer.Exit(1) from None
    _print_repair(cli.out, report, dry_run)


def _print_repair(console, report, dry_run: bool) -> None:
    def say(text: str) -> None:
        _say(console, text)

    for name in report.finished:
        say(f"{name}: finished the repair that was interrupted")
    say(f"checked {report.segments_checked} segment(s), {report.bytes_checked:,} bytes")
    for d in report.damaged:
        kept = ", ".join(f"{r.first}-{r.last}" for r in d.runs) or "none"
        missing = ", ".join(f"{a}-{b}" for a, b in d.missing) or "none"
        say(f"{d.partition}/{d.name}: {d.reason}")
        say(f"  {'would keep' if dry_run else 'kept'} {d.kept:,} record(s) (offsets {kept}); "
            f"missing offsets {missing} (at most {d.missing_count:,} record(s))")
        if d.quarantined is not None:
            say(f"  the damaged file is now {d.quarantined}")
    for s in report.sinks:
        if s.damaged:
            say(f"sink {s.sink} ({s.partition}): {s.damaged}; it {'would start' if dry_run else 'starts'} over from "
                "the oldest record in the journal (records it has may be sent again)"
                + (f"; the file is now {s.quarantined}" if s.quarantined else ""))
        if s.undelivered_missing:
            say(f"sink {s.sink} ({s.partition}): at most {s.undelivered_missing:,} of the missing record(s) "
                "had not been delivered to it")
        if s.widened:
            (a, b), c = s.pending, s.widened[1]
            say(f"sink {s.sink} ({s.partition}): its batch in flight ({a}-{b}) {'would be' if dry_run else 'is'} "
                f"sent again as {a}-{c}, under a key of its own; records it had stored from that batch may "
                "appear twice (the same record id)")
    for note in report.notes:
        say(note)
    found = f"{len(report.damaged)} damaged segment(s) and {len(report.damaged_cursors)} damaged cursor(s)"
    if not report.damaged and not report.damaged_cursors:
        say("nothing to repair")
    elif dry_run:
        say(f"{found}; run without --dry-run to repair them")
    else:
        say(f"repaired {found}; the gateway can start")


@journal_app.command("salvage")
def salvage_cmd(files: list[Path] = typer.Argument(..., help="Files from journal/quarantine/.", exists=True,
                                                    dir_okay=False),
                dry_run: bool = typer.Option(False, "--dry-run", help="Only count the records; append nothing."),
                config: Optional[Path] = ConfigOpt, data_dir: Optional[Path] = DataDirOpt) -> None:
    """Put the records of quarantined journal files (cut tails, damaged segments moved aside)
    back into the journal, in a partition of their own (salvage) that the gateway delivers; each
    file is then renamed .salvaged. Safe beside a running gateway."""
    from sluiceway import cli
    from sluiceway.errors import JournalError
    from sluiceway.journal import build_journal

    from .salvage import PARTITION, batches, find_records, mark_salvaged

    cfg = cli._load(config, data_dir=data_dir)
    try:
        found = [find_records(f) for f in files]
    except JournalError as e:
        cli.err.print(f"error: {e}", highlight=False, markup=False)
        raise typer.Exit(2) from None

    def say(text: str) -> None:
        _say(cli.out, text)

    if dry_run:
        for f in found:
            say(f"{f.path}: {len(f.records):,} record(s) to put back"
                + (f", {f.skipped:,} good frame(s) that are not records" if f.skipped else ""))
        return

    async def go() -> None:
        journal = build_journal(cfg, writer=True, writer_name=PARTITION)
        await journal.open([])  # no consumer: this process reclaims nothing
        try:
            part = journal.writer()
            for f in found:
                first = last = None
                for batch in batches(f.records):
                    a, last = await part.append(batch)
                    first = first or a
                done = mark_salvaged(f.path, cfg.journal.fsync)
                where = f" (partition {PARTITION}, offsets {first}-{last})" if f.records else ""
                say(f"{f.path}: {len(f.records):,} record(s) put back into the journal{where}; the file is now {done}")
        finally:
            await journal.aclose()

    try:
        asyncio.run(go())
    except JournalError as e:
        cli.err.print(f"error: {e}", highlight=False, markup=False)
        raise typer.Exit(1) from None
