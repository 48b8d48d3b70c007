"""The ``sluice`` command."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any, Optional

import orjson
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sluiceway.cli_options import ConfigOpt, DataDirOpt
from sluiceway.config import Config, dump_config, load_config
from sluiceway.errors import ConfigError, SluicewayError
from sluiceway.journal.cli import journal_app
from sluiceway.sources.collect.cli import files_app

app = typer.Typer(help="sluiceway: a self-hosted ingestion gateway.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
tokens_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
dl_app = typer.Typer(help="Inspect and re-queue dead letters.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)
tenants_app = typer.Typer(help="Create and list tenants.", no_args_is_help=True)
sources_app = typer.Typer(help="Add, list, enable, disable and remove feedback sources (kept in the store; "
                               "a running gateway picks changes up).", no_args_is_help=True)
secrets_app = typer.Typer(help="The key that encrypts stored credentials (SLUICE_SECRET_KEY).",
                          no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
app.add_typer(tenants_app, name="tenants")
app.add_typer(sources_app, name="sources")
app.add_typer(secrets_app, name="secrets")
app.add_typer(dl_app, name="deadletters")
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")
app.add_typer(files_app, name="files")
app.add_typer(journal_app, name="journal")

out = Console()
err = Console(stderr=True)


SCOPES = ("ingest", "read", "admin")


def _load(config: Optional[Path], **overrides: Any) -> Config:
    try:
        return load_config(config, overrides={k.replace("__", "."): v for k, v in overrides.items()})
    except ConfigError as e:
        err.print(f"[red]configuration error[/red]\n{e}", highlight=False)
        raise typer.Exit(2) from None


def _store(cfg: Config):
    from sluiceway.store import Store

    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    return Store.from_url(cfg.store_url)


def _run(coro_fn, cfg: Config):
    async def main():
        store = _store(cfg)
        await store.open(migrate=True)
        try:
            return await coro_fn(store)
        finally:
            await store.aclose()

    return asyncio.run(main())


def _serve(cfg: Config) -> None:
    from sluiceway.runtime.server import serve as run_server

    try:
        code = run_server(cfg)
    except ConfigError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    except SluicewayError as e:  # a known state of the data dir, e.g. a damaged journal or instance id
        err.print(f"[red]error:[/red] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@app.command()
def serve(
    config: Optional[Path] = ConfigOpt,
    host: Optional[str] = typer.Option(None, help="Listen address (default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Listen port (default 8080)."),
    data_dir: Optional[Path] = DataDirOpt,
    workers: Optional[int] = typer.Option(None, help="HTTP worker processes sharing the port."),
) -> None:
    """Run the gateway (embedded defaults: SQLite + ./sluice-data/objects)."""
    cfg = _load(config, data_dir=data_dir, server__host=host, server__port=port, server__workers=workers)
    _serve(cfg)


@app.command("lightfile6")
def lightfile6(
    port: Optional[int] = typer.Option(None, "-p", "--port", help="Port to listen on (required)."),
    config: Path = typer.Option(Path("/etc/lightfile6/config.yml"), "-c", "--config",
                                help="Lightfile6 Insights Gateway config file."),
    host: str = typer.Option("0.0.0.0", help="Listen address (the original listened on all interfaces)."),
    workers: int = typer.Option(1, help="HTTP worker processes sharing the port."),
) -> None:
    """Run as a drop-in Lightfile6 Insights Gateway, with its own config file and flags."""
    import os

    from sluiceway.sources.lightfile6.compat import load_lightfile6

    if not port:
        err.print("Port number is required (-p)", highlight=False)
        raise typer.Exit(1)
    try:
        cfg = load_lightfile6(config, os.environ, port=port, host=host, workers=workers)
    except ConfigError as e:
        err.print(f"[red]configuration error[/red]\n{e}", highlight=False)
        raise typer.Exit(2) from None
    _serve(cfg)


@app.command()
def archive(
    table: str = typer.Option(..., help="records, feedback, ldos or logs."),
    older_than: str = typer.Option(..., help="Rows older than this (e.g. 90d, 12h)."),
    config: Optional[Path] = ConfigOpt,
    data_dir: Optional[Path] = DataDirOpt,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only count the rows that would be archived."),
    file_format: Optional[str] = typer.Option(
        None, "--format", help="jsonl.gz or parquet (needs pip install 'sluiceway[parquet]'); default: archive.format."),
) -> None:
    """Export old rows to the object store (gzip JSONL or Parquet, + manifest), verify, then
    delete them. Resumable: run it again after an interruption."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sluiceway.archive.jobs import ArchiveBusy, archive_run_lock, archiver
    from sluiceway.config.types import parse_duration

    try:
        seconds = parse_duration(older_than)
    except ValueError as e:
        err.print(f"[red]error:[/red] --older-than: {e}", highlight=False)
        raise typer.Exit(2) from None
    cfg = _load(config, data_dir=data_dir)

    async def go(store):
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, disable=not err.is_terminal) as progress:
            task = progress.add_task(f"archiving {table}", total=None)
            a = archiver(cfg, store, table, seconds, lambda n: progress.advance(task, n), file_format=file_format)
            total = await a.count()
            progress.update(task, total=total)
            if dry_run:
                return total, None
            async with archive_run_lock(cfg.data_dir, store, table):
                return total, await a.run()

    try:
        total, summary = _run(go, cfg)
    except ArchiveBusy as e:

        err.print(f"[red]error:[/red] {escape(str(e))}; try again when it is done", highlight=False)
        raise typer.Exit(1) from None
    except ValueError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False, markup=False)
        raise typer.Exit(2) from None
    if summary is None:
        out.print(f"{total} {table} rows are older than {older_than}", highlight=False, markup=False)
        return
    out.print(f"archived {summary.rows} {table} rows in {summary.chunks} new chunk(s)"
              + (f", finished {summary.resumed} interrupted chunk(s)" if summary.resumed else "")
              + f"; cutoff {summary.cutoff}", highlight=False, markup=False)


