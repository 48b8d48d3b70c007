"""The bucket source against real SeaweedFS and PostgreSQL, run as ``sluice serve``.

A bucket of pino log files (gzip JSON arrays): 1,500 small keys (past one listing page), a big
file, a corrupt gzip, a file with a bad line, and a file later replaced with new content. The
gateway is killed with SIGKILL while the big file is half-way and started again: every line
lands in PostgreSQL's ``logs`` table exactly once, the corrupt file ends ``parked``.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import signal

import asyncpg
import orjson
import pytest
import yaml

from sluiceway.objectstore import open_store
from tests.helpers import eventually, free_port, spawn, stop, wait_up

pytestmark = pytest.mark.integration
TENANT = "logs-it"
T0 = 1743532098671
SMALL = 1500
BIG = 100_000


def pino(tag: str, i: int) -> dict:
    return {"level": 30, "time": T0 + i, "pid": 1, "hostname": "api-1", "context": "Api", "message": f"{tag}-{i}",
            "req": {"id": 7, "method": "GET", "url": "/x", "headers": {"authorization": "Bearer secret"}}}


def gz_array(tag: str, n: int) -> bytes:
    return gzip.compress(b"[" + b",".join(orjson.dumps(pino(tag, i)) for i in range(n)) + b"]", compresslevel=1)


async def upload(store, objects: dict[str, bytes]) -> None:
    sem = asyncio.Semaphore(32)

    async def put(key: str, data: bytes) -> None:
        async with sem:
            await store.put(key, data)

    await asyncio.gather(*(put(k, v) for k, v in objects.items()))


async def pg(url: str, sql: str, *args):
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def test_bucket_to_postgres_survives_kill_9(tmp_path, postgres_url, s3_bucket):
    conn = s3_bucket
    store = open_store(s3=conn)
    objects = {f"small/{k:04d}.json.gz": gz_array(f"s{k}", 2) for k in range(SMALL)}
    objects["a-big/big.json.gz"] = gz_array("big", BIG)
    objects["bad/corrupt.json.gz"] = b"\x1f\x8b\x08\x00" + os.urandom(200)
    objects["bad/badlines.ndjson"] = b"\n".join([orjson.dumps(pino("bl", i)) for i in range(10)] + [b"{oops"])
    objects["replace/r.json.gz"] = gz_array("r1", 3)
    await upload(store, objects)
    expected = {f"s{k}-{i}" for k in range(SMALL) for i in range(2)} | {f"big-{i}" for i in range(BIG)} \
        | {f"bl-{i}" for i in range(10)} | {f"r1-{i}" for i in range(3)}

    data = tmp_path / "data"
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(yaml.safe_dump({
        "store": {"url": postgres_url},
        "log": {"format": "json", "level": "info"},
        "sources": [{
            "name": "it-logs", "type": "bucket", "tenant": TENANT,
            "s3": {"endpoint": conn.endpoint, "bucket": conn.bucket, "region": conn.region,
                   "access_key_id": conn.access_key_id,
                   "secret_access_key": conn.secret_access_key.get_secret_value()},
            "scan_interval": "300ms", "lease": "2s", "max_attempts": 2, "retry_initial": "200ms",
            "retry_max": "500ms", "concurrency": 8, "batch_records": 2000, "max_bad_share": 0.2}],
        "sinks": [{"name": "logs", "type": "logs", "batch": {"max_records": 5000, "max_age": "100ms"},
                   "retry": {"initial": "50ms", "max": "500ms"}}],
    }))
    port = free_port()
    log = tmp_path / "serve.log"
    args = ["serve", "-c", str(cfg), "--port", str(port), "--data-dir", str(data), "--workers", "1"]
    proc = spawn(args, log)

    async def big_rows() -> int:
        return (await pg(postgres_url, "SELECT count(*) FROM logs WHERE tenant = $1 AND file = $2",
                         TENANT, "a-big/big.json.gz"))[0][0]

    async def states() -> dict[str, dict]:
        rows = await pg(postgres_url, "SELECT * FROM files WHERE source = 'it-logs'")
        return {r["key"]: dict(r) for r in rows}

    try:
        wait_up(port, proc, log)
        await eventually(big_rows, timeout=60)  # the first lines of the big file
        os.killpg(proc.pid, signal.SIGKILL)  # mid-file (most likely): supervisor and worker
        proc.wait(10)
        killed_at = await big_rows()
        big_state = (await states())["a-big/big.json.gz"]

        proc = spawn(args, log)
        wait_up(port, proc, log)

        async def settled():
            s = await states()
            done = len(s) == SMALL + 4 and all(r["status"] in ("completed", "parked") for r in s.values())
            n = (await pg(postgres_url, "SELECT count(*) FROM logs WHERE tenant = $1", TENANT))[0][0]
            return s if done and n >= len(expected) else None

        s = await eventually(settled, timeout=90, interval=0.1)  # every file settled, every line stored
        assert s["bad/corrupt.json.gz"]["status"] == "parked" and "gzip" in s["bad/corrupt.json.gz"]["last_error"]
        assert (s["bad/badlines.ndjson"]["record_count"], s["bad/badlines.ndjson"]["bad_line_count"]) == (10, 1)
        assert s["a-big/big.json.gz"]["record_count"] == BIG
        if big_state["status"] == "processing":  # killed mid-file: taken back after its lease
            assert killed_at > 0
            assert s["a-big/big.json.gz"]["attempts"] == 2

        # replace a file: its new content is collected too
        await store.put("replace/r.json.gz", gz_array("r2", 4))
        expected |= {f"r2-{i}" for i in range(4)}

        async def replaced():
            n = (await pg(postgres_url, "SELECT count(*) FROM logs WHERE tenant = $1", TENANT))[0][0]
            return n >= len(expected)

        await eventually(replaced, timeout=60, interval=0.1)
        rows = await pg(postgres_url, "SELECT message, raw FROM logs WHERE tenant = $1", TENANT)
        messages = [r["message"] for r in rows]
        assert len(messages) == len(set(messages)), "a line stored twice"
        assert set(messages) == expected
        assert "Bearer secret" not in rows[0]["raw"]
    finally:
        code = stop(proc)
    assert code == 0, log.read_text()[-4000:]
