"""Bearer-token authentication with a short-lived cache in front of the store.

Tokens are stored hashed; a lookup result (hit or miss) is cached for ``ttl`` seconds so
the hot path does not touch the database per request. A revoked token stops working within
``ttl`` seconds in every worker.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sluiceway.errors import BadRequest, Forbidden, Unauthorized
from sluiceway.record import valid_name

if TYPE_CHECKING:
    from sluiceway.store import Store, TokenInfo

SCOPES = ("ingest", "read", "admin")


class Authenticator:
    def __init__(self, store: "Store", ttl: float = 5.0, max_entries: int = 10_000):
        self.store = store
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, "TokenInfo | None"]] = {}

    async def token(self, authorization: str | None) -> "TokenInfo":
        if not authorization:
            raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")
        scheme, _, secret = authorization.partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            raise Unauthorized("Authorization must be 'Bearer <token>'")
        now = time.monotonic()
        hit = self._cache.get(secret)
        if hit is not None and hit[0] > now:
            info = hit[1]
        else:
            info = await self.store.lookup_token(secret)
            if len(self._cache) >= self.max_entries:
                self._cache.clear()
            self._cache[secret] = (now + self.ttl, info)
        if info is None:
            raise Unauthorized("invalid or revoked token")
        return info

    async def require(self, authorization: str | None, scope: str, tenant: str | None = None) -> "TokenInfo":
        info = await self.token(authorization)
        check(info, scope, tenant)
        return info


def requested_tenant(headers: Mapping[bytes, bytes], query: Mapping[str, str] | None, default: str) -> str:
    """The tenant a request names (``X-Sluice-Tenant``, else ``?tenant=``), else ``default``;
    400 unless it is a valid tenant id. Whether the token may act for it is ``check``'s."""
    raw = headers.get(b"x-sluice-tenant")
    tenant = raw.decode("latin-1") if raw else ((query or {}).get("tenant") or default)
    if not valid_name(tenant):
        raise BadRequest(f"tenant id {tenant!r} must match [a-z0-9][a-z0-9_-]{{0,63}}")
    return tenant


def check(info: "TokenInfo", scope: str, tenant: str | None = None) -> None:
    """403 unless the token has ``scope`` (admin implies all) and belongs to ``tenant``."""
    if scope not in info.scopes and "admin" not in info.scopes:
        raise Forbidden(f"token lacks the '{scope}' scope (has: {', '.join(sorted(info.scopes)) or 'none'})")
    if tenant is not None and tenant != info.tenant and "admin" not in info.scopes:
        raise Forbidden(f"token belongs to tenant '{info.tenant}', not '{tenant}'")
