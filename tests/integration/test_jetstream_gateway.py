"""The gateway with ``journal.engine: jetstream`` against a real nats-server: ingest, delivery
to both default sinks, the query API, /ready, 503 while the server is away, and a restart that
delivers what an earlier run accepted."""

from __future__ import annotations

import gzip

import httpx
import orjson
import pytest

from sluiceway.journal.jetstream import JetStreamJournal
from tests.helpers import eventually, make_config, running_gateway

pytestmark = pytest.mark.integration

FAST = {"batch": {"max_age": "50ms"}, "retry": {"initial": "10ms", "max": "50ms"}}


def config(data, nats_url, **journal):
    return make_config(data, journal={"engine": "jetstream", "jetstream": {"url": nats_url, "timeout": "2s"}, **journal},
                       sinks=[{"type": "object_store", "name": "objects", **FAST}, {"type": "sql", "name": "sql", **FAST}])


async def query(client: httpx.AsyncClient) -> list[dict]:
    r = await client.get("/v1/streams/usage/events", params={"limit": 100})
    assert r.status_code == 200, r.text
    return r.json()["events"]


async def test_events_go_through_jetstream_to_both_sinks(tmp_path, nats_url):
    cfg = config(tmp_path / "data", nats_url)
    async with running_gateway(cfg) as (gw, client):
        assert isinstance(gw.journal, JetStreamJournal)
        _, token = await gw.store.create_token("acme", ["ingest", "read"])
        client.headers["Authorization"] = f"Bearer {token}"
        r = await client.post("/v1/streams/usage/events", content=b'{"event":"startup"}')
        assert r.status_code == 202, r.text
        r = await client.post("/v1/streams/usage/events", content=b'{"n":1}\n{"n":2}\n',
                              headers={"Content-Type": "application/x-ndjson"})
        assert r.json()["accepted"] == 2
        events = await eventually(lambda: _three(client))
        assert [e["payload"] for e in events] == [{"event": "startup"}, {"n": 1}, {"n": 2}]

        async def objects():
            lines = [orjson.loads(line) for p in (tmp_path / "data" / "objects").rglob("*.jsonl.gz")
                     for line in gzip.decompress(p.read_bytes()).splitlines()]
            return lines if len(lines) == 3 else None

        assert {tuple(sorted(x["payload"].items())) for x in await eventually(objects)} == {
            (("event", "startup"),), (("n", 1),), (("n", 2),)}
        r = await client.get("/ready")
        assert r.status_code == 200 and r.json()["checks"]["journal"] == "ok"

        async def reclaimed():
            await gw.journal.refresh()
            return gw.journal.writer().stats().first_offset == 0  # both sinks acked: purged

        assert await eventually(reclaimed)


async def _three(client):
    events = await query(client)
    return events if len(events) == 3 else None


async def test_without_its_server_the_gateway_answers_503_and_not_ready(tmp_path, nats_server, nats_url):
    cfg = config(tmp_path / "data", nats_url)
    async with running_gateway(cfg) as (gw, client):
        _, token = await gw.store.create_token("acme", ["ingest", "read"])
        client.headers["Authorization"] = f"Bearer {token}"
        nats_server.stop()
        try:
            async def not_ready():
                r = await client.get("/ready")
                return r if r.status_code == 503 else None

            r = await eventually(not_ready)
            assert "not connected" in r.json()["checks"]["journal"]
            r = await client.post("/v1/streams/usage/events", content=b'{"event":"lost?"}')
            assert r.status_code == 503, r.text
            assert r.json()["error"] and "retry-after" in r.headers
        finally:
            nats_server.start()

        async def accepted():
            r = await client.post("/v1/streams/usage/events", content=b'{"event":"back"}')
            return r if r.status_code == 202 else None

        assert await eventually(accepted, timeout=30)
        events = await eventually(lambda: query(client))
        assert [e["payload"] for e in events] == [{"event": "back"}]


async def test_records_accepted_before_a_stop_are_delivered_after_it(tmp_path, nats_url):
    data = tmp_path / "data"
    async with running_gateway(config(data, nats_url)) as (gw, _):  # migrates the store
        _, token = await gw.store.create_token("acme", ["ingest", "read"])
    # Then an HTTP worker alone, so nothing is delivered or reclaimed.
    async with running_gateway(config(data, nats_url), role="http") as (gw, client):
        client.headers["Authorization"] = f"Bearer {token}"
        for i in range(3):
            assert (await client.post("/v1/streams/usage/events", content=b'{"i":%d}' % i)).status_code == 202
    async with running_gateway(config(data, nats_url)) as (gw, client):
        client.headers["Authorization"] = f"Bearer {token}"
        events = await eventually(lambda: _three(client))
        assert [e["payload"]["i"] for e in events] == [0, 1, 2]


async def test_a_new_data_dir_with_a_lost_gateways_id_delivers_its_records(tmp_path, nats_url):
    """docs/operations.md: a gateway whose data dir was lost left records in its streams; a
    new data dir given that instance id delivers them."""
    from sluiceway.runtime.instance import instance_id

    lost = tmp_path / "lost"
    async with running_gateway(config(lost, nats_url)) as (gw, _):
        _, token = await gw.store.create_token("acme", ["ingest"])
    async with running_gateway(config(lost, nats_url), role="http") as (gw, client):  # nothing delivered
        client.headers["Authorization"] = f"Bearer {token}"
        for i in range(3):
            assert (await client.post("/v1/streams/usage/events", content=b'{"i":%d}' % i)).status_code == 202
    new = tmp_path / "new"
    new.mkdir()
    (new / "instance-id").write_text(instance_id(lost) + "\n")
    async with running_gateway(config(new, nats_url)) as (gw, client):
        _, reader = await gw.store.create_token("acme", ["read"])  # a new store: new tokens
        client.headers["Authorization"] = f"Bearer {reader}"
        events = await eventually(lambda: _three(client))
        assert [e["payload"]["i"] for e in events] == [0, 1, 2]
