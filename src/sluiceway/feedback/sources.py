"""Validating a feedback source's settings and secrets, whatever adds it (the config file,
the CLI or the admin API), and turning a stored row back into a connector.

Types: the pull connectors of ``feedback.connectors`` and ``webhook`` (a generic signed
webhook: ``POST /webhook/<source name>/<tenant>``). Errors name the bad key, as the
configuration loader does.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, SecretStr, ValidationError, field_validator

from sluiceway.config.loader import format_errors
from sluiceway.config.types import StrictModel
from sluiceway.errors import ConfigError
from sluiceway.feedback.connectors import CONNECTORS, connector_class
from sluiceway.record import valid_name

SOURCE_TYPES = (*sorted(CONNECTORS), "webhook")


class WebhookSettings(StrictModel):
    """A generic signed webhook: HMAC of the raw body in ``header``, ``prefix`` + hex digest."""

    algorithm: Literal["sha256", "sha1", "sha512"] = "sha256"
    header: str = "X-Signature"
    prefix: str = "sha256="
    instance: str = ""  # source_instance of its items

    @field_validator("header")
    @classmethod
    def _header(cls, v: str) -> str:
        if not v or any(c in v for c in " :\r\n"):
            raise ValueError(f"{v!r} is not a header name")
        return v


class WebhookSecrets(StrictModel):
    secret: SecretStr


def models(type_: str) -> tuple[type[BaseModel], type[BaseModel]]:
    """(Settings, Secrets) models of a source type."""
    if type_ == "webhook":
        return WebhookSettings, WebhookSecrets
    cls = connector_class(type_)
    return cls.Settings, cls.Secrets


def check_name(name: str) -> str:
    if not valid_name(name):
        raise ConfigError(f"source name {name!r} must match [a-z0-9][a-z0-9_-]{{0,63}}")
    return name


def validate_source(type_: str, settings: dict[str, Any], secrets: dict[str, Any],
                    where: str = "", *, check_secrets: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """Checked ``(settings, secrets)`` as plain JSON-able dicts (secrets in clear: encrypt them).
    ``check_secrets=False``: settings only (a source stored without credentials)."""
    if type_ not in SOURCE_TYPES:
        raise ConfigError(f"{where}type: unknown source type {type_!r}; valid types: {', '.join(SOURCE_TYPES)}")
    settings_model, secrets_model = models(type_)
    try:
        s = settings_model.model_validate(settings or {})
    except ValidationError as e:
        raise ConfigError(format_errors(e, settings_model, f"{where}settings")) from None
    if not check_secrets:
        return s.model_dump(mode="json"), {}
    try:
        c = secrets_model.model_validate({k: v for k, v in (secrets or {}).items() if v not in (None, "")})
    except ValidationError as e:
        raise ConfigError(format_errors(e, secrets_model, f"{where}secrets")) from None
    return s.model_dump(mode="json"), _plain(c)


def missing_secrets(type_: str, secrets: dict[str, Any]) -> list[str]:
    """Secret names absent from ``secrets`` that the source cannot run without (a source
    without them starts disabled): the required ones; or, when none is given and the type
    cannot run without any (e.g. Play: a token or a service-account key), all of them."""
    _, secrets_model = models(type_)
    given = {k for k, v in secrets.items() if v not in (None, "")}
    required = [k for k, f in secrets_model.model_fields.items() if f.is_required() and k not in given]
    if required or given:
        return required
    try:
        secrets_model.model_validate({})
    except ValidationError:
        return list(secrets_model.model_fields)
    return []


def _plain(model: BaseModel) -> dict[str, Any]:
    out = {}
    for k, v in model.model_dump().items():
        if v is None:
            continue
        out[k] = v.get_secret_value() if isinstance(v, SecretStr) else v
    return out
