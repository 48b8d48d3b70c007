"""API tokens: ``slw_`` + 43 url-safe characters, stored only as their SHA-256 hex.

The secret is shown once, by ``create_token``; afterwards a token is known by its short
hex id. ``lookup_token`` answers None for unknown and revoked secrets alike.
"""

from __future__ import annotations

import secrets

import orjson
import sqlalchemy as sa

from sluiceway.record import utcnow
from sluiceway.store.db import StoreBase
from sluiceway.store.lite import SECRET_PREFIX, TokenInfo, hash_secret
from sluiceway.store.schema import tokens

__all__ = ["SECRET_PREFIX", "TokenInfo", "TokensMixin", "hash_secret"]


def _info(row: sa.RowMapping) -> TokenInfo:
    return TokenInfo(
        id=row["id"],
        tenant=row["tenant"],
        scopes=frozenset(orjson.loads(row["scopes"])),
        name=row["name"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


_INFO_COLUMNS = (tokens.c.id, tokens.c.tenant, tokens.c.scopes, tokens.c.name, tokens.c.created_at, tokens.c.revoked_at)


class TokensMixin(StoreBase):
    async def create_token(
        self, tenant: str, scopes: list[str] | set[str] | frozenset[str], name: str | None = None
    ) -> tuple[TokenInfo, str]:
        """Create a token; returns its info and the secret (shown once, never stored)."""
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        info = TokenInfo(
            id=secrets.token_hex(6),
            tenant=tenant,
            scopes=frozenset(scopes),
            name=name,
            created_at=utcnow(),
        )
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.insert(tokens).values(
                    id=info.id,
                    tenant=info.tenant,
                    name=info.name,
                    scopes=orjson.dumps(sorted(info.scopes)).decode(),
                    secret_sha256=hash_secret(secret),
                    created_at=info.created_at,
                    revoked_at=None,
                )
            )
        return info, secret

    async def lookup_token(self, secret: str) -> TokenInfo | None:
        """The live token with this secret, or None (unknown or revoked)."""
        if not secret or not secret.startswith(SECRET_PREFIX):
            return None
        q = sa.select(*_INFO_COLUMNS).where(
            tokens.c.secret_sha256 == hash_secret(secret), tokens.c.revoked_at.is_(None)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(q)).mappings().first()
        return _info(row) if row else None

    async def get_token(self, token_id: str) -> TokenInfo | None:
        """A token by id, revoked or not."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(*_INFO_COLUMNS).where(tokens.c.id == token_id))).mappings().first()
        return _info(row) if row else None

    async def list_tokens(self, tenant: str | None = None) -> list[TokenInfo]:
        """Every token (revoked ones included), oldest first."""
        q = sa.select(*_INFO_COLUMNS).order_by(tokens.c.created_at, tokens.c.id)
        if tenant is not None:
            q = q.where(tokens.c.tenant == tenant)
        async with self.engine.connect() as conn:
            return [_info(row) for row in (await conn.execute(q)).mappings()]

    async def revoke_token(self, token_id: str) -> bool:
        """Revoke a live token. False when unknown or already revoked."""
        q = (
            sa.update(tokens)
            .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        async with self.engine.begin() as conn:
            return (await conn.execute(q)).rowcount > 0
