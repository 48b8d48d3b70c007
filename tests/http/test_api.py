import gzip
import sqlite3

import orjson
import pytest

from sluiceway.record import MAX_DEPTH
from tests.helpers import eventually, make_config, running_gateway

FAST = {"batch": {"max_age": "50ms"}, "retry": {"initial": "10ms", "max": "50ms"}}


def sinks():
    return [{"type": "object_store", "name": "objects", **FAST}, {"type": "sql", "name": "sql", **FAST}]


@pytest.fixture
async def gw(tmp_path):
    cfg = make_config(tmp_path / "data", sinks=sinks())
    async with running_gateway(cfg) as (gateway, client):
        info, token = await gateway.store.create_token("acme", ["ingest", "read"])
        _, ingest_only = await gateway.store.create_token("acme", ["ingest"])
        _, other = await gateway.store.create_token("globex", ["ingest", "read"])
        _, admin = await gateway.store.create_token("ops", ["admin"])
        client.headers["Authorization"] = f"Bearer {token}"
        yield gateway, client, {"ingest_only": ingest_only, "other": other, "admin": admin}


def bearer(t):
    return {"Authorization": f"Bearer {t}"}


async def test_single_event_then_query(gw):
    gateway, client, _ = gw
    r = await client.post("/v1/streams/usage/events", content=b'{"event":"startup"}')
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == 1 and body["request_id"]

    async def visible():
        q = await client.get("/v1/streams/usage/events", params={"limit": 10})
        return q.json()["events"]

    events = await eventually(visible)
    assert events[0]["payload"] == {"event": "startup"}
    assert events[0]["tenant"] == "acme" and events[0]["stream"] == "usage"
    assert events[0]["received_at"].endswith("Z")


async def test_objects_written(gw, tmp_path):
    gateway, client, _ = gw
    r = await client.post("/v1/streams/usage/events", content=b'[{"a":1},{"a":2}]')
    assert r.status_code == 202 and r.json()["accepted"] == 2
    root = tmp_path / "data" / "objects"

    async def files():
        return sorted(root.rglob("*.jsonl.gz"))

    found = await eventually(files)
    assert found[0].relative_to(root).parts[:2] == ("usage", "acme")
    lines = gzip.decompress(found[0].read_bytes()).splitlines()
    assert [orjson.loads(x)["payload"] for x in lines] == [{"a": 1}, {"a": 2}]


async def test_ndjson_and_gzip(gw):
    _, client, _ = gw
    nd = b"".join(orjson.dumps({"i": i}) + b"\n" for i in range(100))
    r = await client.post("/v1/streams/logs/events", content=gzip.compress(nd),
                          headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})
    assert r.status_code == 202 and r.json()["accepted"] == 100


async def _post_and_read_back(client, stream: str, body: bytes, headers: dict[str, str] | None = None) -> dict:
    """POST one event to ``stream`` (202), then wait until the query API answers it."""
    r = await client.post(f"/v1/streams/{stream}/events", content=body, headers=headers or {})
    assert r.status_code == 202, r.text

    async def visible():
        q = await client.get(f"/v1/streams/{stream}/events")
        assert q.status_code == 200, q.text
        return q.json()["events"]

    [event] = await eventually(visible)
    return event


@pytest.mark.parametrize("stream, body, headers", [
    ("ndjson", b'{"big":123456789012345678901234567890,"n":1e999}\n', {"Content-Type": "application/x-ndjson"}),
    ("pretty", b'{\n  "big": 123456789012345678901234567890,\n  "n": 1e999\n}', {}),
    ("array", b'[{"big":123456789012345678901234567890,"n":1e999}, {"m":-1E+400}]', {}),  # members re-encoded
])
async def test_numbers_past_orjson_are_stored_and_queryable(gw, stream, body, headers):
    """Valid JSON that orjson refuses (integers past 64 bits, 1e999) is accepted, stored as
    sent and answered by the query API as sent, whether the event is kept as its text (one
    line) or re-encoded (a pretty-printed object, an array's members)."""
    _, client, _ = gw
    r = await client.post(f"/v1/streams/{stream}/events", content=body, headers=headers)
    assert r.status_code == 202, r.text

    async def visible():
        q = await client.get(f"/v1/streams/{stream}/events")
        return q.text if len(q.json()["events"]) == body.count(b"{") else None

    text = await eventually(visible)
    assert '"big":123456789012345678901234567890' in text and '"n":1e999' in text
    assert stream != "array" or '"m":-1E+400' in text


