"""The admin API (``admin`` scope): tenants and their feedback sources, changed at run time.

Routes: ``GET/POST /v1/admin/tenants``; ``GET/POST /v1/admin/sources``;
``GET/PATCH/DELETE /v1/admin/sources/{tenant}/{name}``; ``POST …/{name}/enable|disable``.

The operations below (``add_source``, ``change_source``, ``set_enabled``, ``shown``) are the
one place a source is checked and its credentials sealed; ``sluice tenants|sources`` uses
them too. Settings and secrets go through ``feedback.sources.validate_source``; secrets are
encrypted with ``SecretBox`` (``SLUICE_SECRET_KEY``) before the store sees them, and every
answer shows only their names, masked. The scheduler re-reads the store, so changes apply
without a restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.routing import Route

from sluiceway.config.loader import format_errors
from sluiceway.config.types import StrictModel, parse_duration
from sluiceway.errors import BadRequest, ConfigError, HTTPError, NotFound
from sluiceway.feedback.sources import SOURCE_TYPES, check_name, missing_secrets, validate_source
from sluiceway.http.control import Call, api_route
from sluiceway.http.openapi import NAME, NAME_RULE, TIME, error_response, ok_response, path_param, query_param
from sluiceway.record import valid_name
from sluiceway.secrets import ENV, SecretBox, mask
from sluiceway.sources.feedback.config import MAX_INTERVAL, MIN_INTERVAL

if TYPE_CHECKING:
    from sluiceway.runtime.gateway import Gateway
    from sluiceway.store import Store
    from sluiceway.store.tenants import SourceRow

DEFAULT_INTERVAL = 600.0


class SecretsUnavailable(HTTPError):
    """503: credentials cannot be sealed or opened (``SLUICE_SECRET_KEY`` unset, invalid or rotated out)."""

    status, code = 503, "secrets_unavailable"


# -- checks ---------------------------------------------------------------------------------

def interval_seconds(value: Any) -> float:
    """Seconds or a duration string (``10m``); at least 10 s, at most 366 days."""
    try:
        seconds = parse_duration(value)
    except ValueError as e:
        raise BadRequest(f"interval: {e}") from None
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:  # also refuses NaN and infinity
        raise BadRequest(f"interval: must be at least {MIN_INTERVAL:g}s and at most 366d, got {value!r}")
    return seconds


def checked(type_: str, settings: dict[str, Any], secrets: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return validate_source(type_, settings, secrets)
    except ConfigError as e:
        raise BadRequest(str(e).replace("\n", "; ")) from None
    except ImportError as e:  # the connector's module is missing from this installation
        raise BadRequest(f"type: source type {type_!r} is not available in this installation ({e})") from None


def _tenant_name(tenant: str) -> None:
    if not valid_name(tenant):
        raise BadRequest(f"tenant: {tenant!r} must match {NAME_RULE}")


def _names(tenant: str, name: str) -> None:
    _tenant_name(tenant)
    try:
        check_name(name)
    except ConfigError as e:
        raise BadRequest(f"name: {e}") from None


def secret_box(env: dict[str, str] | None = None) -> SecretBox:
    try:
        return SecretBox.from_env(env)
    except ConfigError as e:
        raise SecretsUnavailable(str(e)) from None


def _seal(box: SecretBox, secrets: dict[str, Any]) -> str | None:
    try:
        return box.encrypt(secrets)
    except ConfigError as e:
        raise SecretsUnavailable(str(e)) from None


def _open(box: SecretBox, row: "SourceRow") -> dict[str, Any]:
    try:
        return box.decrypt(row.secrets)
    except ConfigError as e:
        raise SecretsUnavailable(str(e)) from None


def shown(box: SecretBox | None, row: "SourceRow") -> dict[str, Any]:
    """A source as answered and printed: secret names masked, never values. Without a usable
    key the names cannot be read; ``has_secrets`` still says whether any are stored."""
    names = None
    if row.secrets and box is not None and box.available:
        try:
            names = list(mask(box.decrypt(row.secrets)))
        except ConfigError:
            names = None
    return {**row.public(names), "has_secrets": bool(row.secrets)}


def _merge(old: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch, one level: given keys replace, ``null`` removes."""
    return {k: v for k, v in {**old, **patch}.items() if v is not None}


