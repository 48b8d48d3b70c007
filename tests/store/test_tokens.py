import hashlib
from datetime import timedelta

import sqlalchemy as sa

from sluiceway.record import utcnow
from sluiceway.store import Store, TokenInfo
from sluiceway.store.schema import tokens


async def test_create_and_lookup(any_store: Store) -> None:
    info, secret = await any_store.create_token("acme", ["ingest", "query"], name="ci")
    assert secret.startswith("slw_") and len(secret) == 4 + 43
    assert isinstance(info, TokenInfo)
    assert info.tenant == "acme" and info.name == "ci" and info.scopes == frozenset({"ingest", "query"})
    assert len(info.id) == 12 and int(info.id, 16) >= 0
    assert info.created_at.tzinfo is not None and abs(utcnow() - info.created_at) < timedelta(minutes=1)
    assert info.revoked_at is None

    found = await any_store.lookup_token(secret)
    assert found == info


async def test_only_the_hash_is_stored(any_store: Store) -> None:
    info, secret = await any_store.create_token("acme", ["ingest"])
    async with any_store.engine.connect() as conn:
        row = (await conn.execute(sa.select(tokens))).mappings().one()
    assert secret not in {str(v) for v in row.values()}
    assert row["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()


async def test_unknown_secrets(any_store: Store) -> None:
    _, secret = await any_store.create_token("acme", ["ingest"])
    assert await any_store.lookup_token(secret + "x") is None
    assert await any_store.lookup_token("") is None
    assert await any_store.lookup_token("Bearer " + secret) is None


async def test_revoke(any_store: Store) -> None:
    info, secret = await any_store.create_token("acme", ["ingest"])
    assert await any_store.revoke_token(info.id) is True
    assert await any_store.revoke_token(info.id) is False  # already revoked
    assert await any_store.revoke_token("nope") is False
    assert await any_store.lookup_token(secret) is None
    [listed] = await any_store.list_tokens()
    assert listed.revoked and listed.revoked_at is not None and listed.revoked_at.tzinfo is not None
    assert (await any_store.get_token(info.id)) == listed


async def test_list_by_tenant_oldest_first(any_store: Store) -> None:
    a1, _ = await any_store.create_token("acme", ["ingest"], name="one")
    b1, _ = await any_store.create_token("beta", ["admin"])
    a2, _ = await any_store.create_token("acme", [], name="two")
    assert [t.id for t in await any_store.list_tokens()] == [a1.id, b1.id, a2.id]
    assert [t.id for t in await any_store.list_tokens("acme")] == [a1.id, a2.id]
    assert await any_store.list_tokens("nobody") == []
    assert (await any_store.list_tokens("acme"))[1].scopes == frozenset()


async def test_secrets_are_unique(any_store: Store) -> None:
    made = [await any_store.create_token("acme", ["ingest"]) for _ in range(5)]
    assert len({s for _, s in made}) == 5
    for info, secret in made:
        assert (await any_store.lookup_token(secret)).id == info.id