@pytest.mark.parametrize("stream, body", [
    ("one", b'{"big":123456789012345678901234567890,"neg":-9223372036854775809}'),  # orjson reads these as floats
    ("pretty", b'{\n  "big": 123456789012345678901234567890,\n  "neg": -9223372036854775809\n}'),
    ("array", b'[{"big":123456789012345678901234567890,"neg":-9223372036854775809}]'),  # members are re-encoded
])
async def test_integers_past_64_bits_come_back_whole(gw, stream, body):
    _, client, _ = gw
    event = await _post_and_read_back(client, stream, body)
    assert event["payload"] == {"big": 123456789012345678901234567890, "neg": -9223372036854775809}
    assert type(event["payload"]["big"]) is int


async def test_pagination_oldest_first(gw):
    _, client, _ = gw
    for i in range(5):
        assert (await client.post("/v1/streams/p/events", json={"i": i})).status_code == 202

    async def all_there():
        q = await client.get("/v1/streams/p/events", params={"limit": 100})
        return len(q.json()["events"]) == 5

    await eventually(all_there)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/streams/p/events", params=params)).json()
        seen += [e["payload"]["i"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [0, 1, 2, 3, 4]
    future = (await client.get("/v1/streams/p/events", params={"since": "2999-01-01T00:00:00Z"})).json()
    assert future == {"events": [], "next_cursor": None}
    # A parameter given empty is not absent: a typed one is a 400 naming it.
    for name in ("since", "until", "limit", "cursor", "tenant"):
        r = await client.get("/v1/streams/p/events", params={name: ""})
        assert r.status_code == 400 and name in r.json()["detail"], (name, r.text)


@pytest.mark.parametrize("body,ctype,status,needle", [
    (b'{"a": tru}', "application/json", 400, "offset"),
    (b'{"a":1}\n{oops}\n', "application/x-ndjson", 400, "line 2"),
    (b'"just a string"', "application/json", 400, "string"),
    (b'[{"a":1}, 3]', "application/json", 400, "event 1"),
    (b"<a/>", "application/xml", 415, "content type"),
])
async def test_bad_input_is_4xx_json(gw, body, ctype, status, needle):
    _, client, _ = gw
    r = await client.post("/v1/streams/usage/events", content=body, headers={"Content-Type": ctype})
    assert r.status_code == status
    err = r.json()
    assert set(err) == {"error", "detail"} and needle in err["detail"]


def _nested(levels: int) -> bytes:
    """An object ``levels`` deep: {"a":{"a":…{"a":1}…}}."""
    return b'{"a":' * (levels - 1) + b'{"a":1' + b"}" * levels


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 255, 990, 1000, 1023, 1024, 2000, 100_000])
@pytest.mark.parametrize("shape", ["object", "array", "ndjson"])
async def test_events_nested_too_deeply_are_400(gw, levels, shape):
    """Past MAX_DEPTH levels an event is refused whatever the parser that met it (msgspec
    stops near Python's recursion limit, orjson reads 1,024 levels and writes 254): never a
    500, never a 202 for an event that could not be read back."""
    _, client, _ = gw
    body, ctype = {"object": (_nested(levels), "application/json"),
                   "array": (b'[{"ok":1},' + _nested(levels) + b"]", "application/json"),
                   "ndjson": (b'{"ok":1}\n' + _nested(levels) + b"\n", "application/x-ndjson")}[shape]
    r = await client.post("/v1/streams/deep/events", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_request"


async def test_an_event_at_the_depth_limit_is_stored_and_queryable(gw):
    _, client, _ = gw
    event = await _post_and_read_back(client, "deep", _nested(MAX_DEPTH))
    assert orjson.dumps(event["payload"]) == _nested(MAX_DEPTH)


async def test_body_limit_and_gzip_bomb(tmp_path):
    cfg = make_config(tmp_path / "d", server={"max_body_bytes": "64KiB"}, sinks=sinks())
    async with running_gateway(cfg) as (gateway, client):
        _, token = await gateway.store.create_token("acme", ["ingest"])
        h = bearer(token)
        r = await client.post("/v1/streams/u/events", content=b'{"a":"' + b"x" * 70_000 + b'"}', headers=h)
        assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
        bomb = gzip.compress(b'{"a":"' + b"x" * 10_000_000 + b'"}')
        r = await client.post("/v1/streams/u/events", content=bomb, headers={**h, "Content-Encoding": "gzip"})
        assert r.status_code == 413 and "decompressed" in r.json()["detail"]


async def test_auth_errors(gw):
    _, client, tokens = gw
    r = await client.post("/v1/streams/u/events", json={"a": 1}, headers={"Authorization": ""})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    r = await client.post("/v1/streams/u/events", json={"a": 1}, headers=bearer("slw_nope"))
    assert r.status_code == 401
    r = await client.post("/v1/streams/u/events", json={"a": 1}, headers={"Authorization": "Basic abc"})
    assert r.status_code == 401
    r = await client.get("/v1/streams/u/events", headers=bearer(tokens["ingest_only"]))
    assert r.status_code == 403 and "read" in r.json()["detail"]
    r = await client.post("/v1/streams/u/events?tenant=acme", json={"a": 1}, headers=bearer(tokens["other"]))
    assert r.status_code == 403 and "tenant" in r.json()["detail"]
    r = await client.post("/v1/streams/u/events", json={"a": 1},
                          headers={**bearer(tokens["admin"]), "X-Sluice-Tenant": "acme"})
    assert r.status_code == 202


async def test_revoked_token_stops_working(tmp_path):
    cfg = make_config(tmp_path / "d", server={"token_cache_ttl": 0}, sinks=sinks())
    async with running_gateway(cfg) as (gateway, client):
        info, token = await gateway.store.create_token("acme", ["ingest"])
        assert (await client.post("/v1/streams/u/events", json={}, headers=bearer(token))).status_code == 202
        assert await gateway.store.revoke_token(info.id)
        assert (await client.post("/v1/streams/u/events", json={}, headers=bearer(token))).status_code == 401


async def test_stream_and_tenant_names_validated(gw):
    _, client, tokens = gw
    r = await client.post("/v1/streams/Bad.Name/events", json={"a": 1})
    assert r.status_code == 400 and "stream name" in r.json()["detail"]
    r = await client.post("/v1/streams/ok/events", json={"a": 1},
                          headers={**bearer(tokens["admin"]), "X-Sluice-Tenant": "../etc"})
    assert r.status_code == 400 and "tenant" in r.json()["detail"]


async def test_restricted_streams_404(tmp_path):
    cfg = make_config(tmp_path / "d", server={"streams": ["usage"]}, sinks=sinks())
    async with running_gateway(cfg) as (gateway, client):
        _, token = await gateway.store.create_token("acme", ["ingest"])
        assert (await client.post("/v1/streams/usage/events", json={}, headers=bearer(token))).status_code == 202
        r = await client.post("/v1/streams/other/events", json={}, headers=bearer(token))
        assert r.status_code == 404 and "usage" in r.json()["detail"]


async def test_idempotency_key_replays(gw):
    gateway, client, _ = gw
    h = {"Idempotency-Key": "k-1"}
    r1 = await client.post("/v1/streams/idem/events", json=[{"a": 1}, {"a": 2}], headers=h)
    r2 = await client.post("/v1/streams/idem/events", json=[{"a": 1}, {"a": 2}], headers=h)
    assert r1.status_code == r2.status_code == 202
    assert r1.json() == r2.json() and r2.headers.get("idempotent-replayed") == "true"
    assert (await client.post("/v1/streams/idem/events", json={"a": 3}, headers={"Idempotency-Key": "k-2"})).status_code == 202

    async def count():
        q = await client.get("/v1/streams/idem/events")
        return len(q.json()["events"]) == 3 and q.json()["events"]

    events = await eventually(count)
    assert [e["idempotency_key"] for e in events] == ["k-1", "k-1", "k-2"]


async def test_journal_full_503(tmp_path):
    cfg = make_config(tmp_path / "d", journal={"max_bytes": "2KiB", "segment_bytes": "1KiB"},
                      sinks=[{"type": "sql", "name": "sql", "streams": ["nothing-matches"], "batch": {"max_age": "1h"}}])
    async with running_gateway(cfg) as (gateway, client):
        _, token = await gateway.store.create_token("acme", ["ingest"])
        statuses = []
        for _ in range(40):
            r = await client.post("/v1/streams/u/events", json={"pad": "x" * 200}, headers=bearer(token))
            statuses.append(r.status_code)
            if r.status_code == 503:
                assert int(r.headers["retry-after"]) >= 1 and r.json()["error"] == "journal_full"
                break
        assert statuses[0] == 202 and statuses[-1] == 503


async def test_a_failed_journal_write_is_503_and_stores_nothing(gw, monkeypatch):
    gateway, client, _ = gw
    writer = gateway._writer._writer  # the journal partition's SegmentWriter
    real = writer.write

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer, "write", no_space)
    r = await client.post("/v1/streams/usage/events", json={"lost": 1})
    assert r.status_code == 503 and r.json()["error"] == "journal_unavailable"
    assert "No space left on device" in r.json()["detail"] and int(r.headers["retry-after"]) >= 1
    assert 'sluice_events_rejected_total{reason="journal_error"} 1.0' in (await client.get("/metrics")).text
    monkeypatch.setattr(writer, "write", real)  # the disk has room again: appends go on
    assert (await client.post("/v1/streams/usage/events", json={"kept": 1})).status_code == 202

    async def stored():
        events = (await client.get("/v1/streams/usage/events")).json()["events"]
        return events if events else None

    assert [e["payload"] for e in await eventually(stored)] == [{"kept": 1}]


