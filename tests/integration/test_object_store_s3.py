"""The object-store sink and ObjectStore against a real SeaweedFS (tests/fixtures/seaweed.py)."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from sluiceway.config.blocks import S3Connection
from sluiceway.errors import PermanentError, TransientError
from sluiceway.objectstore import MULTIPART_THRESHOLD, open_store
from sluiceway.record import Record, new_id
from sluiceway.sinks.base import Batch
from sluiceway.sinks.context import SinkContext
from sluiceway.sinks.encoding import decode_jsonl_gzip
from sluiceway.sinks.object_store import ObjectStoreSink, ObjectStoreSinkConfig

H10 = datetime(2024, 3, 1, 10, 15, tzinfo=timezone.utc)


def rec(stream: str, tenant: str, at: datetime, n: int) -> Record:
    return Record(id=new_id(), tenant=tenant, stream=stream, source="test", received_at=at, payload={"n": n})


def s3_sink(conn: S3Connection, tmp_path: Path) -> ObjectStoreSink:
    cfg = ObjectStoreSinkConfig.model_validate({"name": "objects", "s3": conn.model_dump()})
    # model_dump turns the secret into SecretStr, which validates back as is
    return ObjectStoreSink("objects", cfg, SinkContext(data_dir=tmp_path, store=None))  # type: ignore[arg-type]


async def listing(conn: S3Connection) -> dict[str, int]:
    store = open_store(s3=conn)
    return {info.key: info.size async for info in store.list()}


def batch_of(first: int, records: list[Record], partition: str = "w0") -> Batch:
    return Batch(partition, first, first + len(records) - 1, records)


async def test_send_list_read_back(s3_bucket: S3Connection, tmp_path: Path):
    sink = s3_sink(s3_bucket, tmp_path)
    await sink.healthcheck()
    b1 = batch_of(1, [rec("usage", "acme", H10, 0), rec("usage", "acme", H10 + timedelta(hours=1), 1),
                      rec("error", "globex", H10, 2), rec("usage", "acme", H10, 3)])
    b2 = batch_of(5, [rec("usage", "acme", H10, 4)])
    await sink.send(b1)
    await sink.send(b2)
    keys = await listing(s3_bucket)
    assert sorted(keys) == sorted([
        "usage/acme/2024/03/01/10/w0-000000000001-000000000004.jsonl.gz",
        "usage/acme/2024/03/01/11/w0-000000000001-000000000004.jsonl.gz",
        "error/globex/2024/03/01/10/w0-000000000001-000000000004.jsonl.gz",
        "usage/acme/2024/03/01/10/w0-000000000005-000000000005.jsonl.gz",
    ])
    store = open_store(s3=s3_bucket)
    data, attrs = await store.get_with_attributes("usage/acme/2024/03/01/10/w0-000000000001-000000000004.jsonl.gz")
    assert decode_jsonl_gzip(data) == [b1.records[0], b1.records[3]]
    assert attrs["Content-Type"] == "application/x-ndjson"
    assert attrs["Content-Encoding"] == "gzip"
    assert attrs["sluice-batch"] == "w0-000000000001-000000000004" and attrs["sluice-records"] == "2"
    everything = []
    for key in sorted(keys):
        everything += decode_jsonl_gzip(await store.get(key))
    assert sorted(r.payload["n"] for r in everything) == [0, 1, 2, 3, 4]
    await sink.aclose()
    await sink.aclose()


async def test_resend_overwrites(s3_bucket: S3Connection, tmp_path: Path):
    sink = s3_sink(s3_bucket, tmp_path)
    batch = batch_of(10, [rec("log", f"t{i % 3}", H10, i) for i in range(30)])
    await sink.send(batch)
    store = open_store(s3=s3_bucket)
    before = {k: await store.get(k) for k in await listing(s3_bucket)}
    assert len(before) == 3
    await sink.send(batch)
    await s3_sink(s3_bucket, tmp_path).send(batch)
    after = {k: await store.get(k) for k in await listing(s3_bucket)}
    assert after == before


async def test_prefix_is_prepended(s3_server, s3_bucket: S3Connection, tmp_path: Path):
    prefixed = s3_bucket.model_copy(update={"prefix": "sluice/prod"})
    sink = s3_sink(prefixed, tmp_path)
    await sink.send(batch_of(1, [rec("usage", "acme", H10, 0)]))
    assert list(await listing(s3_bucket)) == ["sluice/prod/usage/acme/2024/03/01/10/w0-000000000001-000000000001.jsonl.gz"]
    assert list(await listing(prefixed)) == ["usage/acme/2024/03/01/10/w0-000000000001-000000000001.jsonl.gz"]
    await sink.healthcheck()


async def test_store_operations(s3_bucket: S3Connection):
    store = open_store(s3=s3_bucket)
    await store.put("a/b.txt", b"hello", content_type="text/plain", metadata={"origin": "test"})
    assert await store.get("a/b.txt") == b"hello"
    info = await store.head("a/b.txt")
    assert info.key == "a/b.txt" and info.size == 5 and info.etag
    assert await store.exists("a/b.txt") and not await store.exists("a/c.txt")
    with pytest.raises(FileNotFoundError):
        await store.get("a/c.txt")
    await store.delete("a/b.txt")
    await store.delete("a/b.txt")
    assert [i async for i in store.list("a")] == []


async def test_put_file_multipart_round_trip(s3_bucket: S3Connection, tmp_path: Path):
    src = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with open(src, "wb") as f:
        for _ in range(20):
            chunk = os.urandom(1024 * 1024)
            digest.update(chunk)
            f.write(chunk)
    assert src.stat().st_size > MULTIPART_THRESHOLD
    store = open_store(s3=s3_bucket)
    assert await store.put_file("blobs/big.bin", src) == 20 * 1024 * 1024
    info = await store.head("blobs/big.bin")
    assert info.size == 20 * 1024 * 1024
    assert info.etag is not None and info.etag.strip('"').endswith("-3")  # multipart: 3 parts of 8 MiB
    assert hashlib.sha256(await store.get("blobs/big.bin")).digest() == digest.digest()
    # below the threshold: a single PUT, plain MD5 ETag
    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 1000)
    await store.put_file("blobs/small.bin", small)
    assert "-" not in ((await store.head("blobs/small.bin")).etag or "")


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts TCP connections and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    for c in conns:
        c.close()
    srv.close()


async def test_unreachable_endpoint_is_transient(s3_server, tmp_path: Path):
    conn = s3_server.connection("anything", endpoint=f"http://127.0.0.1:{closed_port()}", max_retries=0)
    sink = s3_sink(conn, tmp_path)
    with pytest.raises(TransientError):
        await sink.send(batch_of(1, [rec("usage", "acme", H10, 0)]))
    with pytest.raises(TransientError):
        await sink.healthcheck()
    with pytest.raises(TransientError):
        await open_store(s3=conn).get("x")


async def test_silent_endpoint_times_out_as_transient(s3_server, silent_server: int, tmp_path: Path):
    conn = s3_server.connection("anything", endpoint=f"http://127.0.0.1:{silent_server}", max_retries=0,
                                timeout=1.0, connect_timeout=1.0)
    with pytest.raises(TransientError):
        await s3_sink(conn, tmp_path).send(batch_of(1, [rec("usage", "acme", H10, 0)]))


async def test_wrong_credentials_are_permanent(s3_server, s3_bucket: S3Connection, tmp_path: Path):
    bad_secret = s3_bucket.model_copy(update={"secret_access_key": type(s3_bucket.secret_access_key)("wrong")})
    with pytest.raises(PermanentError, match="403"):
        await s3_sink(bad_secret, tmp_path).send(batch_of(1, [rec("usage", "acme", H10, 0)]))
    with pytest.raises(PermanentError):
        await s3_sink(bad_secret, tmp_path).healthcheck()
    bad_key = s3_bucket.model_copy(update={"access_key_id": "nobody"})
    with pytest.raises(PermanentError):
        await open_store(s3=bad_key).put("x", b"1")
    with pytest.raises(PermanentError):
        await s3_sink(bad_key, tmp_path).healthcheck()
    assert await listing(s3_bucket) == {}


async def test_missing_bucket_fails_healthcheck(s3_server, tmp_path: Path):
    sink = s3_sink(s3_server.connection("no-such-bucket-here"), tmp_path)
    with pytest.raises(PermanentError, match="NoSuchBucket"):
        await sink.healthcheck()
