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
from rich.table import Table

from sluiceway.config import Config, dump_config, load_config
from sluiceway.errors import ConfigError

app = typer.Typer(help="sluiceway: a self-hosted ingestion gateway.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
tokens_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)
dl_app = typer.Typer(help="Inspect and re-queue dead letters.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect configuration.", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
app.add_typer(dl_app, name="deadletters")
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")

out = Console()
err = Console(stderr=True)

ConfigOpt = typer.Option(None, "--config", "-c", help="YAML configuration file.", exists=False)
DataDirOpt = typer.Option(None, "--data-dir", help="Data directory (default ./sluice-data).")

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


@dl_app.command("list")
def deadletters_list(sink: Optional[str] = typer.Option(None), limit: int = typer.Option(100),
                     as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
                     config: Optional[Path] = ConfigOpt, data_dir: Optional[Path] = DataDirOpt) -> None:
    """List dead letters (records a sink refused permanently)."""
    cfg = _load(config, data_dir=data_dir)
    rows = _run(lambda st: st.list_dead_letters(sink=sink, limit=limit), cfg)
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
    n = _run(lambda st: st.request_retry(sink=sink, ids=ids or None), cfg)
    out.print(f"{n} dead letter(s) queued for retry")


@db_app.command("upgrade")
def db_upgrade(config: Optional[Path] = ConfigOpt, data_dir: Optional[Path] = DataDirOpt) -> None:
    """Apply schema migrations (also done at every start)."""
    cfg = _load(config, data_dir=data_dir)

    async def go(st):
        return await st.current_revision()

    rev = _run(go, cfg)
    out.print(f"database at revision {rev}")


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
    app()


if __name__ == "__main__":
    main()
