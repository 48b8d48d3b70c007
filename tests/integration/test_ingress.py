"""``sluice ship`` → ``sluice serve`` with the ingress receiver, end to end, as processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
import yaml

from sluiceway.objectstore import open_store
from tests.helpers import SLUICE, eventually, free_port, spawn, wait_up

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).parents[2] / "examples"


def token(cfg: Path, data: Path, tenant: str) -> str:
    out = subprocess.run([*SLUICE, "tokens", "create", "-c", str(cfg), "--data-dir", str(data), "--tenant", tenant,
                          "--scopes", "ingest,read"], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def export_tree(root: Path, n: int) -> set[str]:
    """``n`` JSON files in nested folders plus files ship must leave alone; the JSON names."""
    names = set()
    for i in range(n):
        p = root / ("feedback" if i % 2 else "transcripts/u1/c1") / f"f{i}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(f'{{"i": {i}, "text": "{"x" * 500}", "timestamp": "2025-07-24T13:16:49Z"}}')
        names.add(p.relative_to(root).as_posix())
    (root / "feedback" / "notes.txt").write_text("not json")
    old = time.time() - 60  # older than settle_time: collected at once
    for p in root.rglob("*"):
        os.utime(p, (old, old))
    return names


def ship(cfg: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SLUICE, "ship", "-c", str(cfg), "--collection-interval", "0", *args],
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=120)


async def test_shipped_examples_end_to_end_on_embedded_defaults(tmp_path):
    data, export = tmp_path / "data", tmp_path / "export"
    export.mkdir()
    sent = export_tree(export, 20)
    cfg = EXAMPLES / "ingress.yaml"
    tok = token(cfg, data, "org1")
    port = free_port()
    log = tmp_path / "serve.log"
    proc = spawn(["serve", "-c", str(cfg), "--port", str(port), "--data-dir", str(data)], log)
    try:
        wait_up(port, proc, log)
        env = {"EXPORT_DIR": str(export), "INGRESS_URL": f"http://127.0.0.1:{port}/api/ingress/v1/upload",
               "INGRESS_SERVER_AUTH_TOKEN": tok, "IDENTITY_ID": "cluster-a"}
        r = ship(EXAMPLES / "export.yaml", env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert sorted(p.relative_to(export).as_posix() for p in export.rglob("*") if p.is_file()) == \
            ["feedback/notes.txt"]  # exactly the sent files (and emptied folders) are gone
        assert not (export / "transcripts").exists()

        async def records():
            r = httpx.get(f"http://127.0.0.1:{port}/v1/streams/ols/events?limit=1000",
                          headers={"Authorization": f"Bearer {tok}"})
            return len(r.json()["events"]) >= 20 and r.json()["events"]

        events = await eventually(records, timeout=30)
        assert {e["payload"]["file"] for e in events} == sent
        assert all(e["payload"]["cluster_id"] == "cluster-a" for e in events)
        archives = await eventually(lambda: _files(data / "objects" / "archives"), timeout=30)
        (archive,) = archives
        assert archive.relative_to(data / "objects" / "archives").parts[:3] == ("ols", "org1", "cluster-a")
        with tarfile.open(archive) as tar:
            assert set(tar.getnames()) == sent
    finally:
        proc.terminate()
        assert proc.wait(60) == 0


async def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.tgz")] if root.exists() else []


async def test_ship_to_postgresql_and_s3(tmp_path, postgres_url, s3_bucket):
    conn = s3_bucket
    tenant = f"org{uuid.uuid4().hex[:8]}"
    data, export = tmp_path / "data", tmp_path / "export"
    export.mkdir()
    sent = export_tree(export, 40)
    s3 = {"endpoint": conn.endpoint, "bucket": conn.bucket, "region": conn.region,
          "access_key_id": conn.access_key_id, "secret_access_key": conn.secret_access_key.get_secret_value()}
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(yaml.safe_dump({
        "store": {"url": postgres_url},
        "sources": [{"type": "ingress", "valid_upload_types": "ols"}],
        "sinks": [{"name": "pg", "type": "sql", "batch": {"max_age": "100ms"}},
                  {"name": "archives", "type": "attachments", "key_template": "{name}", "s3": s3,
                   "batch": {"max_age": "100ms"}}],
    }))
    tok = token(cfg, data, tenant)
    port = free_port()
    log = tmp_path / "serve.log"
    proc = spawn(["serve", "-c", str(cfg), "--port", str(port), "--data-dir", str(data)], log)
    try:
        wait_up(port, proc, log)
        env = {"INGRESS_SERVER_AUTH_TOKEN": tok}
        ship_cfg = tmp_path / "export.yaml"
        ship_cfg.write_text(yaml.safe_dump({
            "data_dir": str(export), "service_id": "ols", "identity_id": "c-42",
            "ingress_server_url": f"http://127.0.0.1:{port}/api/ingress/v1/upload",
            "ingress_server_auth_token": "${INGRESS_SERVER_AUTH_TOKEN}", "max_archive_bytes": 12_000,
        }))
        r = ship(ship_cfg, env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert [p.name for p in export.rglob("*") if p.is_file()] == ["notes.txt"]

        async def pg_files():
            c = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                rows = await c.fetch("SELECT payload->>'file' AS f FROM records WHERE tenant = $1 AND stream = 'ols'",
                                     tenant)
            finally:
                await c.close()
            return len(rows) >= len(sent) and [x["f"] for x in rows]

        files = await eventually(pg_files, timeout=60)
        assert sorted(files) == sorted(sent)  # each exactly once

        store = open_store(s3=conn)

        async def s3_archives():
            keys = [o.key async for o in store.list(f"ols/{tenant}")]
            return len(keys) >= 2 and keys

        keys = await eventually(s3_archives, timeout=60)
        await asyncio.sleep(0.5)
        keys = [o.key async for o in store.list(f"ols/{tenant}")]
        assert len(keys) == 2  # 40 files of ~550 bytes in archives of at most 12,000 uncompressed bytes
        for k in keys:
            parts = k.split("/")
            assert parts[:3] == ["ols", tenant, "c-42"] and len(parts[3]) == 14 and parts[4].endswith(".tgz")
    finally:
        proc.terminate()
        assert proc.wait(60) == 0
