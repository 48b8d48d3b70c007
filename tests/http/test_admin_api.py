"""/v1/admin/tenants and /v1/admin/sources, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib

import pytest
import sqlalchemy as sa

from sluiceway.secrets import ENV, MASK, SecretBox, generate_key
from sluiceway.store.schema import feedback_sources
from tests.http.test_feedback_api import bearer, gateway_on

CLEAR = "s3cr3t-value-never-shown"


@pytest.fixture(params=["sqlite", "postgresql"])
async def gw(request, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, generate_key())
    async with gateway_on(request, tmp_path) as (g, client, tokens):
        client.headers["Authorization"] = f"Bearer {tokens['admin']}"
        await g.store.create_tenant("acme", "Acme")
        yield g, client, tokens


def webhook(name="hooks", **extra):
    return {"tenant": "acme", "name": name, "type": "webhook", "settings": {"header": "X-Hub-Signature"},
            "secrets": {"secret": CLEAR}, "interval": "15m", **extra}


async def raw_secrets(g, name="hooks") -> str | None:
    async with g.store.engine.connect() as conn:
        return (await conn.execute(sa.select(feedback_sources.c.secrets).where(
            feedback_sources.c.tenant == "acme", feedback_sources.c.name == name))).scalar_one()


async def test_tenants(gw):
    _, client, tokens = gw
    r = await client.post("/v1/admin/tenants", json={"id": "globex", "name": "Globex"})
    assert r.status_code == 201 and r.json()["id"] == "globex" and r.json()["created_at"].endswith("Z")
    r = await client.get("/v1/admin/tenants")
    assert [t["id"] for t in r.json()["tenants"]] == ["acme", "globex"]
    r = await client.post("/v1/admin/tenants", json={"id": "globex"})
    assert r.status_code == 409 and r.json()["error"] == "conflict"
    for body, word in [({"id": "Glo Bex"}, "id"), ({"name": "x"}, "id"), ({"id": "ok", "extra": 1}, "extra"),
                       ([1], "object")]:
        r = await client.post("/v1/admin/tenants", json=body)
        assert r.status_code == 400 and word in r.json()["detail"], (body, r.text)
    r = await client.post("/v1/admin/tenants", content=b"{not json")
    assert r.status_code == 400 and "JSON" in r.json()["detail"]
    r = await client.get("/v1/admin/tenants", headers=bearer(tokens["acme"]))
    assert r.status_code == 403 and "admin" in r.json()["detail"]
    assert (await client.get("/v1/admin/tenants", headers={"Authorization": ""})).status_code == 401


async def test_add_source_masks_and_encrypts(gw):
    g, client, _ = gw
    r = await client.post("/v1/admin/sources", json=webhook())
    assert r.status_code == 201, r.text
    s = r.json()
    assert CLEAR not in r.text
    assert s["secrets"] == {"secret": MASK} and s["has_secrets"] is True
    assert s["interval_seconds"] == 900 and s["enabled"] is True and s["origin"] == "api"
    assert s["settings"]["header"] == "X-Hub-Signature" and s["settings"]["algorithm"] == "sha256"
    stored = await raw_secrets(g)
    assert stored and CLEAR not in stored
    assert SecretBox.from_env().decrypt(stored) == {"secret": CLEAR}
    for path in ("/v1/admin/sources", "/v1/admin/sources?tenant=acme", "/v1/admin/sources/acme/hooks"):
        r = await client.get(path)
        assert r.status_code == 200 and CLEAR not in r.text and "secret" in r.text
    assert len((await client.get("/v1/admin/sources")).json()["sources"]) == 1
    assert (await client.get("/v1/admin/sources", params={"tenant": "globex"})).json()["sources"] == []


async def test_add_source_errors(gw):
    _, client, _ = gw
    assert (await client.post("/v1/admin/sources", json=webhook())).status_code == 201
    r = await client.post("/v1/admin/sources", json=webhook())
    assert r.status_code == 409
    r = await client.post("/v1/admin/sources", json=webhook(tenant="nobody"))
    assert r.status_code == 404 and "nobody" in r.json()["detail"]
    cases = [
        (webhook(name="x1", type="carrier-pigeon"), "valid types"),
        (webhook(name="x2", settings={"colour": "red"}), "settings.colour"),
        (webhook(name="x3", secrets={}), "secrets.secret"),
        (webhook(name="x4", interval=5), "at least 10"),
        (webhook(name="x6", interval="100000d"), "at most 366d"),
        (webhook(name="x7", interval=1e300), "at most 366d"),
        (webhook(name="x5", interval="soon"), "interval"),
        (webhook(name="Bad Name"), "name"),
        (webhook(name="x6", tenant="Bad Tenant"), "tenant"),
        (webhook(name="x7", enabled="perhaps"), "enabled"),
        (webhook(name="x7", enabled=1), "enabled"),  # strict JSON types: no conversion
        ({"tenant": "acme", "name": "x8"}, "type"),
    ]
    for body, word in cases:
        r = await client.post("/v1/admin/sources", json=body)
        assert r.status_code == 400 and word in r.json()["detail"], (body, r.text)
        assert CLEAR not in r.text


async def test_no_key_refuses_secrets(gw, monkeypatch):
    g, client, _ = gw
    monkeypatch.delenv(ENV)
    r = await client.post("/v1/admin/sources", json=webhook())
    assert r.status_code == 503 and ENV in r.json()["detail"] and CLEAR not in r.text
    assert await g.store.get_source("acme", "hooks") is None
    monkeypatch.setenv(ENV, "not-a-key")
    r = await client.post("/v1/admin/sources", json=webhook())
    assert r.status_code == 503 and ENV in r.json()["detail"]


async def test_patch_merges(gw):
    g, client, _ = gw
    assert (await client.post("/v1/admin/sources", json=webhook())).status_code == 201
    before = await raw_secrets(g)
    r = await client.patch("/v1/admin/sources/acme/hooks", json={"settings": {"prefix": "sha1=", "algorithm": "sha1"},
                                                                 "interval": 60, "enabled": False})
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["settings"]["header"] == "X-Hub-Signature" and s["settings"]["prefix"] == "sha1="  # merged
    assert s["interval_seconds"] == 60 and s["enabled"] is False and s["secrets"] == {"secret": MASK}
    assert await raw_secrets(g) == before  # secrets not given: kept as they were
    r = await client.patch("/v1/admin/sources/acme/hooks", json={"secrets": {"secret": "rotated"}})
    assert r.status_code == 200 and "rotated" not in r.text
    assert SecretBox.from_env().decrypt(await raw_secrets(g)) == {"secret": "rotated"}
    for body, word in [({"settings": {"header": "bad header"}}, "settings.header"),
                       ({"secrets": {"secret": None}}, "secrets.secret"), ({"interval": "1s"}, "interval"),
                       ({"type": "x"}, "type")]:
        r = await client.patch("/v1/admin/sources/acme/hooks", json=body)
        assert r.status_code == 400 and word in r.json()["detail"], (body, r.text)
    assert (await client.patch("/v1/admin/sources/acme/nope", json={"enabled": True})).status_code == 404
    for path in ("/v1/admin/sources/Acme/hooks", "/v1/admin/sources/acme/Hooks"):  # names that cannot exist
        r = await client.patch(path, json={"enabled": True})
        assert r.status_code == 400 and "must match" in r.json()["detail"], r.text
    r = await client.get("/v1/admin/sources", params={"tenant": ""})
    assert r.status_code == 400 and "tenant" in r.json()["detail"], r.text


async def test_enable_disable_delete(gw):
    g, client, tokens = gw
    assert (await client.post("/v1/admin/sources", json=webhook(enabled=False))).status_code == 201
    r = await client.post("/v1/admin/sources/acme/hooks/enable")
    assert r.status_code == 200 and r.json()["enabled"] is True
    assert (await g.store.get_source("acme", "hooks")).enabled is True
    r = await client.post("/v1/admin/sources/acme/hooks/disable")
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert (await client.post("/v1/admin/sources/acme/nope/enable")).status_code == 404
    assert (await client.post("/v1/admin/sources/acme/hooks/enable", headers=bearer(tokens["acme"]))).status_code == 403
    r = await client.delete("/v1/admin/sources/acme/hooks")
    assert r.status_code == 204 and r.content == b""
    assert (await client.get("/v1/admin/sources/acme/hooks")).status_code == 404
    assert (await client.delete("/v1/admin/sources/acme/hooks")).status_code == 404


async def test_enable_refused_without_secrets(gw):
    g, client, _ = gw
    # a source declared in the configuration file whose secret variable was unset has none
    await g.store.put_config_source("acme", "cfg", "webhook", settings={}, secrets=None, enabled=False,
                                    interval_seconds=600)
    r = await client.post("/v1/admin/sources/acme/cfg/enable")
    assert r.status_code == 400 and "secret" in r.json()["detail"]
    r = await client.get("/v1/admin/sources/acme/cfg")
    assert r.json()["has_secrets"] is False and r.json()["origin"] == "config"


async def test_connector_types_never_500(gw):
    """Connector types answer 400 on empty settings, whether or not their module is installed yet."""
    _, client, _ = gw
    for type_ in ("playstore", "x", "discourse", "intercom"):
        r = await client.post("/v1/admin/sources", json={"tenant": "acme", "name": "c", "type": type_})
        assert r.status_code == 400, r.text
        try:
            importlib.import_module(f"sluiceway.sources.{type_}")
        except ImportError:
            assert "not available" in r.json()["detail"]


async def test_openapi_lists_the_paths(gw):
    _, client, _ = gw
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert set(paths["/v1/admin/sources/{tenant}/{name}"]) == {"get", "patch", "delete"}
    assert "post" in paths["/v1/admin/sources/{tenant}/{name}/enable"]
    assert {"get", "post"} <= set(paths["/v1/admin/tenants"])
