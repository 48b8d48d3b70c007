"""The ingress receiver in-process: protocol, identity, archives, track."""

from __future__ import annotations

import base64
import gzip

import orjson
import pytest

from tests.helpers import eventually, make_config, running_gateway, spec_links
from tests.sources.ingress.archives import bomb, link, tgz

UA = "openshift-lightspeed-operator/user-data-collection cluster/c-123"
CT = "application/vnd.redhat.ols.periodic+tar"


def config(tmp_path, **source):
    return make_config(tmp_path / "data", sources=[{"type": "ingress", **source}])


async def setup(gw, tenant="org1", scopes=("ingest", "read")):
    info, secret = await gw.store.create_token(tenant, list(scopes))
    return {"Authorization": f"Bearer {secret}", "User-Agent": UA}


def post(c, headers, data: bytes, ct: str = CT, field: str = "file", path="/api/ingress/v1/upload", **kw):
    return c.post(path, headers=headers, files={field: ("lightspeed-assistant.tgz", data, ct)}, **kw)


FILES = {
    "root.json": b'{"a": 1}',
    "feedback/fb1.json": b'{"user_question": "q", "timestamp": "2025-07-24T13:16:49Z"}',
    "transcripts/u1/c1/t1.json": b'{\n  "pretty": true\n}',
    "lines.jsonl": b'{"n": 1}\n\n{"n": 2}\n',
    "notes.txt": b"skip me",
}


async def test_upload_is_accepted_filed_and_unpacked(tmp_path):
    async with running_gateway(config(tmp_path)) as (gw, c):
        h = await setup(gw)
        data = tgz(FILES)
        r = await post(c, {**h, "x-rh-insights-request-id": "abc123"}, data)
        assert r.status_code == 202, r.text
        assert r.json() == {"request_id": "abc123", "upload": {"org_id": "org1"}}
        assert r.headers["x-rh-insights-request-id"] == "abc123"
        rows = await eventually(lambda: _records(gw, "org1", "ols", 5))
        st = await eventually(lambda: _delivered(c, h, "abc123"))
    docs = {(r["payload"]["file"], r["payload"]["line"]): r["payload"] for r in rows}
    assert docs[("root.json", None)]["data"] == {"a": 1}
    assert docs[("transcripts/u1/c1/t1.json", None)]["data"] == {"pretty": True}
    assert docs[("lines.jsonl", 3)]["data"] == {"n": 2}
    assert all(p["cluster_id"] == "c-123" and p["request_id"] == "abc123" for p in docs.values())
    fb = next(r for r in rows if r["payload"]["file"] == "feedback/fb1.json")
    assert fb["event_time"] == "2025-07-24T13:16:49Z"
    objs = list((tmp_path / "data" / "objects").rglob("abc123.tgz"))
    assert len(objs) == 1 and objs[0].read_bytes() == data
    assert objs[0].relative_to(tmp_path / "data" / "objects").parts[-5:-2] == ("ols", "org1", "c-123")
    assert st["records"] == 5 and st["skipped_members"] == ["notes.txt"] and st["status"] == "accepted"
    assert set(st["sinks"]) == {"objects", "sql", "attachments"}


async def _records(gw, tenant, stream, n):
    rows = await gw.store.query_records(tenant, stream, limit=1000)
    return len(rows) >= n and rows


async def _delivered(c, h, rid):
    r = await c.get(f"/api/ingress/v1/track/{rid}", headers=h)
    assert r.status_code == 200, r.text
    return r.json()["delivered"] and r.json()


async def test_alternative_mount_and_upload_field(tmp_path):
    async with running_gateway(config(tmp_path)) as (gw, c):
        h = await setup(gw)
        r = await post(c, h, tgz({"a.json": b"{}"}), field="upload", path="/r/insights/platform/ingress/v1/upload")
        assert r.status_code == 202
        assert len(r.json()["request_id"]) == 32


@pytest.mark.parametrize("ct,status", [
    ("application/vnd.redhat.ols.periodic+tgz", 202),
    ("application/vnd.redhat.rhos-lightspeed.periodic", 202),
    ("application/vnd.redhat.unknown.periodic+tar", 415),
    ("application/octet-stream", 415),
    ("application/gzip", 415),  # advisor: not in the allowed list
])
async def test_content_type_selects_the_service(tmp_path, ct, status):
    async with running_gateway(config(tmp_path)) as (gw, c):
        h = await setup(gw)
        r = await post(c, h, tgz({"a.json": b"{}"}), ct=ct)
        assert r.status_code == status, r.text


