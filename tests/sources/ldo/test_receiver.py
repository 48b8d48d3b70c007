"""The LDO receiver in-process: uploads, statuses, idempotency, tenants, list, delete."""

from __future__ import annotations

import asyncio
import hashlib
import re

import orjson
import pytest

from sluiceway.record import MAX_DEPTH
from tests.helpers import eventually, spec_links
from tests.helpers import running_gateway as gateway
from tests.sources.ldo.common import auth, config, upload

ID_RE = re.compile(r"ldo_[0-9a-f]{12}_\d+\Z")
META = {"cid": "CID-0001-ab12cd34", "device_id": "edge-07", "timestamp": "2024-01-16T16:00:00Z"}


def spooled(tmp_path) -> list[str]:
    root = tmp_path / "data" / "blobs"
    return [p.name for p in root.iterdir() if p.is_file()] if root.exists() else []


async def records(gw, tenant="org1"):
    return await gw.store.query_records(tenant, "ldo", limit=100)


async def test_upload_is_journalled_registered_and_delivered(tmp_path):
    data = b"\x00\x01video" * 1000
    async with gateway(config(tmp_path)) as (gw, c):
        h = await auth(gw)
        r = await upload(c, h, META, data, filename="clip-0001.mp4")
        assert r.status_code == 200, r.text
        body = r.json()
        assert ID_RE.match(body["id"])
        assert body == {"id": body["id"], "status": "ingested", "message": "LDO successfully ingested",
                        "size_bytes": len(data)}
        (rec,) = await eventually(lambda: records(gw))
        obj = (await c.get(f"/ingest/ldo/{body['id']}", headers=h)).json()
        store = tmp_path / "data" / "objects"
        await eventually(lambda: _exists(store / obj["object_key"]))
    p = rec["payload"]
    assert p["id"] == body["id"] and p["metadata"] == META and p["filename"] == "clip-0001.mp4"
    assert p["size"] == len(data) and p["sha256"] == hashlib.sha256(data).hexdigest()
    assert p["content_type"] == "video/mp4" and p["created_at"] == obj["created_at"]
    assert rec["event_time"] == "2024-01-16T16:00:00Z"  # the metadata's own timestamp
    assert obj["created_at"].endswith("Z") and obj["metadata"] == META and obj["filename"] == "clip-0001.mp4"
    assert (store / obj["object_key"]).read_bytes() == data
    assert obj["object_key"].endswith(f"ldo/org1/{obj['created_at'][:10].replace('-', '/')}/{body['id']}/clip-0001.mp4")


async def _exists(path):
    return path.exists()


async def test_statuses_of_bad_uploads(tmp_path):
    async with gateway(config(tmp_path, max_file_bytes="1KiB")) as (gw, c):
        h = await auth(gw)
        reader = await auth(gw, scopes=("read",))
        assert (await upload(c, {}, META, b"x")).status_code == 401
        assert (await upload(c, {"Authorization": "Bearer nope"}, META, b"x")).status_code == 401
        r = await upload(c, reader, META, b"x")
        assert r.status_code == 403 and "ingest" in r.json()["detail"]
        r = await upload(c, h, None, b"x")
        assert r.status_code == 422 and "metadata" in r.json()["detail"] and set(r.json()) == {"error", "detail"}
        r = await upload(c, h, "{not json", b"x")
        assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
        for levels in (MAX_DEPTH, 300, 2000):  # metadata sits one level down in its record
            r = await upload(c, h, '{"a":' * levels + "1" + "}" * levels, b"x")
            assert r.status_code == 400 and ("levels deep" in r.json()["detail"] or levels > 1024), r.text
        r = await upload(c, h, "[1, 2]", b"x")
        assert r.status_code == 400 and "JSON object" in r.json()["detail"] and "array" in r.json()["detail"]
        r = await upload(c, h, {"ldo_id": 5}, b"x")
        assert r.status_code == 400 and "ldo_id" in r.json()["detail"]
        r = await upload(c, h, META, b"x" * 1025)
        assert r.status_code == 413
        r = await c.post("/ingest/ldo", headers={**h, "content-type": "application/json"}, content=b"{}")
        assert r.status_code == 415
        r = await c.post("/ingest/ldo", headers=h, files=[("video", ("a", b"1")), ("file", ("b", b"2"))],
                         data={"metadata": "{}"})
        assert r.status_code == 400 and "more than one file part" in r.json()["detail"]
        assert (await c.get("/ingest/list", headers=h)).json() == {"total": 0, "ldos": []}
    assert spooled(tmp_path) == []  # nothing refused is kept


async def test_any_content_type_and_the_file_field_and_metadata_as_a_file_part(tmp_path):
    async with gateway(config(tmp_path)) as (gw, c):
        h = await auth(gw)
        files = {"file": ("scan.bin", b"abc", "application/x-weird"),
                 "metadata": ("metadata.json", orjson.dumps(META), "application/json")}
        r = await c.post("/ingest/ldo", headers=h, files=files)
        assert r.status_code == 200, r.text
        obj = (await c.get(f"/ingest/status/{r.json()['id']}", headers=h)).json()
    assert obj["metadata"] == META and obj["content_type"] == "application/x-weird" and obj["size_bytes"] == 3


