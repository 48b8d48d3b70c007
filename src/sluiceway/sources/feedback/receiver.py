"""The feedback hub as a source: signed webhooks (HTTP workers), bootstrapping declared
tenants and sources and running scheduled pulls (the delivering process).

See ``webhooks`` for the webhook rules, ``scheduler`` for the pulls, ``bootstrap`` for the
declared sources. Lookups of a tenant's sources (and their decrypted secrets) are cached for
``server.token_cache_ttl`` seconds, so a change in the store reaches every worker within it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from sluiceway.errors import NotFound, Unauthorized
from sluiceway.feedback.connectors import connector_class
from sluiceway.feedback.item import STREAM, FeedbackItem, encode_items
from sluiceway.http.body import read_body
from sluiceway.http.endpoint import run_endpoint
from sluiceway.http.ingest import now_rfc3339
from sluiceway.http.responses import send_json
from sluiceway.record import valid_name
from sluiceway.secrets import SecretBox
from sluiceway.sources.base import ASGIApp, Source
from sluiceway.sources.feedback.bootstrap import bootstrap
from sluiceway.sources.feedback.config import FeedbackSourceConfig
from sluiceway.sources.feedback.scheduler import PullScheduler
from sluiceway.sources.feedback.webhooks import check_hmac, generic_items, parse_json

if TYPE_CHECKING:
    from sluiceway.runtime.gateway import Gateway
    from sluiceway.store.tenants import SourceRow

_OK = b'{"status":"ok","accepted":0}'


class FeedbackHub(Source):
    config: FeedbackSourceConfig

    def __init__(self, name: str, config: FeedbackSourceConfig, gateway: "Gateway"):
        super().__init__(name, config, gateway)
        self.box = SecretBox.from_env()
        self.scheduler: PullScheduler | None = None
        self._cache: dict[str, tuple[float, list[tuple["SourceRow", dict[str, Any]]]]] = {}

    def routes(self) -> list[tuple[str, str, ASGIApp]]:
        return [("POST", "/webhook/intercom/{tenant}", self.intercom),
                ("POST", "/webhook/{source}/{tenant}", self.generic)]

    def openapi_paths(self) -> dict[str, Any]:
        from sluiceway.sources.feedback.openapi import webhook_paths

        return webhook_paths()

    # -- background (delivering process) --------------------------------------------------
    async def start(self) -> None:
        gw = self.gateway
        await bootstrap(gw.store, self.config, self.box)
        if self.config.scheduler:
            self.scheduler = PullScheduler(gw.store, self.config, lambda items: gw.accept(items, STREAM))
            await self.scheduler.start()

    async def aclose(self) -> None:
        if self.scheduler is not None:
            await self.scheduler.aclose()
            self.scheduler = None

    # -- webhooks -------------------------------------------------------------------------
    def _cached(self, tenant: str, type_: str) -> list[tuple["SourceRow", dict[str, Any]]] | None:
        """The tenant's enabled sources of ``type_`` with their secrets, from the cache alone
        (None if not there or expired): a hit costs no await. On None, ``await _load``."""
        hit = self._cache.get(f"{tenant}\x1f{type_}")
        return hit[1] if hit is not None and hit[0] >= time.monotonic() else None

    async def _load(self, tenant: str, type_: str) -> list[tuple["SourceRow", dict[str, Any]]]:
        """What ``_cached`` answers, read from the store and cached for ``server.token_cache_ttl``."""
        if not valid_name(tenant):
            raise NotFound(f"unknown tenant {tenant!r}")
        store = self.gateway.store
        if not await store.tenant_exists(tenant):
            rows: list[tuple[SourceRow, dict[str, Any]]] = []
        else:
            rows = [(r, self.box.decrypt(r.secrets)) for r in await store.list_sources(tenant)
                    if r.type == type_ and r.enabled]
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[f"{tenant}\x1f{type_}"] = (time.monotonic() + self.gateway.config.server.token_cache_ttl, rows)
        return rows

    async def _accept(self, items: list[FeedbackItem], tenant: str, source: str, key: str | None) -> tuple[int, bytes]:
        records = encode_items(items, tenant=tenant, source=source, received_at=now_rfc3339(), idempotency_key=key)
        await self.gateway.accept(records, STREAM)
        return 200, orjson.dumps({"status": "ok", "accepted": len(items)})

    async def intercom(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        from sluiceway.sources.intercom.webhook import item_from_notification, verify_signature

        gw = self.gateway

        async def handle(headers: dict[bytes, bytes], _: str) -> tuple[int, str | None, str | None]:
            tenant = scope["path_params"]["tenant"]
            sources = self._cached(tenant, "intercom")
            if sources is None:
                sources = await self._load(tenant, "intercom")
            if not sources:
                raise NotFound(f"tenant {tenant!r} has no enabled intercom source")
            raw = await read_body(receive, self.config.webhook_max_bytes, None)
            sig = headers.get(b"x-hub-signature")
            header = sig.decode("latin-1") if sig else None
            found = next(((row, sec) for row, sec in sources if sec.get("client_secret")
                          and verify_signature(sec["client_secret"], raw, header)), None)
            if found is None:
                raise Unauthorized("missing or wrong X-Hub-Signature")
            match, secrets = found
            doc = parse_json(raw)
            cls = connector_class("intercom")
            instance = cls(cls.Settings.model_validate(match.settings), cls.Secrets.model_validate(secrets),
                           None).instance()
            item = item_from_notification(doc, instance) if isinstance(doc, dict) else None
            if item is None:
                await send_json(send, 200, _OK)
                return 200, tenant, STREAM
            notif = str(doc.get("id") or "")
            source = f"intercom:{match.name}"
            if notif:
                status = await gw.idempotent(tenant, f"intercom:{notif}", send,
                                             lambda: self._accept([item], tenant, source, notif))
                return status, tenant, STREAM
            status, body = await self._accept([item], tenant, source, None)
            await send_json(send, status, body)
            return status, tenant, STREAM

        await run_endpoint(gw, "/webhook/intercom/{tenant}", scope, send, handle)

    async def generic(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        gw = self.gateway

        async def handle(headers: dict[bytes, bytes], _: str) -> tuple[int, str | None, str | None]:
            tenant, name = scope["path_params"]["tenant"], scope["path_params"]["source"]
            sources = self._cached(tenant, "webhook")
            if sources is None:
                sources = await self._load(tenant, "webhook")
            match = next(((r, s) for r, s in sources if r.name == name), None)
            if match is None:
                raise NotFound(f"tenant {tenant!r} has no enabled webhook source named {name!r}")
            row, secrets = match
            st = row.settings
            raw = await read_body(receive, self.config.webhook_max_bytes, None)
            sig = headers.get(st.get("header", "X-Signature").lower().encode("latin-1"))
            if not check_hmac(st.get("algorithm", "sha256"), secrets.get("secret", ""), raw,
                              sig.decode("latin-1") if sig else None, st.get("prefix", "sha256=")):
                raise Unauthorized(f"missing or wrong {st.get('header', 'X-Signature')} signature")
            items = generic_items(parse_json(raw), st.get("instance", ""))
            status, body = await self._accept(items, tenant, f"webhook:{name}", None)
            await send_json(send, status, body)
            return status, tenant, STREAM

        await run_endpoint(gw, "/webhook/{source}/{tenant}", scope, send, handle)