# -- operations (the API and the CLI) ---------------------------------------------------------

async def _row(store: "Store", tenant: str, name: str) -> "SourceRow":
    row = await store.get_source(tenant, name)
    if row is None:
        raise NotFound(f"tenant {tenant!r} has no source named {name!r}")
    return row


async def add_source(store: "Store", box: SecretBox, *, tenant: str, name: str, type: str,
                     settings: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None,
                     enabled: bool = True, interval: Any = DEFAULT_INTERVAL) -> "SourceRow":
    _names(tenant, name)
    settings, secrets = checked(type, settings or {}, secrets or {})
    seconds = interval_seconds(interval)
    return await store.add_source(tenant, name, type, settings=settings, secrets=_seal(box, secrets),
                                  enabled=enabled, interval_seconds=seconds)


async def change_source(store: "Store", box: SecretBox, tenant: str, name: str, *,
                        settings: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None,
                        enabled: bool | None = None, interval: Any = None) -> "SourceRow":
    """Settings and secrets merge into the stored ones (``null`` removes a key); the result is
    checked whole, so any change to them needs the key to open the stored secrets."""
    row = await _row(store, tenant, name)
    values: dict[str, Any] = {}
    if settings is not None or secrets is not None:
        new_settings, new_secrets = checked(row.type, _merge(row.settings, settings or {}),
                                            _merge(_open(box, row), secrets or {}))
        values["settings"] = new_settings
        if secrets is not None:
            values["secrets"] = _seal(box, new_secrets)
    if interval is not None:
        values["interval_seconds"] = interval_seconds(interval)
    if enabled is not None:
        if enabled and "settings" not in values:  # (checked() above requires every secret)
            _check_complete(box, row)
        values["enabled"] = enabled
    if not values:
        return row
    return await store.update_source(tenant, name, **values)


def _check_complete(box: SecretBox, row: "SourceRow") -> None:
    try:
        missing = missing_secrets(row.type, _open(box, row))
    except ImportError as e:
        raise BadRequest(f"source type {row.type!r} is not available in this installation ({e})") from None
    if missing:
        raise BadRequest(f"cannot enable {row.tenant}/{row.name}: secrets missing: {', '.join(missing)}")


async def set_enabled(store: "Store", box: SecretBox, tenant: str, name: str, enabled: bool) -> "SourceRow":
    return await change_source(store, box, tenant, name, enabled=enabled)


# -- bodies ---------------------------------------------------------------------------------

class _Body(StrictModel):
    """Strict: a value of the wrong JSON type is refused, not converted (``"enabled": "yes"``)."""

    model_config = ConfigDict(strict=True)


class TenantIn(_Body):
    id: str
    name: str | None = None


class SourceIn(_Body):
    tenant: str
    name: str
    type: str
    settings: dict[str, Any] = {}
    secrets: dict[str, str | None] = {}
    enabled: bool = True
    interval: float | str = DEFAULT_INTERVAL


class SourcePatch(_Body):
    settings: dict[str, Any] | None = None
    secrets: dict[str, str | None] | None = None
    enabled: bool | None = None
    interval: float | str | None = None


async def _body(call: Call, model: type[BaseModel]) -> Any:
    try:
        return model.model_validate(await call.json_object())
    except ValidationError as e:
        raise BadRequest(format_errors(e, model, "").replace("\n", "; ")) from None


# -- handlers -------------------------------------------------------------------------------

async def list_tenants(call: Call) -> tuple[int, Any]:
    await call.auth("admin")
    return 200, {"tenants": await call.gw.store.list_tenants()}


async def create_tenant(call: Call) -> tuple[int, Any]:
    await call.auth("admin")
    body: TenantIn = await _body(call, TenantIn)
    if not valid_name(body.id):
        raise BadRequest(f"id: tenant id {body.id!r} must match {NAME_RULE}")
    return 201, await call.gw.store.create_tenant(body.id, body.name)