async def test_missing_part_size_limits_and_test_requests(tmp_path):
    async with running_gateway(config(tmp_path, max_size="1KiB", max_size_map={"rhos-lightspeed": "1MiB"})) as (gw, c):
        h = await setup(gw)
        r = await c.post("/api/ingress/v1/upload", headers=h, files={"other": ("x", b"1", CT)})
        assert r.status_code == 400 and "File or upload field not found" in r.json()["detail"]
        big = tgz({"a.json": orjson.dumps({"x": list(range(2000))})}, gz=False)
        assert (await post(c, h, big)).status_code == 413
        assert (await post(c, h, big, ct="application/vnd.redhat.rhos-lightspeed.periodic")).status_code == 202
        r = await c.post("/api/ingress/v1/upload", headers=h, data={"test": "test"}, files={"x": ("n", b"", "text/plain")})
        assert r.status_code == 200 and "request_id" in r.json()
        r = await c.post("/api/ingress/v1/upload", headers=h, json={"test": "test"})
        assert r.status_code == 200
    assert not list((tmp_path / "data" / "blobs" / "tmp").iterdir())  # no partial upload left behind


async def test_identity(tmp_path):
    ident = {"identity": {"type": "User", "account_number": "0000001", "org_id": "000001",
                          "internal": {"org_id": "000001"}, "system": {"cluster_id": "cl-9"}}}
    good = base64.b64encode(orjson.dumps(ident)).decode()
    async with running_gateway(config(tmp_path, trust_identity_header=True, deny_listed_orgids="666")) as (gw, c):
        r = await post(c, {"x-rh-identity": good}, tgz({"a.json": b"{}"}))
        assert r.status_code == 202 and r.json()["upload"] == {"account_number": "0000001", "org_id": "000001"}
        for bad, msg in (("!!", "b64 decode"), (base64.b64encode(b"nope").decode(), "valid JSON"),
                         (base64.b64encode(b'{"identity":{"type":"User"}}').decode(), "org_id"),
                         (base64.b64encode(b'{"identity":{"org_id":"1"}}').decode(), "missing type")):
            r = await post(c, {"x-rh-identity": bad}, tgz({"a.json": b"{}"}))
            assert r.status_code == 400 and msg in r.json()["detail"], (bad, r.text)
        r = await post(c, {}, tgz({"a.json": b"{}"}))
        assert r.status_code == 400 and "missing x-rh-identity" in r.json()["detail"]
        deny = base64.b64encode(orjson.dumps({"identity": {"type": "User", "org_id": "666"}})).decode()
        r = await post(c, {"x-rh-identity": deny}, tgz({"a.json": b"{}"}))
        assert r.status_code == 403 and "Upload denied" in r.json()["detail"]


async def test_identity_header_is_ignored_unless_trusted(tmp_path):
    fake = base64.b64encode(orjson.dumps({"identity": {"type": "User", "org_id": "victim"}})).decode()
    async with running_gateway(config(tmp_path)) as (gw, c):
        r = await post(c, {"x-rh-identity": fake}, tgz({"a.json": b"{}"}))
        assert r.status_code == 401
        h = await setup(gw)
        r = await post(c, {**h, "Authorization": "Bearer wrong"}, tgz({"a.json": b"{}"}))
        assert r.status_code == 401