async def test_metadata_only_uploads(tmp_path):
    async with gateway(config(tmp_path)) as (gw, c):
        h = await auth(gw)
        r = await upload(c, h, {"cid": "c1"})  # multipart, no file part
        assert r.status_code == 200, r.text
        assert r.json()["size_bytes"] is None
        r2 = await c.post("/ingest/ldo", headers=h, data={"metadata": '{"cid": "c2"}'})  # urlencoded
        assert r2.status_code == 200, r2.text
        r3 = await upload(c, h, {"cid": "c3"}, b"", filename="")  # an empty file input
        assert r3.status_code == 200 and r3.json()["size_bytes"] is None
        obj = (await c.get(f"/ingest/ldo/{r.json()['id']}", headers=h)).json()
        assert obj["filename"] is None and obj["object_key"] is None and obj["sha256"] is None
        f = await c.get(f"/ingest/ldo/{r.json()['id']}/file", headers=h)
        assert f.status_code == 404 and "no file" in f.json()["detail"]
        (rec, *_) = await eventually(lambda: records(gw))
        assert rec["attachments"] == [] and rec["payload"]["size"] is None
        lst = (await c.get("/ingest/list", headers=h)).json()
        assert [x["metadata"]["cid"] for x in lst["ldos"]] == ["c1", "c2", "c3"]
        d = await c.delete(f"/ingest/{r.json()['id']}", headers=h)
        assert d.status_code == 200
        # metadata keeps integers past 64 bits whole (orjson alone reads them as floats)
        r4 = await upload(c, h, '{"cid": "c4", "serial": 123456789012345678901234567890}')
        assert r4.status_code == 200, r4.text
        got = (await c.get(f"/ingest/ldo/{r4.json()['id']}", headers=h)).json()
        assert got["metadata"]["serial"] == 123456789012345678901234567890


async def test_client_ldo_id_makes_the_upload_idempotent_per_tenant(tmp_path):
    meta = {**META, "ldo_id": "LDO-20240116160000-ab12cd34"}
    sinks = [{"name": "files", "type": "attachments"}, {"name": "sql", "type": "sql"}]
    async with gateway(config(tmp_path, sinks=sinks)) as (gw, c):
        h = await auth(gw)
        other = await auth(gw, tenant="org2")
        first = await upload(c, h, meta, b"first")
        again = await upload(c, h, {**meta, "cid": "changed"}, b"second, longer")
        assert first.status_code == again.status_code == 200
        assert again.json()["id"] == first.json()["id"] and again.json()["size_bytes"] == 5
        assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
        theirs = await upload(c, other, meta, b"theirs")  # the same ldo_id in another tenant: its own
        assert theirs.status_code == 200 and theirs.json()["id"] != first.json()["id"]
        lst = (await c.get("/ingest/list", headers=h)).json()
        assert lst["total"] == 1 and lst["ldos"][0]["metadata"]["cid"] == META["cid"]
        obj = (await c.get(f"/ingest/ldo/{first.json()['id']}", headers=h)).json()
        assert obj["ldo_id"] == meta["ldo_id"]
        assert len(await eventually(lambda: records(gw))) == 1
        await eventually(lambda: _empty_spool(tmp_path))  # the repeat's file was not kept


async def _empty_spool(tmp_path):
    return spooled(tmp_path) == []


async def test_tenants_see_only_their_own(tmp_path):
    async with gateway(config(tmp_path)) as (gw, c):
        h1, h2 = await auth(gw, "org1"), await auth(gw, "org2")
        lid = (await upload(c, h1, META, b"mine")).json()["id"]
        for path in (f"/ingest/ldo/{lid}", f"/ingest/status/{lid}", f"/ingest/ldo/{lid}/file"):
            r = await c.get(path, headers=h2)
            assert r.status_code == 404 and r.json()["error"] == "not_found", path
            assert (await c.get(path, headers=h1)).status_code == 200, path
        assert (await c.delete(f"/ingest/{lid}", headers=h2)).status_code == 404
        assert (await c.get("/ingest/list", headers=h2)).json() == {"total": 0, "ldos": []}
        assert (await c.get("/ingest/list", headers=h1)).json()["total"] == 1
        assert (await c.get("/ingest/status/ldo_000000000000_1", headers=h1)).status_code == 404


async def test_list_pages_oldest_first_and_checks_its_parameters(tmp_path):
    async with gateway(config(tmp_path)) as (gw, c):
        h = await auth(gw)
        ids = [(await upload(c, h, {"n": i})).json()["id"] for i in range(5)]
        page = (await c.get("/ingest/list?skip=1&limit=2", headers=h)).json()
        assert page["total"] == 5 and [x["id"] for x in page["ldos"]] == ids[1:3]
        assert set(page["ldos"][0]) == {"id", "status", "filename", "created_at", "size_bytes", "metadata"}
        assert [x["id"] for x in (await c.get("/ingest/list", headers=h)).json()["ldos"]] == ids
        for q in ("skip=-1", "limit=0", "limit=1001", "skip=x", "limit=1.5"):
            r = await c.get(f"/ingest/list?{q}", headers=h)
            assert r.status_code == 400 and q.split("=")[0] in r.json()["detail"], q
        assert (await c.get("/ingest/list", headers=await auth(gw, scopes=("ingest",)))).status_code == 403