@app.command()
def validate(config: Path = typer.Argument(..., help="Configuration file to check.")) -> None:
    """Check a configuration file; exit non-zero naming the bad key."""
    if not config.exists():
        err.print(f"[red]error:[/red] {config} does not exist")
        raise typer.Exit(2)
    cfg = _load(config)
    out.print(f"[green]ok[/green] {config}: {len(cfg.sinks)} sink(s): "
              + ", ".join(f"{s.name} ({s.type})" for s in cfg.sinks), highlight=False)


@config_app.command("show")
def config_show(config: Optional[Path] = ConfigOpt, data_dir: Optional[Path] = DataDirOpt) -> None:
    """Print the effective configuration (defaults, variables and overrides applied; secrets masked)."""
    cfg = _load(config, data_dir=data_dir)
    data = dump_config(cfg)
    out.print(yaml.safe_dump(data, sort_keys=False), highlight=False, markup=False)


@tokens_app.command("create")
def tokens_create(
    tenant: str = typer.Option(..., help="Tenant id the token acts for."),
    scopes: str = typer.Option("ingest", help="Comma-separated: ingest, read, admin."),
    name: Optional[str] = typer.Option(None, help="A label for the token."),
    config: Optional[Path] = ConfigOpt,
    data_dir: Optional[Path] = DataDirOpt,
) -> None:
    """Create a token. The secret is printed once, alone on the last line."""
    from sluiceway.record import valid_name

    if not valid_name(tenant):
        err.print(f"[red]error:[/red] tenant id {tenant!r} must match [a-z0-9][a-z0-9_-]{{0,63}}")
        raise typer.Exit(2)
    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    bad = [s for s in wanted if s not in SCOPES]
    if bad or not wanted:
        err.print(f"[red]error:[/red] unknown scope(s) {', '.join(bad) or '(none)'}; valid scopes: {', '.join(SCOPES)}")
        raise typer.Exit(2)
    cfg = _load(config, data_dir=data_dir)
    info, secret = _run(lambda st: st.create_token(tenant, wanted, name), cfg)
    print(f"token {info.id} for tenant {info.tenant} with scopes {','.join(sorted(info.scopes))} "
          "(shown once; store it now):", file=sys.stderr)
    print(secret, flush=True)


