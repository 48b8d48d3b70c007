"""kill -9 the gateway mid-stream (on the embedded journal, and on NATS JetStream): every event
that got a 2xx must be delivered exactly once to PostgreSQL and (after de-duplication by record id) to S3, with no duplicate object keys."""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest
import yaml

from tests.helpers import SLUICE, free_port, spawn, stop as stop_process, wait_up

pytestmark = pytest.mark.integration


def start(cfg: Path, port: int, data: Path, log: Path, workers: int = 1) -> subprocess.Popen:
    return spawn(["serve", "-c", str(cfg), "--port", str(port), "--data-dir", str(data), "--workers", str(workers)], log)


async def client_loop(port: int, token: str, stream: str, cid: int, acked: list[tuple[int, int]],
                      stop: asyncio.Event) -> None:
    seq = 0
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5,
                                 headers={"Authorization": f"Bearer {token}"}) as c:
        while not stop.is_set():
            n = 1 if seq % 3 else 5
            events = [{"client": cid, "seq": seq + i, "pad": "x" * 200} for i in range(n)]
            try:
                r = await c.post(f"/v1/streams/{stream}/events", content=orjson.dumps(events if n > 1 else events[0]))
            except httpx.HTTPError:
                await asyncio.sleep(0.01)
                seq += n
                continue
            if r.status_code == 202:
                assert r.json()["accepted"] == n
                acked.extend((cid, seq + i) for i in range(n))
            seq += n


def s3_objects(conn) -> dict[str, bytes]:
    from obstore.store import S3Store

    store = S3Store(conn.bucket, endpoint=conn.endpoint, access_key_id=conn.access_key_id,
                    secret_access_key=conn.secret_access_key.get_secret_value(), region=conn.region,
                    virtual_hosted_style_request=False, client_options={"allow_http": True})
    out = {}
    import obstore

    for chunk in obstore.list(store):
        for meta in chunk:
            out[meta["path"]] = bytes(obstore.get(store, meta["path"]).bytes())
    return out


async def pg_pairs(url: str, stream: str) -> Counter:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch("SELECT (payload->>'client')::int AS c, (payload->>'seq')::int AS s FROM records "
                                "WHERE stream = $1", stream)
    finally:
        await conn.close()
    return Counter((r["c"], r["s"]) for r in rows)


@pytest.mark.parametrize(("engine", "workers"), [("embedded", 1), ("embedded", 2), ("jetstream", 2)])
async def test_kill_9_loses_nothing_and_duplicates_nothing(tmp_path, postgres_url, s3_bucket, engine, workers, request):
    conn = s3_bucket
    stream = f"crash-{engine[0]}{workers}"  # the PostgreSQL database is shared by the parametrized runs
    journal = {"engine": "jetstream", "jetstream": {"url": request.getfixturevalue("nats_url")}} \
        if engine == "jetstream" else {}
    data = tmp_path / "data"
    cfg_path = tmp_path / "sluice.yaml"
    fast = {"batch": {"max_records": 300, "max_age": "100ms"}, "retry": {"initial": "50ms", "max": "500ms"}}
    cfg_path.write_text(yaml.safe_dump({
        "store": {"url": postgres_url},
        "journal": journal,
        "log": {"format": "json", "level": "info"},
        "sinks": [
            {"name": "s3", "type": "object_store", **fast,
             "s3": {"endpoint": conn.endpoint, "bucket": conn.bucket, "region": conn.region,
                    "access_key_id": conn.access_key_id,
                    "secret_access_key": conn.secret_access_key.get_secret_value()}},
            {"name": "pg", "type": "sql", **fast},
        ],
    }))
    out = subprocess.run([*SLUICE, "tokens", "create", "-c", str(cfg_path), "--data-dir", str(data),
                          "--tenant", "crash", "--scopes", "ingest,read"], capture_output=True, text=True, check=True)
    token = out.stdout.strip().splitlines()[-1]
    port = free_port()
    log = tmp_path / "serve.log"
    proc = start(cfg_path, port, data, log, workers)
    acked: list[tuple[int, int]] = []
    try:
        wait_up(port, proc, log)
        stop = asyncio.Event()
        clients = [asyncio.create_task(client_loop(port, token, stream, cid, acked, stop)) for cid in range(8)]
        await asyncio.sleep(1.5)
        os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: supervisor and workers
        proc.wait(10)
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*clients)
        assert len(acked) > 100, "the clients got too few 2xx to make the test meaningful"

        proc = start(cfg_path, port, data, log, workers)
        wait_up(port, proc, log)
        want = set(acked)
        assert len(want) == len(acked)

        deadline = time.monotonic() + 60
        while True:
            pairs = await pg_pairs(postgres_url, stream)
            if want <= set(pairs) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        missing = want - set(pairs)
        assert not missing, f"{len(missing)} acknowledged events missing from PostgreSQL"
        dupes = {k: v for k, v in pairs.items() if v > 1}
        assert not dupes, f"duplicated in PostgreSQL: {list(dupes)[:5]}"

        deadline = time.monotonic() + 60
        while True:
            objects = await asyncio.to_thread(s3_objects, conn)
            by_id: dict[str, tuple[int, int]] = {}
            for key, blob in objects.items():
                for line in gzip.decompress(blob).splitlines():
                    rec = orjson.loads(line)
                    by_id[rec["id"]] = (rec["payload"]["client"], rec["payload"]["seq"])
            seen = Counter(by_id.values())
            if want <= set(seen) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        missing = want - set(seen)
        assert not missing, f"{len(missing)} acknowledged events missing from S3"
        assert all(v == 1 for v in seen.values()), "one event stored under two record ids"
        assert len(objects) == len(set(objects)), "duplicate object keys"
    finally:
        code = stop_process(proc)
    assert code == 0, log.read_text()[-4000:]