async def test_delete_removes_the_row_and_the_object(tmp_path):
    async with gateway(config(tmp_path, sinks=[{"name": "files", "type": "attachments"}])) as (gw, c):
        h = await auth(gw)
        lid = (await upload(c, h, META, b"bytes")).json()["id"]
        key = (await c.get(f"/ingest/ldo/{lid}", headers=h)).json()["object_key"]
        obj = tmp_path / "data" / "objects" / key
        await eventually(lambda: _exists(obj))
        assert (await c.delete(f"/ingest/{lid}", headers=await auth(gw, scopes=("read",)))).status_code == 403
        admin = await auth(gw, scopes=("admin",))
        r = await c.delete(f"/ingest/{lid}", headers=admin)
        assert r.status_code == 200 and r.json() == {"id": lid, "message": f"LDO {lid} deleted"}
        assert not obj.exists()
        assert (await c.get(f"/ingest/ldo/{lid}", headers=h)).status_code == 404
        assert (await c.delete(f"/ingest/{lid}", headers=h)).status_code == 404


@pytest.mark.parametrize("prefix,unprefixed", [("/data-ingestion", True), ("/data-ingestion/", False)])
async def test_path_prefix(tmp_path, prefix, unprefixed):
    async with gateway(config(tmp_path, path_prefix=prefix, serve_unprefixed=unprefixed)) as (gw, c):
        h = await auth(gw)
        r = await upload(c, h, META, b"x", path="/data-ingestion/ingest/ldo")
        assert r.status_code == 200
        assert (await c.get(f"/data-ingestion/ingest/status/{r.json()['id']}", headers=h)).status_code == 200
        plain = await c.get("/ingest/list", headers=h)
        assert plain.status_code == (200 if unprefixed else 404)
        doc = (await c.get("/openapi.json")).json()
        spec = doc["paths"]
        assert "/data-ingestion/ingest/ldo/{ldo_id}/file" in spec
        assert ("/ingest/ldo" in spec) is unprefixed
        # The upload's answer links to the operations on the new LDO, under the same prefix.
        links = spec_links(doc)
        assert links[("/data-ingestion/ingest/ldo", "post", "GetLdo")] == ("/data-ingestion/ingest/ldo/{ldo_id}", "get")
        assert links[("/data-ingestion/ingest/ldo", "post", "DeleteLdo")] == ("/data-ingestion/ingest/{ldo_id}", "delete")
        got = spec["/data-ingestion/ingest/ldo"]["post"]["responses"]["200"]["links"]["GetLdoFile"]
        assert got["parameters"] == {"ldo_id": "$response.body#/id"}


async def test_journal_full_is_503_and_keeps_nothing(tmp_path):
    async with gateway(config(tmp_path)) as (gw, c):
        h = await auth(gw)
        gw.journal.full = lambda: 2.0  # type: ignore[method-assign]
        r = await upload(c, h, META, b"x")
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
    assert spooled(tmp_path) == []


async def test_concurrent_repeats_make_one_ldo(tmp_path):
    sinks = [{"name": "files", "type": "attachments"}, {"name": "sql", "type": "sql"}]
    async with gateway(config(tmp_path, sinks=sinks)) as (gw, c):
        h = await auth(gw)
        rs = await asyncio.gather(*(upload(c, h, {"ldo_id": "same"}, b"x" * 100) for _ in range(5)))
        assert {r.status_code for r in rs} == {200} and len({r.json()["id"] for r in rs}) == 1
        assert len(await eventually(lambda: records(gw))) == 1
        assert (await c.get("/ingest/list", headers=h)).json()["total"] == 1


async def test_a_store_failure_after_the_append_is_503_and_loses_nothing(tmp_path):
    sinks = [{"name": "files", "type": "attachments", "key_template": "{name}"}, {"name": "sql", "type": "sql"}]
    async with gateway(config(tmp_path, sinks=sinks)) as (gw, c):
        h = await auth(gw)

        async def broken(row):
            raise OSError("database is down")

        gw.store.add_ldo = broken
        r = await upload(c, h, {"ldo_id": "L1"}, b"abc")
        assert r.status_code == 503 and r.json()["error"] == "store_unavailable" and "retry-after" in r.headers
        (rec,) = await eventually(lambda: records(gw))
        await eventually(lambda: _exists(tmp_path / "data" / "objects" / rec["attachments"][0]["name"]))
        del gw.store.add_ldo
        again = await upload(c, h, {"ldo_id": "L1"}, b"abc")  # the client's retry registers it
        assert again.status_code == 200 and "idempotent-replayed" not in again.headers
        assert (await c.get("/ingest/list", headers=h)).json()["total"] == 1