@tokens_app.command("list")
def tokens_list(tenant: Optional[str] = typer.Option(None), config: Optional[Path] = ConfigOpt,
                data_dir: Optional[Path] = DataDirOpt) -> None:
    """List tokens (never their secrets)."""
    cfg = _load(config, data_dir=data_dir)
    rows = _run(lambda st: st.list_tokens(tenant), cfg)
    t = Table("id", "tenant", "scopes", "name", "created", "revoked")
    for r in rows:
        t.add_row(r.id, r.tenant, ",".join(sorted(r.scopes)), r.name or "", _ts(r.created_at), _ts(r.revoked_at))
    out.print(t)


@tokens_app.command("revoke")
def tokens_revoke(token_id: str = typer.Argument(..., help="Token id from `tokens list`."),
                  config: Optional[Path] = ConfigOpt, data_dir: Optional[Path] = DataDirOpt) -> None:
    """Revoke a token (takes effect within the token cache TTL, default 5 s)."""
    cfg = _load(config, data_dir=data_dir)
    if not _run(lambda st: st.revoke_token(token_id), cfg):
        err.print(f"[red]error:[/red] no active token with id {token_id!r}")
        raise typer.Exit(1)
    out.print(f"revoked {token_id}")


DL_STATUSES = ("dead", "retry", "sending")  # store.deadletters.STATUSES (not imported: SQLAlchemy)


@dl_app.command("list")
def deadletters_list(sink: Optional[str] = typer.Option(None, help="Only this sink's dead letters."),
                     status: Optional[str] = typer.Option(
                         None, help=f"Only dead letters in this state: {', '.join(DL_STATUSES)}."),
                     limit: int = typer.Option(100),
                     as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
                     config: Optional[Path] = ConfigOpt, data_dir: Optional[Path] = DataDirOpt) -> None:
    """List dead letters (records a sink refused permanently), oldest first."""
    if status is not None and status not in DL_STATUSES:
        err.print(f"error: --status must be one of {', '.join(DL_STATUSES)}", highlight=False, markup=False)
        raise typer.Exit(2)
    cfg = _load(config, data_dir=data_dir)
    rows = _run(lambda st: st.list_dead_letters(sink=sink, status=status, limit=limit), cfg)
    if as_json:
        for r in rows:
            print(orjson.dumps(r, default=str).decode())
        return
    t = Table("id", "sink", "status", "attempts", "record", "created", "error")
    for r in rows:
        t.add_row(str(r["id"]), r["sink"], r["status"], str(r.get("attempts", 0)), r.get("record_id") or "",
                  _ts(r.get("created_at")), (r.get("error") or "")[:80])
    out.print(t)
    out.print(f"{len(rows)} dead letter(s) shown")


@dl_app.command("retry")
def deadletters_retry(sink: Optional[str] = typer.Option(None, help="Only this sink's dead letters."),
                      ids: Optional[list[int]] = typer.Option(None, "--id", help="Only these ids (repeatable)."),
                      config: Optional[Path] = ConfigOpt, data_dir: Optional[Path] = DataDirOpt) -> None:
    """Re-queue dead letters; the running gateway (or the next start) re-sends them to their sink."""
    cfg = _load(config, data_dir=data_dir)

    async def queue(st):
        return await st.request_retry(sink=sink, ids=ids or None), await st.sinks_with_dead_letters("retry")

    n, waiting = _run(queue, cfg)
    out.print(f"{n} dead letter(s) queued for retry")
    configured = {s.name for s in cfg.sinks}
    absent = {name: k for name, k in sorted(waiting.items()) if name not in configured}
    if absent:  # only a gateway with that sink sends them (docs/operations.md, Failures and dead letters)
        names = ", ".join(f"{name} ({k})" for name, k in absent.items())
        err.print(f"note: dead letters queued for sink(s) this configuration does not have wait until a gateway "
                  f"runs with them again: {names}", highlight=False, markup=False, soft_wrap=True)