async def test_operational_endpoints(gw):
    _, client, _ = gw
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"journal": "ok", "store": "ok"}
    await client.post("/v1/streams/usage/events", json={"a": 1})
    m = (await client.get("/metrics")).text
    for name in ("sluice_http_requests_total", "sluice_events_accepted_total", "sluice_journal_fsync_seconds_bucket"):
        assert name in m
    spec = (await client.get("/openapi.json")).json()
    assert "/v1/streams/{stream}/events" in spec["paths"]
    assert "Ingest events" in (await client.get("/docs")).text


async def test_unknown_route_and_method_are_json(gw):
    _, client, _ = gw
    r = await client.get("/nope")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = await client.delete("/v1/streams/u/events")
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize("method, path", [("GET", "/nope"), ("DELETE", "/v1/streams/u/events"),
                                          ("GET", "/v1/streams/u/events"), ("GET", "/health"),
                                          ("GET", "/v1/logs/"), ("PATCH", "/v1/admin/sources//")])
async def test_a_query_string_that_is_not_utf8_is_no_500(gw, method, path):
    """HTTP servers pass the query string's raw bytes: the 404 answer read the path from the
    request's URL, and Starlette's trailing-slash redirect built one, which decodes the query
    string as UTF-8: both answered 500 (found by fuzzing)."""
    from sluiceway.http.app import create_app

    gateway, client, _ = gw
    app = create_app(gateway, manage_lifecycle=False)
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    token = client.headers["Authorization"].encode()
    await app({"type": "http", "http_version": "1.1", "method": method, "path": path, "raw_path": path.encode(),
               "query_string": b"limit=1&x=\xaf\xff", "root_path": "", "scheme": "http",
               "headers": [(b"host", b"t"), (b"authorization", token)], "client": ("127.0.0.1", 1),
               "server": ("127.0.0.1", 2)}, receive, send)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] < 500, sent