@pytest.mark.parametrize("archive,status,message", [
    (lambda: tgz({"../evil.json": b"{}"}), 400, "unsafe path"),
    (lambda: tgz({"/etc/evil.json": b"{}"}), 400, "unsafe path"),
    (lambda: tgz({"a.json": b"{}"}, extra=[link("l.json", "/etc/passwd")]), 400, "is a link"),
    (lambda: tgz({"a.json": b"{}"}, extra=[link("h.json", "a.json", b"1")]), 400, "is a link"),
    (lambda: tgz({"a.json": b"{}"}, extra=[link("dev", "", b"3")]), 400, "device"),
    (lambda: bomb(1, 300 * 1024 * 1024), 413, "limit is"),  # one member over max_member_bytes
    (lambda: bomb(8, 50 * 1024 * 1024), 413, "expands past"),  # 400 MB from ~400 KB: the ratio cap
    (lambda: b"this is not an archive at all", 400, "not a readable tar"),
    (lambda: gzip.compress(b"not a tar inside"), 400, "not a readable tar"),
])
async def test_hostile_archives_are_refused_and_nothing_is_kept(tmp_path, archive, status, message):
    async with running_gateway(config(tmp_path)) as (gw, c):
        h = await setup(gw)
        r = await post(c, {**h, "x-rh-insights-request-id": "bad1"}, archive())
        assert r.status_code == status and message in r.json()["detail"], r.text
        st = (await c.get("/api/ingress/v1/track/bad1", headers=h)).json()
        assert st["status"] == "rejected" and message in st["error"]
        assert (await post(c, h, tgz({"ok.json": b"{}"}))).status_code == 202  # still up
        assert all(p.stats().last_offset == 2 for p in gw.journal.partitions())
    blobs = tmp_path / "data" / "blobs"
    assert not list((blobs / "tmp").iterdir())
    assert len([p for p in blobs.iterdir() if p.is_file()]) <= 1  # at most the good upload's, not yet sent


async def test_member_count_cap_and_many_tiny_members(tmp_path):
    files = {f"d/{i}.json": b'{"i":%d}' % i for i in range(10_000)}
    data = tgz(files)
    async with running_gateway(config(tmp_path, archive={"max_members": 5000})) as (gw, c):
        h = await setup(gw)
        r = await post(c, h, data)
        assert r.status_code == 413 and "more than 5000 members" in r.json()["detail"]
    async with running_gateway(config(tmp_path / "2")) as (gw, c):
        h = await setup(gw)
        r = await post(c, h, data)
        assert r.status_code == 202
        assert gw.journal.partitions()[0].stats().last_offset == 10_001


async def test_invalid_json_members_are_recorded_not_fatal(tmp_path):
    async with running_gateway(config(tmp_path)) as (gw, c):
        h = await setup(gw)
        deep = b"[" * 300 + b"]" * 300  # too deep to store
        r = await post(c, {**h, "x-rh-insights-request-id": "inv"}, tgz({"good.json": b"{}", "bad.json": b"{nope",
                                                                          "mix.jsonl": b'{"a":1}\n{bad\n',
                                                                          "deep.json": deep}))
        assert r.status_code == 202
        st = (await c.get("/api/ingress/v1/track/inv", headers=h)).json()
    assert st["records"] == 2
    assert {i["file"] for i in st["invalid_members"]} == {"bad.json", "mix.jsonl:2", "deep.json"}


async def test_track_is_per_tenant_and_lubdub(tmp_path):
    async with running_gateway(config(tmp_path)) as (gw, c):
        h = await setup(gw)
        other = await setup(gw, "org2")
        assert (await post(c, {**h, "x-rh-insights-request-id": "mine"}, tgz({"a.json": b"{}"}))).status_code == 202
        assert (await c.get("/api/ingress/v1/track/mine", headers=other)).status_code == 404
        assert (await c.get("/api/ingress/v1/track/nope", headers=h)).status_code == 404
        r = await c.get("/api/ingress/v1/")
        assert r.status_code == 200 and r.text == "lubdub"
        assert (await c.get("/api/ingress/v1/version")).json()["version"]
        assert (await c.get("/api/ingress/v1/upload")).status_code == 405
        spec = (await c.get("/openapi.json")).json()
        assert "/api/ingress/v1/upload" in spec["paths"]
        assert spec_links(spec)[("/api/ingress/v1/upload", "post", "TrackUpload")] == \
            ("/api/ingress/v1/track/{request_id}", "get")


async def test_archive_made_by_tar_c_dot_is_accepted(tmp_path):
    import subprocess

    src = tmp_path / "export"
    (src / "feedback").mkdir(parents=True)
    (src / "feedback" / "a.json").write_text('{"a": 1}')
    (src / "b.json").write_text('{"b": 2}')
    subprocess.run(["tar", "czf", str(tmp_path / "x.tgz"), "-C", str(src), "."], check=True)
    async with running_gateway(config(tmp_path / "gw")) as (gw, c):
        h = await setup(gw)
        r = await post(c, {**h, "x-rh-insights-request-id": "dot"}, (tmp_path / "x.tgz").read_bytes())
        assert r.status_code == 202, r.text
        st = (await c.get("/api/ingress/v1/track/dot", headers=h)).json()
    assert st["records"] == 2