@db_app.command("upgrade")
def db_upgrade(config: Optional[Path] = ConfigOpt, data_dir: Optional[Path] = DataDirOpt) -> None:
    """Apply schema migrations (also done at every start)."""
    cfg = _load(config, data_dir=data_dir)

    async def go(st):
        return await st.current_revision()

    rev = _run(go, cfg)
    out.print(f"database at revision {rev}")


def _control(coro_fn, cfg: Config):
    """``_run`` for the control-plane commands: their HTTP errors become a message and an exit
    code (2 for bad input, 1 otherwise), as the admin API would answer them."""

    from sluiceway.errors import BadRequest, HTTPError

    try:
        return _run(coro_fn, cfg)
    except HTTPError as e:
        err.print(f"[red]error:[/red] {escape(e.detail)}", highlight=False)
        raise typer.Exit(2 if isinstance(e, BadRequest) else 1) from None


def _pairs(values: Optional[list[str]], flag: str) -> dict[str, str]:
    out = {}
    for v in values or []:
        k, sep, val = v.partition("=")
        if not sep or not k:
            err.print(f"[red]error:[/red] {flag} takes key=value, got {v!r}", highlight=False, markup=False)
            raise typer.Exit(2)
        out[k.strip()] = val
    return out


def _setting_value(v: str) -> Any:
    """JSON for lists and objects (``apps=["a","b"]``); anything else stays a string."""
    if v[:1] in ("[", "{"):
        try:
            return orjson.loads(v)
        except orjson.JSONDecodeError:
            pass
    return v


@tenants_app.command("create")
def tenants_create(tenant_id: str = typer.Argument(..., metavar="ID", help="[a-z0-9][a-z0-9_-]{0,63}"),
                   name: Optional[str] = typer.Option(None, help="A display name."),
                   config: Optional[Path] = ConfigOpt, data_dir: Optional[Path] = DataDirOpt) -> None:
    """Create a tenant."""
    from sluiceway.record import valid_name

    if not valid_name(tenant_id):
        err.print(f"error: tenant id {tenant_id!r} must match [a-z0-9][a-z0-9_-]{{0,63}}", highlight=False,
                  markup=False)
        raise typer.Exit(2)
    cfg = _load(config, data_dir=data_dir)
    _control(lambda st: st.create_tenant(tenant_id, name), cfg)
    out.print(f"created tenant {tenant_id}", highlight=False, markup=False)


@tenants_app.command("list")
def tenants_list(as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
                 config: Optional[Path] = ConfigOpt, data_dir: Optional[Path] = DataDirOpt) -> None:
    """List tenants."""
    rows = _control(lambda st: st.list_tenants(), _load(config, data_dir=data_dir))
    if as_json:
        for r in rows:
            print(orjson.dumps(r).decode())
        return
    t = Table("id", "name", "created")
    for r in rows:
        t.add_row(r["id"], r["name"] or "", r["created_at"])
    out.print(t)


@sources_app.command("add")
def sources_add(
    tenant: str = typer.Option(..., help="Tenant id (create it with `sluice tenants create`)."),
    name: str = typer.Option(..., help="Source name, unique within the tenant."),
    type_: str = typer.Option(..., "--type", help="playstore, x, discourse, intercom or webhook."),
    setting: Optional[list[str]] = typer.Option(None, "--setting", help="key=value (repeatable; JSON for lists)."),
    secret: Optional[list[str]] = typer.Option(None, "--secret", help="key=value (repeatable; lands in shell "
                                               "history: prefer --secret-env)."),
    secret_env: Optional[list[str]] = typer.Option(None, "--secret-env", help="key=ENVVAR: the secret's value "
                                                   "from that environment variable (repeatable)."),
    interval: str = typer.Option("10m", help="Pull interval: seconds or a duration (10m); at least 10s."),
    disabled: bool = typer.Option(False, "--disabled", help="Add it disabled."),
    config: Optional[Path] = ConfigOpt,
    data_dir: Optional[Path] = DataDirOpt,
) -> None:
    """Add a feedback source. Secrets are encrypted with SLUICE_SECRET_KEY and never printed."""
    import os

    from sluiceway.http.admin_api import add_source, secret_box, shown

    settings = {k: _setting_value(v) for k, v in _pairs(setting, "--setting").items()}
    secrets = _pairs(secret, "--secret")
    for key, var in _pairs(secret_env, "--secret-env").items():
        if not os.environ.get(var):
            err.print(f"error: environment variable {var} (for --secret-env {key}) is not set", highlight=False,
                      markup=False)
            raise typer.Exit(2)
        secrets[key] = os.environ[var]
    cfg = _load(config, data_dir=data_dir)

    async def go(st):
        box = secret_box()
        row = await add_source(st, box, tenant=tenant, name=name, type=type_, settings=settings, secrets=secrets,
                               enabled=not disabled, interval=interval)
        return shown(box, row)

    s = _control(go, cfg)
    out.print(f"added source {s['tenant']}/{s['name']} ({s['type']}, {'enabled' if s['enabled'] else 'disabled'}, "
              f"every {s['interval_seconds']:g}s; secrets: {', '.join(s['secrets']) or 'none'})",
              highlight=False, markup=False)


