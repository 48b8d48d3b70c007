"""``sluice lightfile6`` as a drop-in Lightfile6 Insights Gateway, against SeaweedFS.

Runs the shipped ``examples/lightfile6.yml`` with its variables set, short intervals set via
``LIGHTFILE6_*`` overrides, and covers the original's integration checklist plus outage,
shutdown and no-overwrite behaviour.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import signal
import socket
import subprocess
import uuid
from pathlib import Path

import httpx
import orjson
import pytest

from sluiceway.objectstore import open_store
from tests.helpers import eventually, free_port, spawn, wait_up

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).parents[2] / "examples" / "lightfile6.yml"
HOST = socket.gethostname().replace(".", "-")


class Gateway:
    """One ``sluice lightfile6`` process on its own buckets and cache dir."""

    def __init__(self, server, tmp_path: Path, **env: str):
        self.server = server
        suffix = uuid.uuid4().hex[:10]
        self.buckets = {k: f"lf6-{k}-{suffix}" for k in ("usage", "error", "specimen")}
        for b in self.buckets.values():
            server.create_bucket(b)
        self.port = free_port()
        self.cache = tmp_path / "cache"
        self.log = tmp_path / "gateway.log"
        self.env = {
            "S3_ENDPOINT": server.endpoint, "AWS_ACCESS_KEY_ID": server.access_key_id,
            "AWS_SECRET_ACCESS_KEY": server.secret_access_key, "CACHE_DIR": str(self.cache),
            "USAGE_BUCKET": self.buckets["usage"], "ERROR_BUCKET": self.buckets["error"],
            "SPECIMEN_BUCKET": self.buckets["specimen"],
            "LIGHTFILE6_AGGREGATION_USAGE_INTERVAL": "2s", "LIGHTFILE6_AGGREGATION_ERROR_INTERVAL": "2s",
            "SLUICE_LOG__LEVEL": "info", **env,
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = spawn(["lightfile6", "-p", str(self.port), "-c", str(EXAMPLE), "--host", "127.0.0.1"],
                          self.log, self.env)
        wait_up(self.port, self.proc, self.log)

    def stop(self, timeout: float = 60, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def put(self, path: str, body: bytes, user: str | None = "testuser", **headers: str) -> httpx.Response:
        if user is not None:
            headers["USER_TOKEN"] = user
        return httpx.put(self.url(path), content=body, headers=headers, timeout=30)

    def store(self, kind: str):
        return open_store(s3=self.server.connection(self.buckets[kind]))

    async def objects(self, kind: str) -> dict[str, tuple[bytes, dict[str, str]]]:
        st = self.store(kind)
        out = {}
        async for info in st.list():
            out[info.key] = await st.get_with_attributes(info.key)
        return out

    async def report_lines(self, kind: str) -> list[dict]:
        lines = []
        for data, _ in (await self.objects(kind)).values():
            lines += [orjson.loads(x) for x in gzip.decompress(data).splitlines()]
        return lines


@pytest.fixture
def gateway(s3_server, tmp_path):
    gws: list[Gateway] = []

    def make(**env: str) -> Gateway:
        gw = Gateway(s3_server, tmp_path / f"g{len(gws)}", **env)
        gw.cache.parent.mkdir(parents=True, exist_ok=True)
        gws.append(gw)
        gw.start()
        return gw

    yield make
    for gw in gws:
        gw.kill()


async def test_original_integration_checklist(gateway):
    gw = gateway()
    r = httpx.get(gw.url("/health"))
    assert r.status_code == 200 and r.json()["status"] == "healthy"
    assert gw.put("/usage", b'{"event":"test_event","timestamp":"2025-06-14T01:02:03Z"}').status_code == 204
    assert gw.put("/error", b'{"error":"test_error","message":"boom"}').status_code == 204
    body = b"specimen text\n" * 100
    r = gw.put("/specimen?uri=http://example.com/test.txt", body)
    assert r.status_code == 204 and r.content == b""
    for path in ("/usage", "/error", "/specimen?uri=test"):
        assert gw.put(path, b"{}", user=None).status_code == 401

    usage = await eventually(lambda: gw.objects("usage"), timeout=30)
    (key, (data, attrs)), = usage.items()
    assert re.fullmatch(rf"usage/\d{{4}}/\d\d/\d\d/\d\d/\d{{10}}\.{re.escape(HOST)}\.[0-9a-f]+-w0-\d{{12}}-\d{{12}}\.jsonl\.gz",
                        key), key
    assert b"test_event" in gzip.decompress(data)
    assert attrs.get("Content-Type") == "application/gzip" and "Content-Encoding" not in attrs
    line = orjson.loads(gzip.decompress(data).splitlines()[0])
    assert line["user"] == "testuser" and line["report"]["event"] == "test_event"
    hour = line["received_at"]
    assert key.startswith(f"usage/{hour[0:4]}/{hour[5:7]}/{hour[8:10]}/{hour[11:13]}/")

    errors = await eventually(lambda: gw.report_lines("error"), timeout=30)
    assert errors[0]["report"] == {"error": "test_error", "message": "boom"}

    specs = await eventually(lambda: gw.objects("specimen"), timeout=30)
    (skey, (sdata, sattrs)), = specs.items()
    assert re.fullmatch(r"testuser/\d{4}/\d\d/\d\d/test\.\d{19}\.txt", skey), skey
    assert sdata == body
    assert sattrs.get("Content-Type") == "text/plain" and sattrs.get("uri") == "http://example.com/test.txt"
    assert not [p for p in (gw.cache / "blobs").iterdir() if p.is_file()]  # spool emptied


async def test_flushes_in_the_same_hour_never_overwrite(gateway):
    gw = gateway()
    for i in range(3):
        assert gw.put("/usage", orjson.dumps({"n": i})).status_code == 204
        await eventually(lambda: _count(gw, i + 1), timeout=30)
    objs = await gw.objects("usage")
    assert len(objs) == 3  # one object per flush, each with its own key
    assert sorted(x["report"]["n"] for x in await gw.report_lines("usage")) == [0, 1, 2]


async def _count(gw: Gateway, n: int) -> bool:
    return len(await gw.report_lines("usage")) >= n


async def test_shutdown_uploads_everything_pending(gateway):
    gw = gateway(LIGHTFILE6_AGGREGATION_USAGE_INTERVAL="1h", LIGHTFILE6_AGGREGATION_ERROR_INTERVAL="1h")
    for i in range(5):
        assert gw.put("/usage", orjson.dumps({"event": "bye", "i": i})).status_code == 204
    assert gw.put("/error", b'{"e":1}').status_code == 204
    blobs = [os.urandom(3 * 1024 * 1024 + i) for i in range(2)]
    for i, b in enumerate(blobs):
        assert gw.put(f"/specimen?uri=http://e.com/s{i}.bin", b).status_code == 204
    assert gw.stop(sig=signal.SIGINT) == 0  # Ctrl-C, as the original's test did
    assert sorted(x["report"]["i"] for x in await gw.report_lines("usage")) == list(range(5))
    assert len(await gw.report_lines("error")) == 1
    specs = await gw.objects("specimen")
    assert sorted(d for d, _ in specs.values()) == sorted(blobs)


async def test_s3_outage_loses_nothing_and_duplicates_nothing(own_s3_server, tmp_path):
    s3 = own_s3_server
    gw = Gateway(s3.server, tmp_path, SLUICE_LOG__LEVEL="warning", LIGHTFILE6_SHUTDOWN_TIMEOUT="3s")
    gw.start()
    try:
        s3.stop()
        ids = [uuid.uuid4().hex for _ in range(6)]
        for i, rid in enumerate(ids):
            assert gw.put("/usage" if i % 2 else "/error", orjson.dumps({"id": rid})).status_code == 204
        spec = os.urandom(9 * 1024 * 1024)  # multipart
        assert gw.put("/specimen?uri=big.bin", spec).status_code == 204
        await asyncio.sleep(4)  # flushes come due and fail against the stopped server
        s3.start()

        async def delivered():
            lines = await gw.report_lines("usage") + await gw.report_lines("error")
            return len(lines) >= 6 and lines

        lines = await eventually(delivered, timeout=90, interval=0.5)
        specs = await eventually(lambda: gw.objects("specimen"), timeout=90, interval=0.5)
        assert sorted(x["report"]["id"] for x in lines) == sorted(ids)  # each exactly once
        assert [d for d, _ in specs.values()] == [spec]

        # Down again at shutdown: what cannot be delivered stays in the journal, exit is non-zero...
        s3.stop()
        assert gw.put("/usage", b'{"id":"late"}').status_code == 204
        assert gw.stop() != 0
        # ...and is delivered by the next start.
        s3.start()
        gw.start()

        async def late():
            return any(x["report"]["id"] == "late" for x in await gw.report_lines("usage"))

        await eventually(late, timeout=90, interval=0.5)
        assert gw.stop() == 0
    finally:
        gw.kill()
