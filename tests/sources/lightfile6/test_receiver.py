"""The Lightfile6 receiver in-process, delivering to local directories."""

from __future__ import annotations

import gzip
import re
import socket
from pathlib import Path

import orjson
import pytest

from tests.helpers import eventually, make_config, running_gateway

HOST = socket.gethostname().replace(".", "-")


def config(tmp_path: Path, **source):
    return make_config(
        tmp_path / "data",
        sources=[{"type": "lightfile6", **source}],
        sinks=[
            {"name": "reports", "type": "object_store", "path": str(tmp_path / "out"), "streams": ["usage", "error"],
             "key_template": "{stream}/{yyyy}/{mm}/{dd}/{hh}/{yyyy}{mm}{dd}{hh}.{hostname}.{batch}.jsonl.gz",
             "format": "payload", "batch": {"max_age": 0.05}},
            {"name": "specimens", "type": "attachments", "path": str(tmp_path / "spec"), "key_template": "{name}",
             "batch": {"max_age": 0.05}},
        ],
    )


def objects(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def lines(root: Path, stream: str) -> list[bytes]:
    out: list[bytes] = []
    for p in objects(root / stream) if (root / stream).exists() else []:
        out += gzip.decompress(p.read_bytes()).splitlines()
    return out


async def test_health(tmp_path):
    async with running_gateway(config(tmp_path)) as (gw, c):
        r = await c.get("/health")
        assert r.status_code == 200 and r.json() == {"status": "healthy"}


@pytest.mark.parametrize("route", ["usage", "error"])
async def test_report_lands_with_user_and_receive_time(tmp_path, route):
    async with running_gateway(config(tmp_path)) as (gw, c):
        r = await c.put(f"/{route}", headers={"USER_TOKEN": "testuser"}, content=b'{"event":"test_event","n":1}')
        assert r.status_code == 204 and r.content == b""
        got = await eventually(lambda: _async(lines(tmp_path / "out", route)))
    doc = orjson.loads(got[0])
    assert doc["user"] == "testuser" and doc["report"] == {"event": "test_event", "n": 1}
    key = objects(tmp_path / "out" / route)[0].relative_to(tmp_path / "out" / route).as_posix()
    hour = doc["received_at"][:13]  # YYYY-MM-DDTHH of receipt
    y, m, d, h = hour[0:4], hour[5:7], hour[8:10], hour[11:13]
    assert re.fullmatch(rf"{y}/{m}/{d}/{h}/{y}{m}{d}{h}\.{re.escape(HOST)}\.[0-9a-f]+-w0-\d{{12}}-\d{{12}}\.jsonl\.gz", key)


async def _async(v):
    return v


async def test_user_token_with_hyphen_is_accepted(tmp_path):
    async with running_gateway(config(tmp_path)) as (gw, c):
        r = await c.put("/usage", headers={"User-Token": "bob"}, content=b"{}")
        assert r.status_code == 204
        got = await eventually(lambda: _async(lines(tmp_path / "out", "usage")))
    assert orjson.loads(got[0])["user"] == "bob"


@pytest.mark.parametrize("path", ["/usage", "/error", "/specimen?uri=test"])
@pytest.mark.parametrize("headers", [{}, {"USER_TOKEN": ""}, {"USER_TOKEN": "  "}])
async def test_missing_token_is_401(tmp_path, path, headers):
    async with running_gateway(config(tmp_path)) as (gw, c):
        r = await c.put(path, headers=headers, content=b"{}")
    assert r.status_code == 401
    assert r.json()["message"] == "USER_TOKEN header is required"


@pytest.mark.parametrize("query", ["", "?uri=", "?other=1"])
async def test_specimen_without_uri_is_400(tmp_path, query):
    async with running_gateway(config(tmp_path)) as (gw, c):
        r = await c.put(f"/specimen{query}", headers={"USER_TOKEN": "u"}, content=b"x")
    assert r.status_code == 400 and r.json()["message"] == "uri parameter is required"


async def test_wrong_method_is_405_and_unknown_path_404_without_auth(tmp_path):
    async with running_gateway(config(tmp_path)) as (gw, c):
        r = await c.get("/usage")
        assert r.status_code == 405 and r.headers["allow"] == "PUT"
        r = await c.post("/specimen", headers={"USER_TOKEN": "u"})
        assert r.status_code == 405
        r = await c.put("/nowhere")
        assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_invalid_json_is_400_naming_the_problem(tmp_path):
    async with running_gateway(config(tmp_path)) as (gw, c):
        r = await c.put("/usage", headers={"USER_TOKEN": "u"}, content=b'{"a": 1,')
        assert r.status_code == 400 and "not valid JSON" in r.json()["message"] and "line 1" in r.json()["detail"]
        r = await c.put("/error", headers={"USER_TOKEN": "u"}, content=b"")
        assert r.status_code == 400 and "empty body" in r.json()["detail"]
        r = await c.put("/usage", headers={"USER_TOKEN": "u"}, content=b'{"a":' * 300 + b"1" + b"}" * 300)
        assert r.status_code == 400 and "levels deep" in r.json()["detail"]
        assert all(p.stats().last_offset == 0 for p in gw.journal.partitions())


async def test_invalid_json_kept_as_text_when_configured(tmp_path):
    async with running_gateway(config(tmp_path, invalid_json="string")) as (gw, c):
        r = await c.put("/usage", headers={"USER_TOKEN": "u"}, content=b"plain text \xff")
        assert r.status_code == 204
        got = await eventually(lambda: _async(lines(tmp_path / "out", "usage")))
    assert orjson.loads(got[0])["report"] == "plain text \ufffd"


async def test_raw_lines_write_the_bare_report_one_line_each(tmp_path):
    async with running_gateway(config(tmp_path, raw_lines=True)) as (gw, c):
        assert (await c.put("/usage", headers={"USER_TOKEN": "u"}, content=b'{"a":1}')).status_code == 204
        assert (await c.put("/usage", headers={"USER_TOKEN": "u"}, content=b'{\n  "b": 2\n}\n')).status_code == 204
        # a pretty-printed report is re-encoded on one line, its integers past 64 bits whole
        big = b'{\n  "c": 123456789012345678901234567890\n}'
        assert (await c.put("/usage", headers={"USER_TOKEN": "u"}, content=big)).status_code == 204
        got = await eventually(lambda: _async(len(lines(tmp_path / "out", "usage")) == 3 and lines(tmp_path / "out", "usage")))
    assert sorted(got) == [b'{"a":1}', b'{"b":2}', b'{"c":123456789012345678901234567890}']


async def test_size_limits_are_413(tmp_path):
    async with running_gateway(config(tmp_path, max_report_bytes=100, max_specimen_bytes=1000)) as (gw, c):
        r = await c.put("/usage", headers={"USER_TOKEN": "u"}, content=b'{"a":"' + b"x" * 200 + b'"}')
        assert r.status_code == 413

        async def chunks():
            for _ in range(5):
                yield b"y" * 300

        r = await c.put("/specimen?uri=a.bin", headers={"USER_TOKEN": "u"}, content=chunks())
        assert r.status_code == 413
    assert not list((tmp_path / "data" / "blobs").rglob("*.part"))
    assert not [p for p in (tmp_path / "data" / "blobs").iterdir() if p.is_file()]


@pytest.mark.parametrize("user", ["../../../x", "a/b", "..", ".", "a\\b", "tab\there"])
async def test_unsafe_user_is_refused(tmp_path, user):
    async with running_gateway(config(tmp_path)) as (gw, c):
        r = await c.put("/usage", headers={"USER_TOKEN": user}, content=b"{}")
        assert r.status_code == 400, user
        r = await c.put("/specimen?uri=x.png", headers={"USER_TOKEN": user}, content=b"x")
        assert r.status_code == 400


async def test_specimen_is_stored_whole_with_type_and_unique_key(tmp_path):
    body = bytes(range(256)) * 4096  # 1 MiB of binary
    async with running_gateway(config(tmp_path)) as (gw, c):
        for uri in ("http://example.com/dir/test.png?x=1#frag", "http://example.com/dir/test.png?x=1#frag"):
            r = await c.put("/specimen", params={"uri": uri}, headers={"USER_TOKEN": "testuser"}, content=body)
            assert r.status_code == 204
        r = await c.put("/specimen", params={"uri": "../../etc/passwd"}, headers={"USER_TOKEN": "testuser",
                        "Content-Type": "text/plain"}, content=b"hi")
        assert r.status_code == 204
        got = await eventually(lambda: _async(len(objects(tmp_path / "spec")) == 3 and objects(tmp_path / "spec")))
        await eventually(lambda: _async(not [p for p in (tmp_path / "data" / "blobs").iterdir() if p.is_file()]))
    keys = [p.relative_to(tmp_path / "spec").as_posix() for p in got]
    pngs = [k for k in keys if k.endswith(".png")]
    assert len(pngs) == 2 and len(set(pngs)) == 2  # same uri, same user: never the same key
    for k in pngs:
        assert re.fullmatch(r"testuser/\d{4}/\d{2}/\d{2}/test\.\d{19}\.png", k), k
        assert (tmp_path / "spec" / k).read_bytes() == body
    other = [k for k in keys if not k.endswith(".png")][0]
    assert re.fullmatch(r"testuser/\d{4}/\d{2}/\d{2}/passwd\.\d{19}", other)


async def test_specimen_record_keeps_user_uri_and_checksum(tmp_path):
    async with running_gateway(config(tmp_path)) as (gw, c):
        r = await c.put("/specimen", params={"uri": "https://x.test/screenshot"}, headers={"USER_TOKEN": "ann"},
                        content=b"png-bytes")
        assert r.status_code == 204
        part = gw.journal.partitions()[0]
        entries = await part.read(0, 10, 1 << 20)
    doc = orjson.loads(entries[0].data)
    assert doc["stream"] == "specimen" and doc["payload"]["user"] == "ann"
    assert doc["payload"]["uri"] == "https://x.test/screenshot"
    att = doc["attachments"][0]
    assert att["size"] == 9 and att["content_type"] == "image/png" and att["metadata"] == {"uri": "https://x.test/screenshot"}
    assert att["name"].startswith("ann/") and att["name"].endswith(".png")


async def test_routes_are_in_the_openapi_document(tmp_path):
    async with running_gateway(config(tmp_path, path_prefix="/lf6")) as (gw, c):
        spec = (await c.get("/openapi.json")).json()
        assert {"/lf6/usage", "/lf6/error", "/lf6/specimen", "/lf6/health"} <= set(spec["paths"])
        assert "USER_TOKEN" in (await c.get("/docs")).text
        assert (await c.put("/lf6/usage", headers={"USER_TOKEN": "u"}, content=b"{}")).status_code == 204
        assert (await c.get("/health")).json() == {"status": "ok"}  # the core's, outside the prefix