@sources_app.command("list")
def sources_list(tenant: Optional[str] = typer.Option(None, help="Only this tenant's sources."),
                 as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
                 config: Optional[Path] = ConfigOpt, data_dir: Optional[Path] = DataDirOpt) -> None:
    """List feedback sources (secret names only, masked)."""
    from sluiceway.http.admin_api import listing_box, shown

    async def go(st):
        box = listing_box()
        return [shown(box, r) for r in await st.list_sources(tenant)]

    rows = _control(go, _load(config, data_dir=data_dir))
    if as_json:
        for r in rows:
            print(orjson.dumps(r).decode())
        return
    t = Table("tenant", "name", "type", "enabled", "interval", "origin", "secrets", "last run", "status")
    for r in rows:
        names = ", ".join(r["secrets"]) or ("(unreadable)" if r["has_secrets"] else "")
        t.add_row(r["tenant"], r["name"], r["type"], "yes" if r["enabled"] else "no", f"{r['interval_seconds']:g}s",
                  r["origin"], names, r["last_run_at"] or "", (r["last_status"] or "")[:60])
    out.print(t)


def _switch_source(tenant: str, name: str, enabled: bool, config: Optional[Path], data_dir: Optional[Path]) -> None:
    from sluiceway.http.admin_api import secret_box, set_enabled

    _control(lambda st: set_enabled(st, secret_box(), tenant, name, enabled), _load(config, data_dir=data_dir))
    out.print(f"{'enabled' if enabled else 'disabled'} {tenant}/{name}", highlight=False, markup=False)


TenantOpt = typer.Option(..., help="The source's tenant.")
SourceArg = typer.Argument(..., metavar="NAME", help="Source name.")


@sources_app.command("enable")
def sources_enable(name: str = SourceArg, tenant: str = TenantOpt, config: Optional[Path] = ConfigOpt,
                   data_dir: Optional[Path] = DataDirOpt) -> None:
    """Enable a source (refused while required secrets are missing)."""
    _switch_source(tenant, name, True, config, data_dir)


@sources_app.command("disable")
def sources_disable(name: str = SourceArg, tenant: str = TenantOpt, config: Optional[Path] = ConfigOpt,
                    data_dir: Optional[Path] = DataDirOpt) -> None:
    """Disable a source (its cursor is kept)."""
    _switch_source(tenant, name, False, config, data_dir)


@sources_app.command("remove")
def sources_remove(name: str = SourceArg, tenant: str = TenantOpt, config: Optional[Path] = ConfigOpt,
                   data_dir: Optional[Path] = DataDirOpt) -> None:
    """Remove a source (its stored feedback stays)."""
    _control(lambda st: st.remove_source(tenant, name), _load(config, data_dir=data_dir))
    out.print(f"removed {tenant}/{name}", highlight=False, markup=False)