def listing_box() -> SecretBox | None:
    try:
        return secret_box()
    except SecretsUnavailable:
        return None  # a bad key must not hide the list; names then show as unreadable


async def list_sources(call: Call) -> tuple[int, Any]:
    await call.auth("admin")
    tenant = call.query.get("tenant")
    if tenant is not None:
        _tenant_name(tenant)
    box = listing_box()
    return 200, {"sources": [shown(box, r) for r in await call.gw.store.list_sources(tenant)]}


async def create_source(call: Call) -> tuple[int, Any]:
    await call.auth("admin")
    b: SourceIn = await _body(call, SourceIn)
    box = secret_box()
    row = await add_source(call.gw.store, box, tenant=b.tenant, name=b.name, type=b.type, settings=b.settings,
                           secrets=b.secrets, enabled=b.enabled, interval=b.interval)
    return 201, shown(box, row)


async def _one(call: Call) -> tuple[str, str]:
    """Admin auth, then the path's ``(tenant, name)``: 400 unless both are valid names."""
    await call.auth("admin")
    tenant, name = call.params["tenant"], call.params["name"]
    _names(tenant, name)
    return tenant, name


async def get_source(call: Call) -> tuple[int, Any]:
    tenant, name = await _one(call)
    return 200, shown(listing_box(), await _row(call.gw.store, tenant, name))


async def patch_source(call: Call) -> tuple[int, Any]:
    tenant, name = await _one(call)
    b: SourcePatch = await _body(call, SourcePatch)
    box = secret_box()
    row = await change_source(call.gw.store, box, tenant, name, settings=b.settings, secrets=b.secrets,
                              enabled=b.enabled, interval=b.interval)
    return 200, shown(box, row)


async def delete_source(call: Call) -> tuple[int, Any]:
    tenant, name = await _one(call)
    await call.gw.store.remove_source(tenant, name)
    return 204, None


def _switch(enabled: bool):
    async def handler(call: Call) -> tuple[int, Any]:
        tenant, name = await _one(call)
        box = secret_box()
        return 200, shown(box, await set_enabled(call.gw.store, box, tenant, name, enabled))
    return handler


def admin_routes(gw: "Gateway") -> list[Route]:
    one = "/v1/admin/sources/{tenant}/{name}"
    return [
        api_route(gw, "/v1/admin/tenants", GET=list_tenants, POST=create_tenant),
        api_route(gw, "/v1/admin/sources", GET=list_sources, POST=create_source),
        api_route(gw, one, GET=get_source, PATCH=patch_source, DELETE=delete_source),
        api_route(gw, one + "/enable", POST=_switch(True)),
        api_route(gw, one + "/disable", POST=_switch(False)),
    ]


# -- OpenAPI --------------------------------------------------------------------------------

SOURCE = {"type": "object", "properties": {
    "id": {"type": "string"}, "tenant": {"type": "string"}, "name": {"type": "string"}, "type": {"type": "string"},
    "settings": {"type": "object"},
    "secrets": {"type": "object", "description": "Names only, values masked as **********",
                "additionalProperties": {"type": "string"}},
    "has_secrets": {"type": "boolean"}, "enabled": {"type": "boolean"}, "interval_seconds": {"type": "number"},
    "origin": {"type": "string", "enum": ["config", "api"]}, "cursor": {"type": "object"},
    "created_at": TIME, "updated_at": TIME,
    "last_run_at": {"type": ["string", "null"], "format": "date-time"}, "last_status": {"type": ["string", "null"]}}}
TENANT = {"type": "object", "properties": {"id": {"type": "string"}, "name": {"type": ["string", "null"]},
                                           "created_at": TIME}}
# parse_duration's grammar: numbers, each with an optional unit (250ms, 10s, 5m, 1h, 7d, 1h30m)
DURATION = {"type": "string", "pattern": r"^\s*([0-9]+(\.[0-9]+)? *(ms|s|m|h|d)? *)+$", "examples": ["10m"]}
INTERVAL = {"oneOf": [{"type": "number", "minimum": MIN_INTERVAL, "maximum": MAX_INTERVAL}, DURATION],
            "description": f"Seconds, or a duration such as 10m; at least {MIN_INTERVAL:g} s, at most 366 days"}
