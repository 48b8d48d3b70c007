"""Bearer-token authentication with a short-lived cache in front of the store.

Tokens are stored hashed; a lookup result (hit or miss) is cached for ``ttl`` seconds so
the hot path does not touch the database per request. A revoked token stops working within
``ttl`` seconds in every worker.

A token in use never makes a request wait for the database: when a request finds its entry in
the last ``ttl / 5`` of its life, one lookup is started in the background and the request goes
on with the cached answer. Requests that find no live entry share one lookup per secret (without
that, every request in flight when a busy token's entry expired would run its own query, and
take a pooled connection each).
"""

from __future__ import annotations

import asyncio
from time import monotonic
from collections.abc import Mapping
from typing import TYPE_CHECKING

from sluiceway.errors import BadRequest, Forbidden, Unauthorized
from sluiceway.record import valid_name
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    from sluiceway.store import Store, TokenInfo

SCOPES = ("ingest", "read", "admin")
log = get_logger("sluiceway.auth")


class Authenticator:
    def __init__(self, store: "Store", ttl: float = 5.0, max_entries: int = 10_000):
        self.store = store
        self.ttl = ttl
        self.refresh_ahead = ttl / 5
        self.max_entries = max_entries
        self._cache: dict[str, tuple[float, "TokenInfo | None"]] = {}
        self._lookups: dict[str, asyncio.Task] = {}  # secret -> the lookup in flight

    async def token(self, authorization: str | None) -> "TokenInfo":
        secret = _secret(authorization)
        hit = self._live(secret)
        info = hit[1] if hit is not None else await asyncio.shield(self._lookup(secret))
        if info is None:
            raise Unauthorized("invalid or revoked token")
        return info

    def cached(self, authorization: str | None) -> "TokenInfo | None":
        """The token when its cache entry is live and valid, without waiting; None when
        answering takes a lookup (or the answer is a 401, which ``token`` gives)."""
        hit = self._live(_secret(authorization))
        return hit[1] if hit is not None else None

    def _live(self, secret: str) -> "tuple[float, TokenInfo | None] | None":
        """The live cache entry of ``secret`` (starting its refresh near its end), else None."""
        hit = self._cache.get(secret)
        if hit is None:
            return None
        left = hit[0] - monotonic()
        if left <= 0:
            return None
        if left < self.refresh_ahead and secret not in self._lookups:
            self._lookup(secret).add_done_callback(_log_refresh_error)
        return hit

    def _lookup(self, secret: str) -> asyncio.Task:
        """The lookup of ``secret`` in flight, else a new one (its answer is cached)."""
        task = self._lookups.get(secret)
        if task is None:
            task = self._lookups[secret] = asyncio.ensure_future(self._fetch(secret))
        return task

    async def _fetch(self, secret: str) -> "TokenInfo | None":
        started = monotonic()
        try:
            info = await self.store.lookup_token(secret)
        finally:
            del self._lookups[secret]
        if len(self._cache) >= self.max_entries:
            self._cache.clear()
        self._cache[secret] = (started + self.ttl, info)  # from when the database was asked
        return info

    async def aclose(self) -> None:
        """Cancel the lookups in flight (before the store closes under them)."""
        tasks = list(self._lookups.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def require(self, authorization: str | None, scope: str, tenant: str | None = None) -> "TokenInfo":
        info = await self.token(authorization)
        check(info, scope, tenant)
        return info


def _secret(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")
    scheme, _, secret = authorization.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise Unauthorized("Authorization must be 'Bearer <token>'")
    return secret


def requested_tenant(headers: Mapping[bytes, bytes], query: Mapping[str, str] | None, default: str) -> str:
    """The tenant a request names (``X-Sluice-Tenant``, else ``?tenant=``), else ``default``;
    400 unless it is a valid tenant id (an empty ``?tenant=`` is not). Whether the token may
    act for it is ``check``'s."""
    raw = headers.get(b"x-sluice-tenant")
    tenant = raw.decode("latin-1") if raw else (query or {}).get("tenant", default)
    if not valid_name(tenant):
        raise BadRequest(f"tenant id {tenant!r} must match [a-z0-9][a-z0-9_-]{{0,63}}")
    return tenant


def check(info: "TokenInfo", scope: str, tenant: str | None = None) -> None:
    """403 unless the token has ``scope`` (admin implies all) and belongs to ``tenant``."""
    if scope not in info.scopes and "admin" not in info.scopes:
        raise Forbidden(f"token lacks the '{scope}' scope (has: {', '.join(sorted(info.scopes)) or 'none'})")
    if tenant is not None and tenant != info.tenant and "admin" not in info.scopes:
        raise Forbidden(f"token belongs to tenant '{info.tenant}', not '{tenant}'")


def _log_refresh_error(task: asyncio.Task) -> None:
    """A background refresh that failed leaves the entry to expire; the lookup after that
    answers the request (with the error if it persists)."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("token cache refresh failed", error=repr(task.exception()))
