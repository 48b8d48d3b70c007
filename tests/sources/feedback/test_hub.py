"""The feedback source in-process: declared tenants/sources, the generic signed webhook, upserts."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest

from sluiceway.secrets import ENV, generate_key
from tests.helpers import eventually, make_config, running_gateway

SECRET = "whsec-test"


def config(tmp_path, sources=None):
    return make_config(tmp_path / "data", sources=[{
        "type": "feedback", "scheduler": False,
        "tenants": [{"id": "acme", "name": "Acme", "sources": sources if sources is not None else [
            {"name": "hooks", "type": "webhook", "settings": {"header": "X-Signature", "prefix": "sha256="},
             "secrets": {"secret": SECRET}}]}],
    }])


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture(autouse=True)
def secret_key(monkeypatch):
    monkeypatch.setenv(ENV, generate_key())


async def feedback_rows(gw, tenant="acme"):
    return await gw.store.query_feedback(tenant, limit=100)


async def test_declared_sources_are_stored_with_encrypted_secrets(tmp_path):
    async with running_gateway(config(tmp_path)) as (gw, c):
        (row,) = await gw.store.list_sources("acme")
        assert row.origin == "config" and row.enabled and row.type == "webhook"
        assert row.secrets and SECRET not in row.secrets
        assert [t["id"] for t in await gw.store.list_tenants()] == ["acme"]
        assert [s.type for s in gw.config.sinks][-1] == "feedback"  # added to the defaults


async def test_generic_webhook_signed_items_upserted(tmp_path):
    async with running_gateway(config(tmp_path)) as (gw, c):
        body = orjson.dumps([{"id": "a1", "text": "love it", "rating": 5, "created_at": "2025-05-10T08:15:00Z",
                              "plan": "pro"},
                             {"external_id": 7, "body": "meh", "created_at": 1715328000}])
        r = await c.post("/webhook/hooks/acme", content=body, headers={"X-Signature": sign(body)})
        assert r.status_code == 200 and r.json() == {"status": "ok", "accepted": 2}
        rows = await eventually(lambda: _n(gw, 2))
        by = {x["external_id"]: x for x in rows}
        assert by["a1"]["rating"] == 5 and by["a1"]["metadata"] == {"plan": "pro"}
        assert by["7"]["created_at"] == "2024-05-10T08:00:00Z"
        # replay and an edit
        assert (await c.post("/webhook/hooks/acme", content=body, headers={"X-Signature": sign(body)})).status_code == 200
        edit = orjson.dumps({"id": "a1", "text": "love it even more", "rating": 5,
                             "created_at": "2025-05-10T08:15:00Z", "updated_at": "2025-05-11T00:00:00Z"})
        assert (await c.post("/webhook/hooks/acme", content=edit, headers={"X-Signature": sign(edit)})).status_code == 200

        async def edited():
            rows = {x["external_id"]: x for x in await feedback_rows(gw)}
            return rows["a1"]["body"] == "love it even more" and rows

        rows = await eventually(edited)
        assert len(rows) == 2 and rows["a1"]["id"] == by["a1"]["id"]
        # a webhook's integers past 64 bits stay whole (orjson alone reads them as floats)
        big = b'{"id":"b1","text":"x","created_at":"2025-05-10T08:15:00Z","order":123456789012345678901234567890}'
        assert (await c.post("/webhook/hooks/acme", content=big, headers={"X-Signature": sign(big)})).status_code == 200
        rows = {x["external_id"]: x for x in await eventually(lambda: _n(gw, 3))}
        assert rows["b1"]["metadata"] == {"order": 123456789012345678901234567890}


async def _n(gw, n):
    rows = await feedback_rows(gw)
    return len(rows) >= n and rows


DEEP = b'{"id":"x","metadata":' + b'{"a":' * 250 + b'1' + b'}' * 250 + b'}'


@pytest.mark.parametrize("path,headers,body,status", [
    ("/webhook/hooks/acme", {}, b'{"id":"x"}', 401),
    ("/webhook/hooks/acme", {"X-Signature": "sha256=00"}, b'{"id":"x"}', 401),
    ("/webhook/hooks/acme", {"X-Signature": sign(b'{"id":"x"}', "other")}, b'{"id":"x"}', 401),
    ("/webhook/hooks/nobody", {"X-Signature": sign(b'{"id":"x"}')}, b'{"id":"x"}', 404),
    ("/webhook/nohook/acme", {"X-Signature": sign(b'{"id":"x"}')}, b'{"id":"x"}', 404),
    ("/webhook/hooks/acme", {"X-Signature": sign(b'{"id":')}, b'{"id":', 400),
    ("/webhook/hooks/acme", {"X-Signature": sign(b'{"text":"no id"}')}, b'{"text":"no id"}', 400),
    ("/webhook/hooks/acme", {"X-Signature": sign(b'{"id":1,"rating":"5"}')}, b'{"id":1,"rating":"5"}', 400),
    ("/webhook/hooks/acme", {"X-Signature": sign(DEEP)}, DEEP, 400),  # nested too deeply to store
])
async def test_generic_webhook_refusals(tmp_path, path, headers, body, status):
    async with running_gateway(config(tmp_path)) as (gw, c):
        r = await c.post(path, content=body, headers=headers)
        assert r.status_code == status, r.text
        assert r.json()["error"]


async def test_source_with_unset_credentials_starts_disabled(tmp_path):
    srcs = [{"name": "hooks", "type": "webhook", "secrets": {"secret": ""}}]
    async with running_gateway(config(tmp_path, srcs)) as (gw, c):
        (row,) = await gw.store.list_sources("acme")
        assert not row.enabled and row.secrets is None
        body = b'{"id":"x"}'
        assert (await c.post("/webhook/hooks/acme", content=body, headers={"X-Signature": sign(body)})).status_code == 404


async def test_without_a_secret_key_sources_with_credentials_start_disabled(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV)
    async with running_gateway(config(tmp_path)) as (gw, c):
        (row,) = await gw.store.list_sources("acme")
        assert not row.enabled and row.secrets is None


async def test_intercom_webhook_signed_deduplicated_and_pings_ignored(tmp_path):
    from sluiceway.feedback.item import feedback_id

    srcs = [{"name": "ic", "type": "intercom", "settings": {"workspace": "w1"},
             "secrets": {"access_token": "tok", "client_secret": "cs-1"}}]
    notif = {"type": "notification_event", "id": "notif_1", "topic": "conversation.user.created",
             "data": {"item": {"type": "conversation", "id": "147", "created_at": 1715328000, "updated_at": 1715328000,
                               "source": {"type": "conversation", "body": "<p>The export button does nothing</p>",
                                          "author": {"type": "user", "id": "u1"}}}}}
    body = orjson.dumps(notif)
    sig = "sha1=" + hmac.new(b"cs-1", body, hashlib.sha1).hexdigest()
    cfg = make_config(tmp_path / "data", sources=[{"type": "feedback", "scheduler": False,
                                                    "tenants": [{"id": "acme", "sources": srcs}]}])
    async with running_gateway(cfg) as (gw, c):
        url = "/webhook/intercom/acme"
        assert (await c.post(url, content=body)).status_code == 401
        assert (await c.post(url, content=body, headers={"X-Hub-Signature": "sha1=" + "0" * 40})).status_code == 401
        assert (await c.post("/webhook/intercom/other", content=body, headers={"X-Hub-Signature": sig})).status_code == 404
        r = await c.post(url, content=body, headers={"X-Hub-Signature": sig})
        assert r.status_code == 200 and r.json()["accepted"] == 1
        again = await c.post(url, content=body, headers={"X-Hub-Signature": sig})  # redelivery
        assert again.status_code == 200 and again.headers.get("idempotent-replayed") == "true"
        ping = orjson.dumps({"type": "notification_event", "id": "notif_2", "topic": "ping", "data": {"item": {}}})
        r = await c.post(url, content=ping, headers={"X-Hub-Signature": "sha1=" + hmac.new(b"cs-1", ping,
                                                                                         hashlib.sha1).hexdigest()})
        assert r.status_code == 200 and r.json()["accepted"] == 0
        rows = await eventually(lambda: _n(gw, 1))
        await gw.deliveries.drain(5)
    assert len(rows) == 1 and rows[0]["id"] == feedback_id("acme", "intercom", "w1", "147")
    assert rows[0]["body"] == "The export button does nothing"


async def test_scheduled_pull_from_a_fake_forum(tmp_path):
    from tests.fakes.discourse import DiscourseFake

    with DiscourseFake() as fake:
        fake.add(25, start=1715328000)
        srcs = [{"name": "forum", "type": "discourse", "interval": "10s",
                 "settings": {"base_url": fake.url, "api_username": "system"}, "secrets": {"api_key": "disc-key"}}]
        cfg = make_config(tmp_path / "data", sources=[{"type": "feedback", "refresh_interval": "50ms",
                                                        "tenants": [{"id": "acme", "sources": srcs}]}])
        async with running_gateway(cfg) as (gw, c):
            rows = await eventually(lambda: _n(gw, 25), timeout=30)
            (src,) = await gw.store.list_sources("acme")
            assert src.last_status.startswith("ok") and src.cursor
            # disabled at run time: its job goes away without a restart
            await gw.store.update_source("acme", "forum", enabled=False)
            hub = gw.sources[0]
            await eventually(lambda: _async(not hub.scheduler._intervals))
    assert len({r["external_id"] for r in rows}) == 25


async def _async(v):
    return v


def test_sources_run_from_the_command_line(tmp_path):
    import asyncio

    from typer.testing import CliRunner

    from sluiceway.cli import app
    from sluiceway.store import open_store
    from tests.fakes.discourse import DiscourseFake

    data = tmp_path / "data"
    data.mkdir()

    async def setup(url):
        store = await open_store(f"sqlite:///{data / 'sluice.db'}")
        await store.create_tenant("acme")
        await store.add_source("acme", "forum", "discourse", settings={"base_url": url}, secrets=None)
        await store.aclose()

    async def state():
        store = await open_store(f"sqlite:///{data / 'sluice.db'}")
        try:
            return await store.get_source("acme", "forum")
        finally:
            await store.aclose()

    with DiscourseFake(api_key=None) as fake:
        fake.add(12, start=1715328000)
        asyncio.run(setup(fake.url))
        r = CliRunner().invoke(app, ["sources", "run", "forum", "--tenant", "acme", "--data-dir", str(data)])
        assert r.exit_code == 0, r.output
        assert "12 items" in r.output
        r = CliRunner().invoke(app, ["sources", "run", "nope", "--tenant", "acme", "--data-dir", str(data)])
        assert r.exit_code == 1 and "no source named 'nope'" in r.output
    row = asyncio.run(state())
    assert row.cursor and row.last_status.startswith("ok: 12 items")
    assert sum(1 for p in (data / "journal" / "partitions" / "cli").glob("*.seg")) >= 1


async def test_shipped_example_runs_with_no_variables(tmp_path, monkeypatch):
    from pathlib import Path

    from sluiceway.config import load_config

    example = Path(__file__).parents[3] / "examples" / "feedback.yaml"
    cfg = load_config(example, env={ENV: generate_key()}, overrides={"data_dir": str(tmp_path / "d")})
    async with running_gateway(cfg) as (gw, c):
        rows = {r.name: r for r in await gw.store.list_sources("acme")}
    assert set(rows) == {"play", "x", "forum", "intercom", "app"}
    assert not any(r.enabled for r in rows.values())  # every credential unset
    cfg = load_config(example, env={ENV: generate_key(), "X_BEARER_TOKEN": "t", "APP_WEBHOOK_SECRET": "s",
                                    "SLUICE_SOURCES__0__SCHEDULER": "false"},
                      overrides={"data_dir": str(tmp_path / "e")})
    async with running_gateway(cfg) as (gw, c):
        rows = {r.name: r for r in await gw.store.list_sources("acme")}
    assert rows["x"].enabled and rows["app"].enabled and not rows["play"].enabled