SECRETS_IN = {"type": "object", "additionalProperties": {"type": ["string", "null"]},
              "description": "Per type (docs/feedback.md); a null or empty value removes a secret"}
SETTINGS_IN = {"type": "object", "description": "Per type, checked by the type's model (docs/feedback.md)"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


AUTH_ERRORS = {"401": error_response("Missing or invalid token"), "403": error_response("Token lacks the admin scope")}


def _op(summary: str, responses: dict[str, Any], body: dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None, description: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "description": description or "Needs the `admin` scope.",
                          "responses": {**responses, **AUTH_ERRORS}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


def openapi_paths() -> dict[str, Any]:
    path = [path_param("tenant", NAME), path_param("name", NAME)]
    one = ok_response("The source", SOURCE)
    missing = error_response("Unknown tenant or source")
    bad_path = "Malformed tenant or source name"
    key = error_response(f"{ENV} is not set, invalid or cannot open the stored secrets")
    switch = {"200": one, "400": error_response(f"{bad_path}, or enabling a source whose secrets are missing"),
              "404": missing, "503": key}
    return {
        "/v1/admin/tenants": {
            "get": _op("List tenants", {"200": ok_response("Tenants", {"type": "object", "properties": {
                "tenants": {"type": "array", "items": TENANT}}})}),
            "post": _op("Create a tenant", {"201": ok_response("Created", TENANT), "400": error_response("Bad id or body"),
                                            "409": error_response("The tenant exists")},
                        {"type": "object", "required": ["id"], "additionalProperties": False, "properties": {
                            "id": NAME, "name": {"type": ["string", "null"]}}})},
        "/v1/admin/sources": {
            "get": _op("List feedback sources", {
                "200": ok_response("Sources", {"type": "object", "properties": {"sources": {"type": "array",
                                                                                            "items": SOURCE}}}),
                "400": error_response("Malformed tenant")}, params=[query_param("tenant", "Only this tenant's", NAME)]),
            "post": _op("Add a feedback source", {
                "201": ok_response("Added", SOURCE), "400": error_response("Invalid settings, secrets, name, type or interval"),
                "404": error_response("Unknown tenant"), "409": error_response("The tenant has a source of that name"), "503": key},
                {"type": "object", "required": ["tenant", "name", "type"], "additionalProperties": False, "properties": {
                    "tenant": NAME, "name": NAME, "type": {"type": "string", "enum": list(SOURCE_TYPES)},
                    "settings": SETTINGS_IN, "secrets": SECRETS_IN, "enabled": {"type": "boolean"},
                    "interval": INTERVAL}},
                description="Needs the `admin` scope. Secrets are encrypted with SLUICE_SECRET_KEY; answers show "
                            "only their names. Interval: seconds or a duration such as 10m, at least 10 s, at most 366 days."),
        },
        "/v1/admin/sources/{tenant}/{name}": {
            "get": _op("One feedback source", {"200": one, "400": error_response(bad_path), "404": missing}, params=path),
            "patch": _op("Change a feedback source", {"200": one, "400": error_response(f"{bad_path}, or an invalid change"),
                                                       "404": missing, "503": key},
                         {"type": "object", "additionalProperties": False, "properties": {
                             "settings": _nullable(SETTINGS_IN), "secrets": _nullable(SECRETS_IN),
                             "enabled": {"type": ["boolean", "null"]}, "interval": _nullable(INTERVAL)}},
                         params=path, description="Needs the `admin` scope. settings and secrets merge into the "
                                                  "stored ones; a null value removes a key (a null field: no change)."),
            "delete": _op("Remove a feedback source", {"204": {"description": "Removed"}, "400": error_response(bad_path),
                                                       "404": missing}, params=path),
        },
        "/v1/admin/sources/{tenant}/{name}/enable": {"post": _op("Enable a source", switch, params=path)},
        "/v1/admin/sources/{tenant}/{name}/disable": {"post": _op("Disable a source", switch, params=path)},
    }