@sources_app.command("run")
def sources_run(name: str = SourceArg, tenant: str = TenantOpt, config: Optional[Path] = ConfigOpt,
                data_dir: Optional[Path] = DataDirOpt) -> None:
    """Pull one source now (with progress); its items go to the journal like a scheduled run's."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from sluiceway.errors import HTTPError
    from sluiceway.feedback.pull import PullError
    from sluiceway.sources.feedback.manual import run_once

    cfg = _load(config, data_dir=data_dir)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                  disable=not err.is_terminal) as progress:
        task = progress.add_task(f"pulling {tenant}/{name}", total=None)
        counts = {"pages": 0, "items": 0}

        def on_page(n: int) -> None:
            counts["pages"] += 1
            counts["items"] += n
            progress.update(task, description=f"pulling {tenant}/{name}: {counts['items']} items, "
                                              f"{counts['pages']} pages")

        try:
            result = asyncio.run(run_once(cfg, tenant, name, on_page))
        except (PullError, HTTPError, ConfigError) as e:
            err.print(f"[red]error:[/red] {e}", highlight=False, markup=False)
            raise typer.Exit(1) from None
    out.print(f"{tenant}/{name}: {result.items} items in {result.pages} pages; cursor {orjson.dumps(result.cursor).decode()}",
              highlight=False, markup=False)


@secrets_app.command("keygen")
def secrets_keygen() -> None:
    """Print a new key for SLUICE_SECRET_KEY (alone on stdout)."""
    from sluiceway.secrets import generate_key

    print("set it as SLUICE_SECRET_KEY; keep it: stored credentials cannot be read without it", file=sys.stderr)
    print(generate_key(), flush=True)


def _ts(v: Any) -> str:
    if v is None:
        return ""
    return v.isoformat(timespec="seconds") if hasattr(v, "isoformat") else str(v)


@app.command()
def ship(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Exporter YAML (Lightspeed exporter keys)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Directory to collect *.json from."),
    service_id: Optional[str] = typer.Option(None, "--service-id", help="Ingress service (e.g. ols)."),
    ingress_server_url: Optional[str] = typer.Option(None, "--ingress-server-url", help="Upload URL."),
    token: Optional[str] = typer.Option(None, "--token", "--ingress-server-auth-token", help="Bearer token "
                                        "(else $INGRESS_SERVER_AUTH_TOKEN, else the config)."),
    identity_id: Optional[str] = typer.Option(None, "--identity-id", help="Goes into the User-Agent (cluster/<id>)."),
    collection_interval: Optional[str] = typer.Option(None, "--collection-interval", help="e.g. 7200, 2h; 0 = once."),
    no_cleanup: bool = typer.Option(False, "--no-cleanup", help="Keep files after a successful upload."),
    retry_interval: Optional[str] = typer.Option(None, "--retry-interval", help="Longest wait between retries."),
    timeout: Optional[str] = typer.Option(None, "--ingress-connection-timeout", help="HTTP timeout."),
    max_archive_bytes: Optional[str] = typer.Option(None, "--max-archive-bytes", help="Per archive, e.g. 100MiB."),
    allowed_subdirs: Optional[list[str]] = typer.Option(None, "--allowed-subdirs", help="Only these top-level "
                                                        "subdirectories (repeat or comma-separate)."),
    log_level: Optional[str] = typer.Option(None, "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
    print_config: bool = typer.Option(False, "--print-config-and-exit", help="Print the settings (token masked)."),
) -> None:
    """Ship *.json files from a directory to an insights-ingress endpoint (the Lightspeed exporter)."""
    from sluiceway.agent.command import ship as run_ship, split_list

    overrides = {"data_dir": data_dir, "service_id": service_id, "ingress_server_url": ingress_server_url,
                 "ingress_server_auth_token": token, "identity_id": identity_id,
                 "collection_interval": collection_interval, "cleanup_after_send": False if no_cleanup else None,
                 "retry_interval": retry_interval, "ingress_connection_timeout": timeout,
                 "max_archive_bytes": max_archive_bytes, "allowed_subdirs": split_list(allowed_subdirs),
                 "log_level": log_level}
    raise typer.Exit(run_ship(config, overrides, print_config=print_config))


def main() -> None:
    from sluiceway.runtime.finish import finish

    try:
        app()
    except SystemExit as e:  # how typer ends every command
        finish(e.code)


if __name__ == "__main__":
    main()
