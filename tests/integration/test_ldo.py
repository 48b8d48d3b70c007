"""The ldo source in ``sluice serve`` (a process), on PostgreSQL and a SeaweedFS bucket: a
large upload streams through the HTTP worker in bounded memory, lands in S3 byte-identical,
and is read back whole and in ranges."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from sluiceway.objectstore import open_store
from tests.helpers import eventually, free_port, spawn, wait_up
from tests.integration.test_ingress import token

pytestmark = pytest.mark.integration
SIZE = 300 * 1000 * 1000
BLOCK = os.urandom(1024 * 1024)
RSS_BOUND = 64 * 1024 * 1024


def piece(start: int, end: int) -> bytes:
    """Bytes ``start..end`` of the upload: 1 MiB blocks, each opening with its own number."""
    out = bytearray()
    while start < end:
        i, off = divmod(start, len(BLOCK))
        block = i.to_bytes(8, "big") + BLOCK[8:]
        take = min(end - start, len(BLOCK) - off)
        out += block[off:off + take]
        start += take
    return bytes(out)


def multipart(metadata: bytes, boundary: str) -> tuple[int, object, hashlib._Hash]:
    """(Content-Length, body generator, the sha256 the generator fills in) of an upload
    whose file part is produced as it is sent, never held whole."""
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n".encode() + metadata
            + f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"big clip.mp4\"\r\n"
              f"Content-Type: video/mp4\r\n\r\n".encode())
    tail = f"\r\n--{boundary}--\r\n".encode()
    digest = hashlib.sha256()

    async def body():
        yield head
        for start in range(0, SIZE, len(BLOCK)):
            chunk = piece(start, min(SIZE, start + len(BLOCK)))
            digest.update(chunk)
            yield chunk
        yield tail

    return len(head) + SIZE + len(tail), body(), digest


def http_worker(pid: int) -> int:
    """The ``sluiceway.runtime.worker`` child of ``sluice serve``."""
    for task in os.listdir(f"/proc/{pid}/task"):
        for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split():
            if b"sluiceway.runtime.worker" in Path(f"/proc/{child}/cmdline").read_bytes():
                return int(child)
    raise AssertionError("no HTTP worker process found")


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def peak_rss(pid: int, stop: asyncio.Event) -> int:
    peak = 0
    while not stop.is_set():
        peak = max(peak, rss(pid))
        await asyncio.sleep(0.02)
    return max(peak, rss(pid))


async def measured(pid: int, work) -> tuple[object, int]:
    """(result of ``work``, growth of the worker's peak RSS over its RSS before)."""
    before = rss(pid)
    stop = asyncio.Event()
    sampler = asyncio.create_task(peak_rss(pid, stop))
    try:
        result = await work
    finally:
        stop.set()
    return result, await sampler - before


async def test_large_upload_to_s3_in_bounded_memory(tmp_path, postgres_url, s3_bucket):
    conn = s3_bucket
    tenant = f"edge{uuid.uuid4().hex[:8]}"
    s3 = {"endpoint": conn.endpoint, "bucket": conn.bucket, "region": conn.region,
          "access_key_id": conn.access_key_id, "secret_access_key": conn.secret_access_key.get_secret_value()}
    cfg, data = tmp_path / "sluice.yaml", tmp_path / "data"
    cfg.write_text(yaml.safe_dump({
        "store": {"url": postgres_url},
        "sources": [{"type": "ldo", "path_prefix": "/data-ingestion"}],
        "sinks": [{"name": "files", "type": "attachments", "key_template": "{name}", "s3": s3,
                   "batch": {"max_age": "100ms"}}],
    }))
    h = {"Authorization": f"Bearer {token(cfg, data, tenant)}"}
    port = free_port()
    log = tmp_path / "serve.log"
    proc = spawn(["serve", "-c", str(cfg), "--port", str(port), "--data-dir", str(data)], log)
    try:
        wait_up(port, proc, log)
        worker = http_worker(proc.pid)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/data-ingestion", headers=h,
                                     timeout=120) as c:
            # Warm-up: the worker opens its full store and the object store on first use.
            small = await c.post("/ingest/ldo", data={"metadata": '{"warm": true}'},
                                 files={"video": ("w.bin", b"w" * 1000, "video/mp4")})
            assert small.status_code == 200, small.text
            assert (await c.get(f"/ingest/ldo/{small.json()['id']}/file")).content == b"w" * 1000

            length, body, digest = multipart(b'{"ldo_id": "LDO-BIG-1", "cid": "CID-9"}', "sluiceboundary42")
            r, growth = await measured(worker, c.post(
                "/ingest/ldo", content=body,
                headers={"Content-Type": "multipart/form-data; boundary=sluiceboundary42",
                         "Content-Length": str(length)}))
            assert r.status_code == 200, r.text
            assert r.json()["size_bytes"] == SIZE
            assert growth < RSS_BOUND, f"HTTP worker RSS grew by {growth / 2**20:.0f} MiB during the upload"
            sha = digest.hexdigest()
            obj = (await c.get(f"/ingest/ldo/{r.json()['id']}")).json()
            assert obj["sha256"] == sha and obj["ldo_id"] == "LDO-BIG-1" and obj["filename"] == "big clip.mp4"
            assert obj["object_key"].startswith(f"ldo/{tenant}/") and obj["object_key"].endswith("/big_clip.mp4")

            store = open_store(s3=conn)
            info = await eventually(lambda: _head(store, obj["object_key"]), timeout=60)
            assert info.size == SIZE
            assert await _s3_sha256(store, obj["object_key"]) == sha  # byte-identical in the bucket

            url = f"/ingest/ldo/{obj['id']}/file"
            for rng, (a, b) in {"bytes=0-99": (0, 100), f"bytes={SIZE // 2}-{SIZE // 2 + 3 * 2**20}":
                                (SIZE // 2, SIZE // 2 + 3 * 2**20 + 1), "bytes=-1000": (SIZE - 1000, SIZE)}.items():
                part = await c.get(url, headers={"Range": rng})
                assert part.status_code == 206 and part.content == piece(a, b), rng
            assert (await c.get(url, headers={"Range": f"bytes={SIZE}-"})).status_code == 416

            async def download() -> str:
                h2 = hashlib.sha256()
                async with c.stream("GET", url) as resp:
                    assert resp.status_code == 200 and resp.headers["etag"] == f'"{sha}"'
                    async for chunk in resp.aiter_raw():
                        h2.update(chunk)
                return h2.hexdigest()

            got, growth = await measured(worker, download())
            assert got == sha
            assert growth < RSS_BOUND, f"HTTP worker RSS grew by {growth / 2**20:.0f} MiB during the download"

            again = await c.post("/ingest/ldo", data={"metadata": '{"ldo_id": "LDO-BIG-1"}'})
            assert again.status_code == 200 and again.json()["id"] == obj["id"]
            lst = (await c.get("/ingest/list")).json()
            assert lst["total"] == 2 and [x["id"] for x in lst["ldos"]][1] == obj["id"]
            assert (await c.delete(f"/ingest/{obj['id']}")).status_code == 200
            assert not await store.exists(obj["object_key"])
    finally:
        proc.terminate()
        assert proc.wait(60) == 0


async def _head(store, key):
    try:
        return await store.head(key)
    except FileNotFoundError:
        return None


async def _s3_sha256(store, key: str) -> str:
    import obstore

    digest = hashlib.sha256()
    result = await obstore.get_async(store._inner, store.full_key(key))
    async for chunk in result.stream(min_chunk_size=4 * 1024 * 1024):
        digest.update(chunk)
    return digest.hexdigest()