async def test_metrics_merge_other_processes_snapshots(tmp_path):
    from sluiceway.telemetry.metrics import Metrics

    other = Metrics()
    other.events_accepted.labels(stream="usage").inc(5)
    other.sink_lag.labels("s3").set(7)
    snap = tmp_path / "metrics"
    other.write_snapshot(snap)
    (snap / "999999.json").write_bytes((snap / next(snap.glob("*.json")).name).read_bytes())
    (snap / next(p for p in snap.glob("*.json") if p.name != "999999.json").name).unlink()
    mine = Metrics()
    mine.events_accepted.labels(stream="usage").inc(2)
    text = mine.render(snap).decode()
    assert 'sluice_events_accepted_total{stream="usage"} 7.0' in text
    assert 'sluice_sink_lag_records{sink="s3"} 7.0' in text
    mine.write_snapshot(snap)
    mine.remove_snapshot(snap)
    assert [p.name for p in snap.glob("*.json")] == ["999999.json"]


async def test_unexpected_error_on_fast_path_is_json_500(gw, monkeypatch):
    gateway, client, _ = gw

    async def broken(items, stream):
        raise RuntimeError("boom")

    monkeypatch.setattr(gateway, "accept", broken)
    r = await client.post("/v1/streams/usage/events", json={"a": 1})
    assert r.status_code == 500 and r.json() == {"error": "internal_error",
                                                  "detail": "an internal error occurred; see the server log"}


