"""GET /v1/feedback[/{id}] and the original service's GET /feedback[/{id}], on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone

import pytest

from sluiceway.feedback.item import feedback_id
from tests.helpers import make_config, running_gateway

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def item(tenant: str, ext: str, minutes: float = 0, *, source_type: str = "webhook", instance: str = "",
         author: str | None = "ann", body: str | None = "hello", rating: int | None = None) -> tuple[str, dict]:
    return tenant, {
        "id": feedback_id(tenant, source_type, instance, ext), "source_type": source_type,
        "source_instance": instance, "external_id": ext, "author": author, "body": body, "rating": rating,
        "language": "en", "created_at": iso(T0 + timedelta(minutes=minutes)), "updated_at": None,
        "metadata": {"k": ext},
    }


@contextlib.asynccontextmanager
async def gateway_on(request: pytest.FixtureRequest, tmp_path):
    """A gateway whose store is SQLite or PostgreSQL (``request.param``), emptied, with tokens."""
    store = {}
    if request.param == "postgresql":
        store = {"url": request.getfixturevalue("postgres_url")}
    cfg = make_config(tmp_path / "data", store=store)
    async with running_gateway(cfg) as (gw, client):
        from tests.fixtures.postgres import empty_store

        await empty_store(gw.store)
        tokens = {}
        for key, tenant, scopes in [("acme", "acme", ["read"]), ("globex", "globex", ["read"]),
                                    ("ingest", "acme", ["ingest"]), ("admin", "ops", ["admin"])]:
            _, tokens[key] = await gw.store.create_token(tenant, scopes)
        client.headers["Authorization"] = f"Bearer {tokens['acme']}"
        yield gw, client, tokens


@pytest.fixture(params=["sqlite", "postgresql"])
async def gw(request, tmp_path):
    async with gateway_on(request, tmp_path) as g:
        yield g


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ext_ids(items: list[dict]) -> list[str]:
    return [i["external_id"] for i in items]


async def test_tenants_are_isolated(gw):
    g, client, tokens = gw
    await g.store.upsert_feedback([item("acme", "a1"), item("globex", "g1"), item("globex", "a1")])
    r = await client.get("/v1/feedback")
    assert r.status_code == 200, r.text
    assert ext_ids(r.json()["items"]) == ["a1"] and r.json()["items"][0]["tenant_id"] == "acme"
    other = item("globex", "g1")[1]["id"]
    r = await client.get(f"/v1/feedback/{other}")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert (await client.get("/v1/feedback", params={"tenant": "globex"})).status_code == 403
    assert (await client.get(f"/v1/feedback/{other}", headers={"X-Sluice-Tenant": "globex"})).status_code == 403
    r = await client.get("/v1/feedback", params={"tenant": "globex"}, headers=bearer(tokens["admin"]))
    assert sorted(ext_ids(r.json()["items"])) == ["a1", "g1"]
    r = await client.get(f"/v1/feedback/{other}", headers={**bearer(tokens["admin"]), "X-Sluice-Tenant": "globex"})
    assert r.status_code == 200 and r.json()["external_id"] == "g1"


async def test_auth_and_scope(gw):
    _, client, tokens = gw
    assert (await client.get("/v1/feedback", headers={"Authorization": ""})).status_code == 401
    r = await client.get("/v1/feedback", headers=bearer(tokens["ingest"]))
    assert r.status_code == 403 and "read" in r.json()["detail"]


async def test_pages_through_with_the_cursor(gw):
    g, client, _ = gw
    # 7 items, three sharing one created_at: the cursor must split ties by id without loss
    await g.store.upsert_feedback([item("acme", f"e{i}", minutes=min(i, 3)) for i in range(7)])
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/v1/feedback", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == 3
    assert pages == 3 and len(seen) == 7 and len({i["id"] for i in seen}) == 7
    keys = [(i["created_at"], i["id"]) for i in seen]
    assert keys == sorted(keys)


async def test_filters(gw):
    g, client, _ = gw
    await g.store.upsert_feedback([
        item("acme", "p1", 0, source_type="playstore", instance="com.acme", rating=5, body="Great app"),
        item("acme", "p2", 10, source_type="playstore", instance="com.acme.beta", rating=2, body="crashes 100%"),
        item("acme", "w1", 20, body="the export button", author="Zed Zebra"),
        item("acme", "w2", 30, instance="forms", body=None, author=None),
    ])

    async def ids(**params):
        r = await client.get("/v1/feedback", params=params)
        assert r.status_code == 200, r.text
        return ext_ids(r.json()["items"])

    assert await ids() == ["p1", "p2", "w1", "w2"]
    assert await ids(source_type="playstore") == ["p1", "p2"]
    assert await ids(source_instance="com.acme") == ["p1"]
    assert await ids(source_type="webhook", source_instance="") == ["w1"]
    assert await ids(since=iso(T0 + timedelta(minutes=10))) == ["p2", "w1", "w2"]  # inclusive
    assert await ids(until=iso(T0 + timedelta(minutes=20))) == ["p1", "p2"]  # exclusive
    assert await ids(since=iso(T0 + timedelta(minutes=10)), until="2026-03-01T12:30:00+00:00") == ["p2", "w1"]
    assert await ids(min_rating=3) == ["p1"]
    assert await ids(q="GREAT") == ["p1"]
    assert await ids(q="zebra") == ["w1"]  # author
    assert await ids(q="100%") == ["p2"] and await ids(q="1_0") == []  # LIKE wildcards are literal


BAD = [
    ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "x"}, "limit"),
    ({"since": "yesterday"}, "since"), ({"until": "2026-13-01"}, "until"), ({"min_rating": "high"}, "min_rating"),
    ({"cursor": "not-a-cursor"}, "cursor"), ({"cursor": "WzFd"}, "cursor"), ({"q": "x" * 300}, "q"),
    ({"tenant": "Not A Tenant"}, "tenant"),
    # given empty is not absent: a typed parameter is then bad like any other value
    ({"since": ""}, "since"), ({"until": ""}, "until"), ({"limit": ""}, "limit"), ({"min_rating": ""}, "min_rating"),
    ({"cursor": ""}, "cursor"), ({"tenant": ""}, "tenant"),
    ({"min_rating": str(2**63)}, "min_rating"),  # past the store's integers (was a 500)
    ({"since": "0001-01-01T00:00:00+01:00"}, "since"),  # before the first time in UTC (was a 500)
]


async def test_bad_parameters_are_400_naming_them(gw):
    _, client, _ = gw
    for params, name in BAD:
        r = await client.get("/v1/feedback", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["error"] == "bad_request" and name in r.json()["detail"], (params, r.text)


async def test_one_item(gw):
    g, client, _ = gw
    await g.store.upsert_feedback([item("acme", "a1", rating=4)])
    fid = item("acme", "a1")[1]["id"]
    r = await client.get(f"/v1/feedback/{fid}")
    assert r.status_code == 200
    got = r.json()
    assert got["id"] == fid and got["rating"] == 4 and got["metadata"] == {"k": "a1"}
    assert got["created_at"] == "2026-03-01T12:00:00Z"
    assert (await client.get(f"/v1/feedback/{fid.upper()}")).status_code == 200
    r = await client.get("/v1/feedback/not-a-uuid")
    assert r.status_code == 400 and "id" in r.json()["detail"]
    assert (await client.get(f"/v1/feedback/{feedback_id('acme', 'x', '', 'nope')}")).status_code == 404


async def test_original_paths(gw):
    g, client, tokens = gw
    await g.store.upsert_feedback([item("acme", "a1", 0, source_type="intercom"), item("acme", "a2", 10),
                                   item("acme", "a3", 20), item("globex", "g1")])
    r = await client.get("/feedback", params={"tenant_id": "acme"})
    assert r.status_code == 200 and isinstance(r.json(), list)
    assert ext_ids(r.json()) == ["a1", "a2", "a3"]
    first = r.json()[0]
    assert first["lang"] == "en" and first["metadata_"] == {"k": "a1"} and first["tenant_id"] == "acme"
    # start and end are both inclusive, as in the original
    r = await client.get("/feedback", params={"tenant_id": "acme", "start": iso(T0 + timedelta(minutes=10)),
                                              "end": iso(T0 + timedelta(minutes=20))})
    assert ext_ids(r.json()) == ["a2", "a3"]
    r = await client.get("/feedback", params={"tenant_id": "acme", "source_type": "intercom", "limit": 5})
    assert ext_ids(r.json()) == ["a1"]
    assert ext_ids((await client.get("/feedback", params={"tenant_id": "acme", "limit": 2})).json()) == ["a1", "a2"]
    assert (await client.get("/feedback", params={"tenant_id": "globex"})).status_code == 403
    r = await client.get("/feedback", params={"tenant_id": "globex"}, headers=bearer(tokens["admin"]))
    assert ext_ids(r.json()) == ["g1"]
    for params, name in [({}, "tenant_id"), ({"tenant_id": "acme", "limit": "0"}, "limit"),
                         ({"tenant_id": "acme", "end": "soon"}, "end"), ({"tenant_id": ""}, "tenant_id"),
                         ({"tenant_id": "acme", "start": ""}, "start"),
                         ({"tenant_id": "acme", "metadata_key": "k", "metadata_val": "a1"}, "metadata_key")]:
        r = await client.get("/feedback", params=params)
        assert r.status_code == 400 and name in r.json()["detail"], (params, r.text)

    r = await client.get("/feedback", params={"tenant_id": "acme", "end": "9999-12-31T23:59:59.999999Z"})
    assert r.status_code == 200 and len(r.json()) == 3, r.text  # the last time there is (was a 500)

    fid = item("acme", "a1", source_type="intercom")[1]["id"]
    r = await client.get(f"/feedback/{fid}", params={"tenant_id": "acme"})
    assert r.status_code == 200 and r.json()["external_id"] == "a1" and r.json()["lang"] == "en"
    gid = item("globex", "g1")[1]["id"]
    for tenant_id in ("globex", "acme"):  # another tenant's item, asked for either way: 404
        r = await client.get(f"/feedback/{gid}", params={"tenant_id": tenant_id})
        assert r.status_code == 404 and r.json() == {"error": "not_found", "detail": "Not found"}
    r = await client.get(f"/feedback/{gid}", params={"tenant_id": "globex"}, headers=bearer(tokens["admin"]))
    assert r.status_code == 200
    assert (await client.get("/feedback/123", params={"tenant_id": "acme"})).status_code == 400
    assert (await client.get(f"/feedback/{fid}")).status_code == 400
    assert (await client.get(f"/feedback/{fid}", params={"tenant_id": "acme"},
                             headers={"Authorization": "Bearer nope"})).status_code == 401


async def test_method_not_allowed_is_json(gw):
    _, client, _ = gw
    r = await client.post("/v1/feedback", json={})
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed" and "GET" in r.headers["allow"]


async def test_openapi_lists_the_paths(gw):
    _, client, _ = gw
    paths = (await client.get("/openapi.json")).json()["paths"]
    for p in ("/v1/feedback", "/v1/feedback/{id}", "/feedback", "/feedback/{id}"):
        assert "get" in paths[p]
    assert (await client.get("/docs")).status_code == 200


async def test_on_an_http_worker_store(tmp_path):
    """`sluice serve --workers N` workers hold a LiteStore: these APIs reach the full store through it."""
    import httpx

    from sluiceway.http.app import create_app
    from sluiceway.runtime.gateway import Gateway
    from sluiceway.store import open_store
    from sluiceway.store.lite import LiteStore

    cfg = make_config(tmp_path / "data")
    full = await open_store(cfg.store_url)
    _, token = await full.create_token("acme", ["read"])
    _, admin = await full.create_token("ops", ["admin"])
    await full.upsert_feedback([item("acme", "a1")])
    await full.aclose()
    gw = Gateway(cfg, role="http", store=LiteStore.from_url(cfg.store_url))  # type: ignore[arg-type]
    gw.access_log.enabled = False
    await gw.open()
    try:
        transport = httpx.ASGITransport(app=create_app(gw, manage_lifecycle=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.get("/v1/feedback", headers=bearer(token))
            assert r.status_code == 200 and ext_ids(r.json()["items"]) == ["a1"]
            r = await client.post("/v1/admin/tenants", json={"id": "acme"}, headers=bearer(admin))
            assert r.status_code == 201
    finally:
        await gw.aclose()


async def test_a_nul_in_a_text_filter_is_400_on_both_databases(gw):
    """PostgreSQL refuses NUL in text (SQLSTATE 22021): it must not get that far."""
    _, client, _ = gw
    for params in ({"q": "a\x00b"}, {"source_type": "\x00"}):
        r = await client.get("/v1/feedback", params=params)
        assert r.status_code == 400 and "NUL" in r.json()["detail"], (params, r.text)
