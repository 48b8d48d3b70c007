"""Tenants and sources declared in the configuration file → the store, at every start.

Declared sources are created or refreshed (settings, secrets, interval, enabled; their cursor
is kept); sources added at run time are left alone. A declared source whose required
credentials are unset (e.g. an empty ``${VAR:-}``), or that names credentials which are all
unset (a public Discourse forum needs none, but a file that names ``api_key`` meant one),
or whose credentials cannot be stored
because ``SLUICE_SECRET_KEY`` is unset, is stored **disabled** with a log line saying why:
the gateway starts anyway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sluiceway.feedback.sources import missing_secrets, validate_source
from sluiceway.secrets import ENV, SecretBox
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    from sluiceway.sources.feedback.config import FeedbackSourceConfig
    from sluiceway.store import Store

log = get_logger("sluiceway.feedback")


async def bootstrap(store: "Store", config: "FeedbackSourceConfig", box: SecretBox | None = None) -> None:
    box = box or SecretBox.from_env()
    for ti, tenant in enumerate(config.tenants):
        await store.create_tenant(tenant.id, tenant.name, exist_ok=True)
        for si, src in enumerate(tenant.sources):
            where = f"sources[{config.name}].tenants[{ti}].sources[{si}]."
            given = {k: v for k, v in src.secrets.items() if v not in (None, "")}
            validate_source(src.type, src.settings, {}, where, check_secrets=False)  # type and settings first
            missing = missing_secrets(src.type, given)
            if src.secrets and not given:  # the file names credentials, and every one is unset
                missing = missing or sorted(src.secrets)
            settings, secrets = validate_source(src.type, src.settings, given, where, check_secrets=not missing)
            enabled, why = src.enabled, None
            if missing:
                enabled, why = False, f"credentials unset: {', '.join(missing)}"
            elif secrets and not box.available:
                enabled, why, secrets = False, f"{ENV} is unset, so its credentials cannot be stored encrypted", {}
            await store.put_config_source(tenant.id, src.name, src.type, settings=settings,
                                          secrets=box.encrypt(secrets) if secrets else None,
                                          enabled=enabled, interval_seconds=src.interval)
            if why:
                log.warning("feedback source disabled", tenant=tenant.id, source=src.name, type=src.type, reason=why)
            else:
                log.info("feedback source configured", tenant=tenant.id, source=src.name, type=src.type,
                         enabled=enabled)
