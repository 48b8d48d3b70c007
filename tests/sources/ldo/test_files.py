"""Serving an LDO's file: from the blob spool before delivery, from the object store after;
single ranges, 416, HEAD, conditional requests."""

from __future__ import annotations

import hashlib
import os

import pytest

from sluiceway.sources.ldo.files import RangeNotSatisfiable, parse_range
from sluiceway.store import open_store
from tests.helpers import eventually
from tests.helpers import running_gateway as gateway
from tests.sources.ldo.common import auth, config, upload

SIZE = 3 * 1024 * 1024 + 17  # several read chunks
DATA = os.urandom(SIZE)


@pytest.mark.parametrize("header,expected", [
    (None, None), ("bytes=0-0", (0, 1)), ("bytes=10-19", (10, 20)), ("bytes=5-", (5, 100)),
    ("bytes=-5", (95, 100)), ("bytes=-500", (0, 100)), ("bytes=90-5000", (90, 100)), ("bytes= 1-2", (1, 3)),
    ("bytes=0-1,5-6", None), ("bytes=9-3", None), ("items=0-1", None), ("bytes=-", None), ("bytes=a-b", None),
])
def test_parse_range(header, expected):
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header,size", [("bytes=100-", 100), ("bytes=100-200", 100), ("bytes=-0", 100),
                                         ("bytes=0-", 0), ("bytes=-1", 0)])
def test_unsatisfiable_ranges(header, size):
    with pytest.raises(RangeNotSatisfiable) as e:
        parse_range(header, size)
    assert e.value.status == 416 and e.value.headers == {"Content-Range": f"bytes */{size}"}


async def check_reads(c, h, lid: str) -> None:
    url = f"/ingest/ldo/{lid}/file"
    etag = f'"{hashlib.sha256(DATA).hexdigest()}"'
    r = await c.get(url, headers=h)
    assert r.status_code == 200 and r.content == DATA
    assert r.headers["content-length"] == str(SIZE) and r.headers["etag"] == etag
    assert r.headers["content-type"] == "video/mp4" and r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-disposition"] == 'inline; filename="clip.mp4"'
    for header, (start, end) in {"bytes=0-0": (0, 1), "bytes=1048570-1048590": (1048570, 1048591),
                                 "bytes=2097000-": (2097000, SIZE), "bytes=-5": (SIZE - 5, SIZE),
                                 f"bytes=10-{SIZE * 2}": (10, SIZE)}.items():
        r = await c.get(url, headers={**h, "Range": header})
        assert r.status_code == 206, header
        assert r.content == DATA[start:end], header
        assert r.headers["content-range"] == f"bytes {start}-{end - 1}/{SIZE}", header
        assert r.headers["content-length"] == str(end - start)
    r = await c.get(url, headers={**h, "Range": f"bytes={SIZE}-"})
    assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{SIZE}"
    assert r.json()["error"] == "range_not_satisfiable"
    r = await c.get(url, headers={**h, "Range": "bytes=0-1,4-5"})  # several ranges: the whole file
    assert r.status_code == 200 and len(r.content) == SIZE
    r = await c.get(url, headers={**h, "Range": "bytes=0-1", "If-Range": '"other"'})
    assert r.status_code == 200 and len(r.content) == SIZE
    r = await c.get(url, headers={**h, "Range": "bytes=0-1", "If-Range": etag})
    assert r.status_code == 206
    r = await c.head(url, headers=h)
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == str(SIZE)
    r = await c.get(url, headers={**h, "If-None-Match": etag})
    assert r.status_code == 304 and r.content == b""


async def undelivering(cfg):
    """A gateway that takes uploads but delivers nothing (an HTTP worker's role)."""
    await (await open_store(cfg.store_url)).aclose()  # the worker role does not migrate
    return gateway(cfg, role="http")


def blobs(tmp_path) -> list[str]:
    root = tmp_path / "data" / "blobs"
    return [p.name for p in root.iterdir() if p.is_file()] if root.exists() else []


async def test_file_is_served_from_the_spool_then_from_the_object_store(tmp_path):
    cfg = config(tmp_path, sinks=[{"name": "files", "type": "attachments", "key_template": "{name}"}])
    async with await undelivering(cfg) as (gw, c):  # no delivery: the file stays in the spool
        h = await auth(gw)
        lid = (await upload(c, h, {"cid": "c"}, DATA)).json()["id"]
        key = (await c.get(f"/ingest/ldo/{lid}", headers=h)).json()["object_key"]
        assert len(blobs(tmp_path)) == 1
        await check_reads(c, h, lid)
        d = await c.delete(f"/ingest/{lid}", headers=h)  # the sink would store it after the delete
        assert d.status_code == 409 and d.headers["retry-after"] == "5"
    obj = tmp_path / "data" / "objects" / key
    assert not obj.exists()
    async with gateway(cfg) as (gw, c):  # delivery: the sink stores the object, the spool lets go
        await eventually(lambda: _delivered(tmp_path, obj))
        await check_reads(c, h, lid)
        assert (await c.delete(f"/ingest/{lid}", headers=h)).status_code == 200
        assert not obj.exists()


async def _delivered(tmp_path, obj):
    return obj.exists() and not blobs(tmp_path)


async def test_a_file_gone_from_everywhere_is_404(tmp_path):
    cfg = config(tmp_path, sinks=[{"name": "files", "type": "attachments"}])
    async with await undelivering(cfg) as (gw, c):
        h = await auth(gw)
        lid = (await upload(c, h, {"cid": "c"}, b"abc")).json()["id"]
        for name in blobs(tmp_path):
            (tmp_path / "data" / "blobs" / name).unlink()
        r = await c.get(f"/ingest/ldo/{lid}/file", headers=h)
        assert r.status_code == 404 and "not available" in r.json()["detail"]