@pytest.mark.parametrize("error", [
    ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"),
    sqlite3.OperationalError("database is locked"),
])
async def test_a_store_that_cannot_serve_is_503_not_500(gw, monkeypatch, error):
    gateway, client, _ = gw

    async def down(*args, **kwargs):
        raise error

    monkeypatch.setattr(gateway.store, "query_records", down)
    r = await client.get("/v1/streams/usage/events")
    assert r.status_code == 503 and r.json()["error"] == "unavailable"
    assert str(error) in r.json()["detail"] and int(r.headers["retry-after"]) >= 1


def test_access_log_can_be_turned_off(tmp_path):
    from sluiceway.runtime.gateway import Gateway

    assert Gateway(make_config(tmp_path / "a", log={"level": "info"})).access_log.enabled
    assert not Gateway(make_config(tmp_path / "b", log={"access": False})).access_log.enabled
    # info-level lines, like uvicorn's access log: a level above info leaves them out
    assert Gateway(make_config(tmp_path / "c", log={"level": "debug"})).access_log.enabled
    assert not Gateway(make_config(tmp_path / "d", log={"level": "warning"})).access_log.enabled


async def test_a_damaged_partition_of_another_writer_does_not_stop_the_gateway(tmp_path):
    """A segment of an earlier worker's partition is damaged: the gateway starts all the same,
    takes and delivers new events, and leaves that partition for the operator to repair."""
    import struct
    import zlib

    from structlog.testing import capture_logs

    cfg = make_config(tmp_path / "data", sinks=sinks())
    bad = cfg.journal_dir / "partitions" / "w1"
    bad.mkdir(parents=True)
    payload = b'{"x":1}'
    (bad / f"{1:020d}.seg").write_bytes(  # a whole frame at the wrong offset: damage, not a torn write
        struct.pack("<IIQ", len(payload), zlib.crc32(struct.pack("<Q", 9) + payload), 9) + payload)
    with capture_logs():
        async with running_gateway(cfg) as (gateway, client):
            _, token = await gateway.store.create_token("acme", ["ingest", "read"])
            client.headers["Authorization"] = f"Bearer {token}"
            r = await client.post("/v1/streams/usage/events", json={"after": "damage"})
            assert r.status_code == 202, r.text

            async def stored():
                return (await client.get("/v1/streams/usage/events")).json()["events"] or None

            assert [e["payload"] for e in await eventually(stored)] == [{"after": "damage"}]
            assert [p.name for p in gateway.journal.partitions()] == ["w0"]

            async def alerted():  # the delivery watcher's next refresh sets it
                return "sluice_journal_unreadable 1.0" in (await client.get("/metrics")).text or None

            assert await eventually(alerted)
    assert (bad / f"{1:020d}.seg").exists()
