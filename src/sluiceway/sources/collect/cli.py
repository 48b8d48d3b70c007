"""``sluice files``: the collectors' file states (``files`` table) — list and retry."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import orjson
import typer
from rich.table import Table

from sluiceway.cli_options import ConfigOpt, DataDirOpt

STATUSES = ("pending", "processing", "completed", "failed", "parked")  # store.files (not imported: SQLAlchemy)

files_app = typer.Typer(help="List collected files (bucket, directory sources) and retry failed ones.",
                        no_args_is_help=True)
SourceOpt = typer.Option(None, "--source", help="Only this source's files.")


@files_app.command("list")
def files_list(status: Optional[str] = typer.Option(None, help=f"Only files in this state: {', '.join(STATUSES)}."),
               source: Optional[str] = SourceOpt, limit: int = typer.Option(1000),
               as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
               config: Optional[Path] = ConfigOpt, data_dir: Optional[Path] = DataDirOpt) -> None:
    """List files and their states (oldest key first per source)."""
    from sluiceway import cli

    if status is not None and status not in STATUSES:
        cli.err.print(f"error: --status must be one of {', '.join(STATUSES)}", highlight=False, markup=False)
        raise typer.Exit(2)
    rows = cli._run(lambda st: st.list_files(source=source, status=status, limit=limit),
                    cli._load(config, data_dir=data_dir))
    if as_json:
        for r in rows:
            typer.echo(orjson.dumps(r).decode())
        return
    t = Table("source", "key", "status", "attempts", "records", "bad", "updated", "error")
    for r in rows:
        t.add_row(r["source"], r["key"], r["status"], str(r["attempts"]), _n(r["record_count"]),
                  _n(r["bad_line_count"]), r["updated_at"] or "", (r["last_error"] or "")[:80])
    cli.out.print(t)


def _n(v: int | None) -> str:
    return "" if v is None else str(v)


@files_app.command("retry")
def files_retry(key: Optional[str] = typer.Argument(None, help="The file's key (relative to prefix / directory)."),
                all_failed: bool = typer.Option(False, "--all-failed", help="Every failed and parked file."),
                source: Optional[str] = SourceOpt,
                config: Optional[Path] = ConfigOpt, data_dir: Optional[Path] = DataDirOpt) -> None:
    """Queue files again (pending, attempts reset); a running gateway picks them up at its next scan."""
    from sluiceway import cli

    if (key is None) == (not all_failed):
        cli.err.print("error: give a KEY or --all-failed (not both)", highlight=False, markup=False)
        raise typer.Exit(2)
    n = cli._run(lambda st: st.retry_files(key=key, source=source, all_failed=all_failed),
                 cli._load(config, data_dir=data_dir))
    if key is not None and n == 0:
        cli.err.print(f"error: no file {key!r} (or it is being processed now)", highlight=False, markup=False)
        raise typer.Exit(1)
    cli.out.print(f"queued {n} file(s) again", highlight=False)
